"""The test run's shared fixtures and hooks; how the tests are laid out.

A module's tests mirror its path: ``assistant/calls/supervisor.py`` is tested in
``tests/calls/test_supervisor.py``, ``assistant/views.py`` in ``tests/test_views.py``,
``voiceproject/origins.py`` in ``tests/voiceproject/test_origins.py``, ``localvoice/...`` in
``tests/localvoice/...``, ``deploy/`` in ``tests/deploy/``. Suites of the running product, which
test no single module, are grouped by the processes they start: ``tests/e2e`` (Chromium against
Daphne), ``tests/hardening`` (the real SDK, localvoice and Daphne under faults and attacks),
``tests/scaleout`` (several Daphne workers sharing Redis). A test's kind is a marker, set by a
module-level ``pytestmark`` wherever the file lives: ``e2e``, ``hardening``, ``scaleout``, plus
what it needs (``integration``, ``models``, ``redis``); ``make test-fast`` deselects by need
and leaves the fuzzing (``hardening``) to ``make test``.
Helpers shared by tests and ``bench/`` are the ``tests.support`` package.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator

import pytest

from tests.support import measurements

pytest_plugins = ["tests.support.fixtures", "tests.sessions"]


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(measurements.FromWorkers(), "measurements-from-workers")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """What the slow tests measured (docs/reliability.md), after the results."""
    measurements.report(terminalreporter)


@pytest.fixture(autouse=True)
def fresh_history_writer() -> None:
    """Every test starts with a history writer holding no earlier test's sessions.

    Their rows (users, conversations) went with that test's database: writing them would fail.
    """
    from assistant.history.writer import history

    history.forget_all()


@pytest.fixture(autouse=True)
def fresh_cache() -> None:
    """Every test starts with empty rate-limit and login-throttle counters.

    They live in the (local-memory) cache for a minute; without this, a test that opens many
    sessions from 127.0.0.1 would leave later tests refused with 4429.
    """
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(autouse=True)
def settled_sessions(request: pytest.FixtureRequest) -> None:
    """An async test's sessions are over, in its own loop, before its database is flushed.

    Set up after pytest-django's database fixture, so torn down before it.
    """
    if inspect.iscoroutinefunction(request.function) and request.node.get_closest_marker(
        "django_db"
    ):
        request.getfixturevalue("_sessions_settle")


@pytest.fixture
async def _sessions_settle() -> AsyncIterator[None]:
    yield
    from tests.support.consumer import settle_sessions

    await settle_sessions()
