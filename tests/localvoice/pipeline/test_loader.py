"""The loader builds the pipeline from the registries: a stage is swapped by one registry entry."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import pytest

from localvoice.config import ServerConfig
from localvoice.pipeline import registry
from localvoice.pipeline.llms.base import ChatFormat
from localvoice.pipeline.loader import load_pipeline
from tests.localvoice.fakes import FakeChat, FakeStt, fake_registry


def test_loader_uses_the_registered_stages(monkeypatch):
    """Every stage comes from its registry entry, and the config's options reach the pipeline."""
    stt = FakeStt("hello")
    config = fake_registry(monkeypatch, stt=stt)
    pipeline = load_pipeline(config)
    assert pipeline.stt is stt
    assert pipeline.vad.name == "fake vad"
    assert pipeline.llm.name == "fake chat"
    assert pipeline.tts.default_voice == "joe"
    assert set(pipeline.load_seconds) == {"vad", "stt", "llm", "tts", "end_of_turn"}
    assert pipeline.end_of_turn is not None
    assert pipeline.end_of_turn.name == "fake end of turn"
    assert pipeline.first_chunk_words == config.first_chunk_words == 2
    assert "echo_cancellation" in pipeline.input_cleanup
    pipeline.shutdown()


def test_the_llm_engine_gets_the_chosen_chat_models_format(monkeypatch):
    """``--llm`` picks the adapter; ``--llm-url`` picks the endpoint engine, with no weights."""
    config = fake_registry(monkeypatch)
    seen: list[tuple[ChatFormat, object]] = []

    def engine(config, chat_format, path):
        seen.append((chat_format, path))
        return FakeChat()

    monkeypatch.setitem(registry.LLM, "openai-compatible", engine)
    endpoint = replace(config, llm="smollm2-135m", llm_model=None, llm_url="http://127.0.0.1:1/v1")
    load_pipeline(endpoint).shutdown()
    assert seen[0][0].key == "smollm2-135m"
    assert seen[0][1] is None


def test_unknown_stage_names_list_the_known_ones(monkeypatch):
    config = fake_registry(monkeypatch)
    with pytest.raises(KeyError, match="choose one of silero, fake"):
        load_pipeline(replace(config, vad="webrtc"))


def test_bundled_entries_are_lazy():
    """Naming the stages imports no model library: the command line and ``--echo`` stay fast."""
    code = (
        "import sys, localvoice.__main__, localvoice.pipeline.registry as r; "
        "print(sorted(r.STT), [m for m in ('faster_whisper', 'llama_cpp', 'piper') "
        "if m in sys.modules])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "['base', 'tiny.en'] []"
    assert registry.llm_engine(ServerConfig()) == "llama.cpp"
    assert registry.llm_engine(ServerConfig(llm_url="http://127.0.0.1:8080/v1")) == (
        "openai-compatible"
    )


def test_the_default_stages_are_registered():
    """The configuration names its defaults; the registries must hold them."""
    config = ServerConfig()
    assert config.vad in registry.VAD
    assert config.stt in registry.STT
    assert config.tts in registry.TTS
