"""Session-scoped localvoice servers shared by the whole test run.

Loaded from ``tests/conftest.py`` with ``pytest_plugins = ["tests.support.fixtures"]``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes import FakeConnect
from tests.support.localvoice import LocalVoiceProcess


@pytest.fixture(scope="session")
def localvoice_models_process() -> Iterator[LocalVoiceProcess]:
    """A localvoice with the real models and ``--enable-faults`` (its log tail helps on failure)."""
    server = LocalVoiceProcess("--enable-faults").start(timeout=180)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def localvoice_models(localvoice_models_process: LocalVoiceProcess) -> str:
    """Endpoint URL of the shared localvoice with the real models."""
    return localvoice_models_process.endpoint


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
    monkeypatch.setattr("assistant.voicelive.upstream.connect", fake)
    return fake
