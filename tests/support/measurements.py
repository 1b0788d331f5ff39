"""What the slow tests measured, printed once at the end of the run.

The numbers behind docs/reliability.md: a test records a value in its section and the root
``conftest.py`` prints every non-empty section in pytest's terminal summary. (Earlier each
module had a ``test_print_*`` "test" for this, which could not fail and ran only in order.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest


def _plain(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def milliseconds(seconds: Any) -> str:
    return f"{seconds * 1000:.0f} ms"


class Section(dict[str, Any]):
    """One titled group of measurements; a dict, so tests write ``SECTION[name] = value``."""

    def __init__(self, title: str, render: Callable[[Any], str]) -> None:
        super().__init__()
        self.title = title
        self.render = render


_SECTIONS: dict[str, Section] = {}


def section(title: str, render: Callable[[Any], str] = _plain) -> Section:
    """The section called ``title`` (created on first use; shared by every module using it)."""
    return _SECTIONS.setdefault(title, Section(title, render))


def report(terminalreporter: pytest.TerminalReporter) -> None:
    for measured in _SECTIONS.values():
        if not measured:
            continue
        terminalreporter.section(measured.title)
        for name, value in measured.items():
            terminalreporter.write_line(f"{name}: {measured.render(value)}")
