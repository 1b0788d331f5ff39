"""No silent failure: whatever is raised in a session's life reaches the page as a stable code.

Each test injects one class of failure into the real path (consumer in-process, the real SDK,
``localvoice --echo``) while opening, configuring, running or rolling over the upstream, and
checks what the page sees (error code, close code, how soon), what was logged (once, with the
class) and counted, and that nothing stays open: credential, SDK session and socket, tasks,
registry row.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from azure.ai.voicelive.aio import _patch as sdk
from azure.core.credentials import AccessToken
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import ClientAuthenticationError
from django.contrib.auth.models import User

from assistant import metrics
from assistant.calls.call import Call
from assistant.consumers.voice import VoiceConsumer
from assistant.models import LiveSession
from assistant.voicelive import upstream
from assistant.voicelive.session import VoiceLiveSession
from tests.hardening.conftest import (
    close_code,
    communicator,
    leaked_tasks,
    metric,
    port_of,
    start_session,
    tone,
    wait_client_sockets,
)
from tests.support.inprocess import served
from tests.support.logs import ErrorLogCollector

pytestmark = [
    pytest.mark.hardening,
    pytest.mark.django_db(transaction=True),
    pytest.mark.integration,
]

CONNECT_TIMEOUT = 3.0  # what real_upstream sets: the page must know within this + 1 s


class RaisingCredential(AsyncTokenCredential):
    """An Entra-style async credential whose token request fails; records that it was closed."""

    def __init__(self, exc: Exception) -> None:
        self.exc = exc
        self.closed = False

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        raise self.exc

    async def close(self) -> None:
        self.closed = True

    async def __aenter__(self) -> RaisingCredential:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


@pytest.fixture
def log_lines(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="assistant")
    return caplog


def records_with(caplog: pytest.LogCaptureFixture, text: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if text in r.getMessage()]


async def page_outcome(comm: Any, timeout: float) -> tuple[int, list[dict[str, Any]], float]:
    """The close code, the messages before it and how long it took from now.

    The browser then acknowledges the close (Daphne's disconnect message), as a real one does.
    """
    started = time.monotonic()
    code, seen = await close_code(comm, timeout=timeout)
    took = time.monotonic() - started
    await comm.disconnect()
    return code, seen, took


def error_codes(seen: list[dict[str, Any]]) -> list[str]:
    return [m["code"] for m in seen if m.get("type") == "error"]


async def assert_no_rows(timeout: float = 2.0) -> None:
    """The session's registry row is gone (released right after the close is sent)."""
    deadline = time.monotonic() + timeout
    while await LiveSession.objects.aexists():
        assert time.monotonic() < deadline, "the registry row was left behind"
        await asyncio.sleep(0.02)


def with_credential(monkeypatch: pytest.MonkeyPatch, factory: Callable[[str], Any]) -> None:
    """Sessions the consumer builds get credentials from ``factory``."""

    def build(**kwargs: Any) -> VoiceLiveSession:
        return VoiceLiveSession(**kwargs, credential_factory=factory)

    monkeypatch.setattr(Call, "voice_factory", staticmethod(build))


# ----------------------------------------------------------------------------- opening


async def test_a_credential_that_raises_is_an_auth_failure_shown_within_the_timeout(
    user: User,
    real_upstream: str,
    monkeypatch: pytest.MonkeyPatch,
    log_lines: pytest.LogCaptureFixture,
) -> None:
    """The bug of issue 8: ClientAuthenticationError escaped and the page said Connecting…."""
    credential = RaisingCredential(ClientAuthenticationError("no token for you"))
    with_credential(monkeypatch, lambda _key: credential)
    baseline = asyncio.all_tasks()
    before = metric(metrics.UPSTREAM_ERRORS, kind="auth")
    comm = communicator(user)
    assert (await comm.connect())[0]
    code, seen, took = await page_outcome(comm, CONNECT_TIMEOUT + 1)
    assert code == 4502
    assert error_codes(seen) == ["upstream_auth_failed"]
    assert "administrator" in seen[-2]["message"]
    assert seen[-1] == {"type": "state", "state": "error"}
    assert took < CONNECT_TIMEOUT + 1
    assert metric(metrics.UPSTREAM_ERRORS, kind="auth") == before + 1
    logged = records_with(log_lines, "refused our credentials")
    assert len(logged) == 1
    assert "ClientAuthenticationError" in logged[0].getMessage()
    assert "AZURE_CLIENT_ID" in logged[0].getMessage()  # what the operator must check
    assert credential.closed
    await assert_no_rows()
    assert not await leaked_tasks(baseline)


async def test_default_azure_credential_with_a_refusing_identity_endpoint(
    user: User,
    real_upstream: str,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    log_lines: pytest.LogCaptureFixture,
) -> None:
    """The production case: an empty key means Entra ID, and the managed identity fails."""
    refusals = 0

    async def refuse(request: web.Request) -> web.Response:
        nonlocal refusals
        refusals += 1
        return web.json_response({"error": "invalid_client"}, status=400)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", refuse)
    async with served(app) as base:
        # App Service's managed identity, at an endpoint on this machine that refuses; only
        # that credential of the chain is tried (no IMDS probe, no CLI subprocess).
        monkeypatch.setenv("IDENTITY_ENDPOINT", f"{base}/msi/token")
        monkeypatch.setenv("IDENTITY_HEADER", "header-secret")
        monkeypatch.setenv("AZURE_TOKEN_CREDENTIALS", "ManagedIdentityCredential")
        settings.AZURE_VOICELIVE_API_KEY = ""
        comm = communicator(user)
        assert (await comm.connect())[0]
        code, seen, took = await page_outcome(comm, CONNECT_TIMEOUT + 1)
    assert refusals >= 1, "the identity endpoint was never asked"
    assert code == 4502
    assert error_codes(seen) == ["upstream_auth_failed"]
    assert took < CONNECT_TIMEOUT + 1
    assert len(records_with(log_lines, "refused our credentials")) == 1
    await assert_no_rows()


async def test_a_wrong_key_is_refused_at_the_handshake_as_an_auth_failure(
    user: User, real_upstream: str, settings: Any, log_lines: pytest.LogCaptureFixture
) -> None:
    settings.AZURE_VOICELIVE_API_KEY = "not-the-key"
    comm = communicator(user)
    assert (await comm.connect())[0]
    code, seen, took = await page_outcome(comm, CONNECT_TIMEOUT + 1)
    assert code == 4502
    assert error_codes(seen) == ["upstream_auth_failed"]
    logged = records_with(log_lines, "refused our credentials")
    assert len(logged) == 1
    assert "HTTP 401" in logged[0].getMessage()
    await wait_client_sockets(port_of(real_upstream), 0)


async def test_a_bug_while_connecting_is_internal_error(
    user: User,
    real_upstream: str,
    monkeypatch: pytest.MonkeyPatch,
    log_lines: pytest.LogCaptureFixture,
) -> None:
    def broken_connect(**kwargs: Any) -> Any:
        raise RuntimeError("a bug in connect")

    monkeypatch.setattr(upstream, "connect", broken_connect)
    before = metric(metrics.UPSTREAM_ERRORS, kind="internal")
    baseline = asyncio.all_tasks()
    comm = communicator(user)
    assert (await comm.connect())[0]
    code, seen, took = await page_outcome(comm, CONNECT_TIMEOUT + 1)
    assert code == 4502
    assert error_codes(seen) == ["internal_error"]
    assert metric(metrics.UPSTREAM_ERRORS, kind="internal") == before + 1
    logged = records_with(log_lines, "failed unexpectedly")
    assert len(logged) == 1
    assert "RuntimeError" in logged[0].getMessage()
    await assert_no_rows()
    assert not await leaked_tasks(baseline)


async def test_a_bug_in_session_update_closes_the_open_connection(
    user: User,
    real_upstream: str,
    monkeypatch: pytest.MonkeyPatch,
    log_lines: pytest.LogCaptureFixture,
) -> None:
    async def broken_update(self: Any, **kwargs: Any) -> None:
        raise KeyError("session")

    monkeypatch.setattr(sdk.SessionResource, "update", broken_update)
    port = port_of(real_upstream)
    await wait_client_sockets(port, 0)
    baseline = asyncio.all_tasks()
    comm = communicator(user)
    assert (await comm.connect())[0]
    code, seen, took = await page_outcome(comm, CONNECT_TIMEOUT + 1)
    assert code == 4502
    assert error_codes(seen) == ["internal_error"]
    assert "KeyError" in records_with(log_lines, "failed unexpectedly")[0].getMessage()
    await wait_client_sockets(port, 0)  # the handshake had succeeded: it was closed
    await assert_no_rows()
    assert not await leaked_tasks(baseline)


async def test_a_browser_leaving_during_the_handshake_leaves_no_client_session(
    user: User, real_upstream: str, settings: Any, error_logs: ErrorLogCollector
) -> None:
    """The SDK leaves its aiohttp session to the GC when its handshake is cancelled."""
    import gc

    # A server that accepts TCP and never answers the upgrade: the handshake hangs.
    accepted = asyncio.Queue[None]()
    server = await asyncio.start_server(lambda r, w: accepted.put_nowait(None), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    settings.AZURE_VOICELIVE_ENDPOINT = f"http://127.0.0.1:{port}"
    baseline = asyncio.all_tasks()
    try:
        for _ in range(5):
            comm = communicator(user)
            assert (await comm.connect())[0]
            async with asyncio.timeout(5):
                await accepted.get()  # the SDK is inside ws_connect now
            await asyncio.sleep(0.05)
            await comm.disconnect()
    finally:
        server.close()
    assert not await leaked_tasks(baseline)
    gc.collect()
    await asyncio.sleep(0)
    unclosed = [r.getMessage() for r in error_logs.records if "Unclosed" in r.getMessage()]
    assert unclosed == []


async def test_a_peer_that_goes_silent_after_the_upgrade_does_not_delay_the_error(
    user: User, real_upstream: str, settings: Any
) -> None:
    """No session.updated and no answer to our close frame: the page still knows in time."""

    async def silent(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoclose=False, autoping=False)
        await ws.prepare(request)
        await asyncio.sleep(3600)
        return ws

    app = web.Application()
    app.router.add_get("/voice-live/realtime", silent)
    async with served(app, handler_cancellation=True) as base:
        settings.AZURE_VOICELIVE_ENDPOINT = base
        settings.VOICE_CONNECT_TIMEOUT = 1.0
        started = time.monotonic()
        comm = communicator(user)
        assert (await comm.connect())[0]
        code, seen, _ = await page_outcome(comm, 3)
        took = time.monotonic() - started
    assert code == 4502
    assert error_codes(seen) == ["upstream_unavailable"]
    assert took < 1.0 + 1.0, f"the error reached the page after {took:.2f} s"
    await assert_no_rows()


# ----------------------------------------------------------------------------- running


async def test_a_bug_mid_session_ends_it_with_internal_error(
    user: User,
    real_upstream: str,
    captured_sessions: list[VoiceLiveSession],
    log_lines: pytest.LogCaptureFixture,
) -> None:
    baseline = asyncio.all_tasks()
    comm = await start_session(user)
    session = captured_sessions[-1]
    conn = session._conn
    assert conn is not None

    async def broken_send(event: Any) -> None:
        raise TypeError("a bug while sending audio")

    conn.send = broken_send  # type: ignore[method-assign]
    await comm.send_to(bytes_data=tone(100))
    code, seen, took = await page_outcome(comm, 3)
    assert code == 4502
    assert error_codes(seen) == ["internal_error"]
    assert "TypeError" in records_with(log_lines, "audio sender failed")[0].getMessage()
    await wait_client_sockets(port_of(real_upstream), 0)
    await assert_no_rows()
    assert not await leaked_tasks(baseline)


@pytest.mark.parametrize(
    ("failure", "code"),
    [
        (RuntimeError("a bug while rolling over"), "internal_error"),
        (ClientAuthenticationError("token expired for good"), "upstream_auth_failed"),
    ],
)
async def test_a_failed_rollover_ends_the_session_and_closes_both_connections(
    user: User,
    real_upstream: str,
    captured_sessions: list[VoiceLiveSession],
    monkeypatch: pytest.MonkeyPatch,
    failure: Exception,
    code: str,
) -> None:
    baseline = asyncio.all_tasks()
    comm = await start_session(user)
    session = captured_sessions[-1]

    def failing_connect(**kwargs: Any) -> Any:
        raise failure

    monkeypatch.setattr(upstream, "connect", failing_connect)
    session.begin_rollover()  # what the heartbeat does when the connection is old enough
    close, seen, took = await page_outcome(comm, CONNECT_TIMEOUT + 1)
    assert close == 4502
    assert error_codes(seen) == [code]
    await wait_client_sockets(port_of(real_upstream), 0)
    await assert_no_rows()
    assert not await leaked_tasks(baseline)


async def test_a_browser_gone_mid_reply_is_not_an_upstream_error(
    user: User, real_upstream: str, captured_sessions: list[VoiceLiveSession]
) -> None:
    """Sends to a socket that is already gone are dropped, not raised into the receive loop."""
    handler_errors = metric(metrics.UPSTREAM_ERRORS, kind="handler")
    internal = metric(metrics.SESSIONS_ENDED, reason="internal_error")
    comm = await start_session(user)
    consumer_sends = 0
    # The transport refuses every frame from now on, as autobahn does once the TCP is gone.
    session = captured_sessions[-1]
    consumer = session._sink._transport  # the call's output, then its socket
    assert isinstance(consumer, VoiceConsumer)

    async def gone(message: dict[str, Any]) -> None:
        nonlocal consumer_sends
        consumer_sends += 1
        raise ConnectionResetError("Disconnected")

    consumer.transport_send = gone
    for _ in range(5):
        await comm.send_to(bytes_data=tone(100))
    await asyncio.sleep(1.0)  # the echo comes back and is dropped
    assert consumer_sends >= 1
    assert consumer.browser_gone
    await comm.disconnect()
    assert metric(metrics.UPSTREAM_ERRORS, kind="handler") == handler_errors
    assert metric(metrics.SESSIONS_ENDED, reason="internal_error") == internal
    await wait_client_sockets(port_of(real_upstream), 0)


def test_aiohttp_is_what_the_sdk_uses() -> None:
    """The handshake workaround reads the SDK's local ``session``: pin the assumption."""
    import inspect

    source = inspect.getsource(sdk._VoiceLiveConnectionManager.__aenter__)
    assert "session = aiohttp.ClientSession(" in source
    assert aiohttp.ClientSession is sdk.aiohttp.ClientSession
