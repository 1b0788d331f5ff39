"""The Voice Live relay (``assistant/voicelive/``) on its own: no Django, a fake SDK connection."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# Every module of the relay, then a check of what got imported along the way.
IMPORT_CHECK = """
import importlib, pkgutil, sys
import assistant.voicelive as relay
for module in pkgutil.walk_packages(relay.__path__, "assistant.voicelive."):
    importlib.import_module(module.name)
loaded = sorted({m.split(".")[0] for m in sys.modules} & {"django", "channels", "daphne"})
assert not loaded, f"the relay imported {loaded}"
"""


def test_the_relay_imports_no_django_and_no_channels() -> None:
    """The README's promise, enforced: the relay runs (and is tested) without Django."""
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_CHECK],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
