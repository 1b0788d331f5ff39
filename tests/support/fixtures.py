"""Session-scoped localvoice servers shared by the whole test run.

Loaded from ``tests/conftest.py`` with ``pytest_plugins = ["tests.support.fixtures"]``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes import FakeConnect
from tests.support.localvoice import LocalVoiceProcess


@pytest.fixture(scope="session")
def localvoice_models() -> Iterator[str]:
    """Endpoint URL of a localvoice with the real models and ``--enable-faults``."""
    server = LocalVoiceProcess("--enable-faults").start(timeout=180)
    try:
        yield server.endpoint
    finally:
        server.stop()


@pytest.fixture(scope="session")
def localvoice_echo() -> Iterator[str]:
    """Endpoint URL of a localvoice in ``--echo`` mode (no models)."""
    server = LocalVoiceProcess("--echo").start(timeout=60)
    try:
        yield server.endpoint
    finally:
        server.stop()


@pytest.fixture
def fake_connect(monkeypatch: pytest.MonkeyPatch) -> FakeConnect:
    """Replace the SDK's ``connect`` with fakes (see ``tests/fakes.py``); returns the factory."""
    fake = FakeConnect()
    monkeypatch.setattr("assistant.upstream.connect", fake)
    return fake
