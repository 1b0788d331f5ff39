"""docs/configuration.md names every environment variable the settings read.

The variables are found in the source, not in a hand-kept list: every ``env("NAME", ...)`` call
(``voiceproject/env.py``) and every ``os.environ`` / ``os.getenv`` read in
``voiceproject/settings/``. ``.env.example`` is held to the same table.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SETTINGS = REPO / "voiceproject" / "settings"
DOC = REPO / "docs" / "configuration.md"
ENV_EXAMPLE = REPO / ".env.example"
ENV_LINE = re.compile(r"^#?\s*([A-Z][A-Z0-9_]*)=", re.MULTILINE)


def _first_string(call: ast.Call) -> str | None:
    if call.args and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str):
        return call.args[0].value
    return None


def _is_os_environ(node: ast.expr) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and node.attr == "environ"
        and isinstance(node.value, ast.Name)
        and node.value.id == "os"
    )


def settings_variables() -> set[str]:
    """Every environment variable named in voiceproject/settings/*.py."""
    names: set[str] = set()
    for path in sorted(SETTINGS.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            name: object = None
            if isinstance(node, ast.Call):
                func = node.func
                reads = (
                    (isinstance(func, ast.Name) and func.id == "env")
                    or (isinstance(func, ast.Attribute) and _is_os_environ(func.value))
                    or (
                        isinstance(func, ast.Attribute)
                        and func.attr == "getenv"
                        and isinstance(func.value, ast.Name)
                        and func.value.id == "os"
                    )
                )
                name = _first_string(node) if reads else None
            elif isinstance(node, ast.Subscript) and _is_os_environ(node.value):
                key = node.slice
                name = key.value if isinstance(key, ast.Constant) else None
            if isinstance(name, str):
                names.add(name)
    return names


def documented() -> str:
    return DOC.read_text()


def test_the_settings_read_variables():
    """The parser finds the settings' reads (a broken parser would pass everything below)."""
    names = settings_variables()
    assert {"DJANGO_SECRET_KEY", "REDIS_URL", "VOICE_MAX_SESSIONS_PER_WORKER"} <= names
    assert len(names) > 40


def test_every_setting_is_documented():
    text = documented()
    missing = sorted(name for name in settings_variables() if f"`{name}`" not in text)
    assert not missing, f"add these to docs/configuration.md: {missing}"


def test_every_env_example_variable_is_documented():
    text = documented()
    names = set(ENV_LINE.findall(ENV_EXAMPLE.read_text()))
    assert names
    missing = sorted(name for name in names if f"`{name}`" not in text)
    assert not missing, f"add these to docs/configuration.md: {missing}"
