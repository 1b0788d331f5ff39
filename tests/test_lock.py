"""requirements.lock: every package pinned, nothing local, and the same pins as pyproject.toml."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>\S+)$")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (REPO / "requirements.lock").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        match = PIN.match(line)
        assert match, f"not a plain pin (a fresh machine could not install it): {line!r}"
        pins[canonical(match["name"])] = match["version"]
    return pins


def test_every_line_is_a_plain_pin_and_the_tree_is_complete() -> None:
    pins = locked()
    # Transitive ones too: redis-py 8 once came in unpinned under channels-redis.
    for name in ("redis", "aiohttp", "azure-core", "twisted", "autobahn", "numpy", "onnxruntime"):
        assert name in pins, name
    assert "voice-assistant" not in pins


def test_the_lock_agrees_with_every_exact_pin_in_pyproject() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        wanted += extra
    pins = locked()
    for requirement in wanted:
        match = re.match(r"^([A-Za-z0-9._-]+)(\[[^\]]*\])?==([^\s;#]+)", requirement)
        if match:
            assert pins.get(canonical(match[1])) == match[3], requirement
