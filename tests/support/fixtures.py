"""Fixtures the whole test run shares: localvoice servers, SDK fakes and captures, error logs.

Loaded from ``tests/conftest.py`` with ``pytest_plugins = ["tests.support.fixtures"]``.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from assistant.calls.call import Call
from assistant.voicelive.session import VoiceLiveSession
from tests.fakes import FakeConnect
from tests.support.localvoice import LocalVoiceProcess
from tests.support.logs import ErrorLogCollector


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


@pytest.fixture
def error_logs() -> Iterator[ErrorLogCollector]:
    """Every ERROR logged during the test (its ``records``)."""
    # Garbage left by earlier tests is collected (and its warnings logged) before collecting
    # starts, so what is caught here belongs to this test.
    gc.collect()
    collector = ErrorLogCollector()
    root = logging.getLogger()
    root.addHandler(collector)
    try:
        yield collector
    finally:
        root.removeHandler(collector)


@pytest.fixture
def captured_sessions(monkeypatch: pytest.MonkeyPatch) -> list[VoiceLiveSession]:
    """Every VoiceLiveSession the consumer builds, so a test can reach its SDK connection.

    This is how faults are injected: the test sends ``localvoice.fault`` on the consumer's own
    upstream connection; no production code knows about faults.
    """
    sessions: list[VoiceLiveSession] = []

    def factory(**kwargs: Any) -> VoiceLiveSession:
        session = VoiceLiveSession(**kwargs)
        sessions.append(session)
        return session

    monkeypatch.setattr(Call, "voice_factory", staticmethod(factory))
    return sessions
