"""What the slow tests measured, printed once at the end of the run.

The numbers behind docs/reliability.md: a test records a value in its section and the root
``conftest.py`` prints every non-empty section in pytest's terminal summary (under
pytest-xdist, the workers' sections too: :class:`FromWorkers`). (Earlier each
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


#: Rendered sections sent back by pytest-xdist's workers (make test-fast), in arrival order.
_FROM_WORKERS: list[tuple[str, list[str]]] = []


def rendered() -> list[tuple[str, list[str]]]:
    """This process's non-empty sections as (title, lines): what a worker sends back."""
    return [
        (measured.title, [f"{name}: {measured.render(value)}" for name, value in measured.items()])
        for measured in _SECTIONS.values()
        if measured
    ]


class FromWorkers:
    """pytest-xdist hooks: each worker sends its sections back; the controller keeps them."""

    @pytest.hookimpl
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        workeroutput = getattr(session.config, "workeroutput", None)
        if workeroutput is not None:  # in a worker
            workeroutput["measurements"] = rendered()

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        _FROM_WORKERS.extend(getattr(node, "workeroutput", {}).get("measurements", []))


def report(terminalreporter: pytest.TerminalReporter) -> None:
    lines_by_title: dict[str, list[str]] = {}
    for title, lines in [*rendered(), *_FROM_WORKERS]:
        lines_by_title.setdefault(title, []).extend(lines)
    for title, lines in lines_by_title.items():
        terminalreporter.section(title)
        for line in lines:
            terminalreporter.write_line(line)
