"""Upstream and browser faults over the real path: consumer in-process, real SDK, localvoice.

Faults are injected on the consumer's own upstream connection (``localvoice.fault`` sent on
``VoiceLiveSession._conn``, reached by wrapping ``Call.voice_factory``).
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from django.contrib.auth.models import User

from assistant import metrics
from assistant.voicelive import upstream
from assistant.voicelive.session import VoiceLiveSession
from tests.hardening.conftest import (
    close_code,
    communicator,
    drain_nowait,
    echo_roundtrip,
    inject_fault,
    leaked_tasks,
    metric,
    next_message,
    open_client_sockets,
    ping,
    port_of,
    start_session,
    tone,
    wait_client_sockets,
)
from tests.support import measurements
from tests.support.localvoice import LocalVoiceProcess, free_port

pytestmark = [
    pytest.mark.hardening,
    pytest.mark.django_db(transaction=True),
    pytest.mark.integration,
]

TIMINGS = measurements.section("fault timings")


# ----------------------------------------------------------------------------- connect faults


async def test_upstream_refusing_gives_upstream_unavailable_and_4502(
    user: User, settings: Any, captured_sessions: list[VoiceLiveSession]
) -> None:
    settings.AZURE_VOICELIVE_ENDPOINT = f"http://127.0.0.1:{free_port()}"  # nothing listens
    settings.AZURE_VOICELIVE_API_KEY = "test-key"
    baseline = asyncio.all_tasks()
    before = metric(metrics.UPSTREAM_ERRORS, kind="connect")
    started = time.monotonic()
    comm = communicator(user)
    connected, _ = await comm.connect()
    assert connected
    code, seen = await close_code(comm, timeout=5)
    took = time.monotonic() - started
    TIMINGS["refused_to_close_s"] = took
    assert code == 4502
    assert {"type": "error", "code": "upstream_unavailable"}.items() <= seen[-2].items()
    assert seen[-1] == {"type": "state", "state": "error"}
    assert took < 5
    assert metric(metrics.UPSTREAM_ERRORS, kind="connect") == before + 1
    await comm.disconnect()
    assert not await leaked_tasks(baseline)
    assert captured_sessions[0]._conn is None


@pytest.fixture
async def silent_tcp() -> AsyncIterator[int]:
    """Accepts TCP connections and never answers the websocket handshake."""
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        await reader.read()  # until the client gives up

    server = await asyncio.start_server(hold, "127.0.0.1", 0, family=socket.AF_INET)
    port = server.sockets[0].getsockname()[1]
    try:
        yield port
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_upstream_never_answering_the_handshake_is_bounded(
    user: User, settings: Any, silent_tcp: int
) -> None:
    settings.AZURE_VOICELIVE_ENDPOINT = f"http://127.0.0.1:{silent_tcp}"
    settings.AZURE_VOICELIVE_API_KEY = "test-key"
    settings.VOICE_CONNECT_TIMEOUT = 1.0
    baseline = asyncio.all_tasks()
    started = time.monotonic()
    comm = communicator(user)
    connected, _ = await comm.connect()
    assert connected
    code, seen = await close_code(comm, timeout=4)
    took = time.monotonic() - started
    TIMINGS["handshake_hang_to_close_s"] = took
    assert code == 4502
    assert any(m.get("code") == "upstream_unavailable" for m in seen)
    assert took < settings.VOICE_CONNECT_TIMEOUT + 1
    await comm.disconnect()
    assert not await leaked_tasks(baseline)


# ----------------------------------------------------------------------------- mid-session faults


@pytest.mark.parametrize("fault", ["drop", "close"])
async def test_upstream_lost_mid_reply_ends_cleanly_and_user_can_start_again(
    fault: str, user: User, real_upstream: str, captured_sessions: list[VoiceLiveSession]
) -> None:
    await wait_client_sockets(port_of(real_upstream), 0)
    baseline = asyncio.all_tasks()
    comm = await start_session(user)
    assert open_client_sockets(port_of(real_upstream)) == 1
    pcm = tone(40)
    # The echo reply is streaming (audio.start + binary frames) when the fault hits.
    await comm.send_to(bytes_data=pcm)
    await next_message(comm, "audio.start")
    for _ in range(5):
        await comm.send_to(bytes_data=pcm)
    await inject_fault(captured_sessions[-1], fault)
    started = time.monotonic()
    seen: list[dict[str, Any]] = []
    async with asyncio.timeout(2):
        while True:
            frame = await comm.receive_output(2)
            if frame["type"] == "websocket.close":
                code = frame["code"]
                break
            if frame.get("text"):
                seen.append(json.loads(frame["text"]))
    took = time.monotonic() - started
    TIMINGS[f"{fault}_to_error_close_s"] = took
    assert code == 4502
    assert {"type": "state", "state": "error"} in seen
    assert any(m.get("code") == "upstream_lost" for m in seen)
    await comm.disconnect()
    assert not await leaked_tasks(baseline)
    # Our side of the upstream socket is gone (nothing half-open left behind).
    TIMINGS[f"{fault}_client_socket_closed_s"] = await wait_client_sockets(
        port_of(real_upstream), 0
    )
    # Starting again works (a new upstream session, audio flows).
    again = await start_session(user)
    assert await echo_roundtrip(again, pcm) == pcm
    await again.disconnect()
    await wait_client_sockets(port_of(real_upstream), 0)


async def test_upstream_silent_during_a_reply_ends_the_session(
    user: User, settings: Any, real_upstream: str, captured_sessions: list[VoiceLiveSession]
) -> None:
    """An upstream that keeps its socket open but stops talking while a reply is owed.

    localvoice's ``stall`` fault holds its send side for 10 s; the typed message's reply never
    starts. Without the reply watchdog only the SDK's 30 s heartbeat would ever notice.
    """
    settings.VOICE_REPLY_STALL_SECONDS = 1.0
    await wait_client_sockets(port_of(real_upstream), 0)
    baseline = asyncio.all_tasks()
    before = metric(metrics.UPSTREAM_ERRORS, kind="stalled")
    comm = await start_session(user)
    upstream_conn = captured_sessions[-1]._conn
    assert upstream_conn is not None
    await inject_fault(captured_sessions[-1], "stall")
    await comm.send_to(text_data=json.dumps({"type": "text.send", "text": "Hello?"}))
    started = time.monotonic()
    code, seen = await close_code(comm, timeout=4)
    took = time.monotonic() - started
    TIMINGS["silent_reply_to_error_close_s"] = took
    assert code == 4502
    assert any(m.get("code") == "upstream_lost" for m in seen), seen
    assert {"type": "state", "state": "error"} in seen
    assert settings.VOICE_REPLY_STALL_SECONDS <= took < settings.VOICE_REPLY_STALL_SECONDS + 1.5
    assert metric(metrics.UPSTREAM_ERRORS, kind="stalled") == before + 1
    await comm.disconnect()
    assert not await leaked_tasks(baseline)
    await wait_client_sockets(port_of(real_upstream), 0)
    assert upstream_conn._client_session.closed


async def test_quiet_upstream_between_replies_is_not_a_stall(
    user: User, settings: Any, real_upstream: str
) -> None:
    """The watchdog only runs while a reply is owed: idle listening and ended replies are fine."""
    settings.VOICE_REPLY_STALL_SECONDS = 0.5
    before = metric(metrics.UPSTREAM_ERRORS, kind="stalled")
    comm = await start_session(user)
    try:
        await comm.send_to(text_data=json.dumps({"type": "text.send", "text": "Hello?"}))
        await next_message(comm, "response.done", timeout=3)
        assert await echo_roundtrip(comm, tone(40)) == tone(40)  # audio alone owes no reply
        await asyncio.sleep(3 * settings.VOICE_REPLY_STALL_SECONDS)
        await ping(comm)
        assert metric(metrics.UPSTREAM_ERRORS, kind="stalled") == before
    finally:
        await comm.disconnect()


@pytest.mark.parametrize(
    ("fault", "kind"),
    [("error_event", "event"), ("malformed", "malformed"), ("unknown_event", "unknown_event")],
)
async def test_upstream_noise_is_counted_and_the_session_carries_on(
    fault: str,
    kind: str,
    user: User,
    real_upstream: str,
    captured_sessions: list[VoiceLiveSession],
    caplog: pytest.LogCaptureFixture,
) -> None:
    comm = await start_session(user)
    try:
        await _noise_case(comm, fault, kind, captured_sessions[-1], caplog)
    finally:
        await comm.disconnect()


async def _noise_case(
    comm: Any,
    fault: str,
    kind: str,
    session: VoiceLiveSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    pcm = tone(40)
    assert await echo_roundtrip(comm, pcm) == pcm
    before = metric(metrics.UPSTREAM_ERRORS, kind=kind)
    with caplog.at_level("INFO", logger="assistant"):
        await inject_fault(session, fault)
        deadline = time.monotonic() + 2
        while metric(metrics.UPSTREAM_ERRORS, kind=kind) == before:
            assert time.monotonic() < deadline, f"{kind} not counted"
            await asyncio.sleep(0.02)
    assert any(r.name.startswith("assistant") for r in caplog.records), "not logged"
    if fault == "error_event":
        error = await next_message(comm, "error")
        assert error["code"] == "upstream_error"
    # The same session still answers and still relays audio.
    await ping(comm)
    assert await echo_roundtrip(comm, pcm) == pcm
    assert session._closing is False


async def test_browser_closing_mid_reply_closes_the_upstream(
    user: User, real_upstream: str
) -> None:
    port = port_of(real_upstream)
    await wait_client_sockets(port, 0)
    await wait_client_sockets(port, 0, side="server")
    baseline = asyncio.all_tasks()
    comm = await start_session(user)
    assert open_client_sockets(port) == 1
    assert open_client_sockets(port, side="server") == 1
    pcm = tone(40)
    await comm.send_to(bytes_data=pcm)
    await next_message(comm, "audio.start")
    for _ in range(10):
        await comm.send_to(bytes_data=pcm)
    await comm.disconnect()
    took = await wait_client_sockets(port, 0, timeout=2)
    TIMINGS["browser_close_to_upstream_socket_closed_s"] = took
    # ... and localvoice closed its end too (it saw the session end).
    took += await wait_client_sockets(port, 0, timeout=2 - took, side="server")
    TIMINGS["browser_close_to_localvoice_socket_closed_s"] = took
    assert not await leaked_tasks(baseline)


async def test_browser_leaving_while_the_upstream_is_configured_leaves_no_connection(
    user: User, real_upstream: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: a cancel between the SDK handshake and session.updated leaked the socket."""
    port = port_of(real_upstream)
    await wait_client_sockets(port, 0)
    connected_upstream = asyncio.Event()
    original = upstream._await_session_updated

    async def slow_configure(conn: Any) -> str:
        connected_upstream.set()
        await asyncio.sleep(3600)  # the browser leaves while we wait here
        return await original(conn)

    monkeypatch.setattr(upstream, "_await_session_updated", slow_configure)
    baseline = asyncio.all_tasks()
    comm = communicator(user)
    connected, _ = await comm.connect()
    assert connected
    async with asyncio.timeout(3):
        await connected_upstream.wait()
    assert open_client_sockets(port) == 1
    await comm.disconnect()
    TIMINGS["leave_during_connect_socket_closed_s"] = await wait_client_sockets(port, 0)
    assert not await leaked_tasks(baseline)


# ----------------------------------------------------------------------------- session limit


@pytest.fixture(scope="module")
def localvoice_short() -> Any:
    server = LocalVoiceProcess("--echo", "--max-session-seconds", "2").start(timeout=60)
    try:
        yield server
    finally:
        server.stop()


async def test_upstream_session_limit_rolls_over_transparently(
    user: User,
    settings: Any,
    localvoice_short: LocalVoiceProcess,
    captured_sessions: list[VoiceLiveSession],
) -> None:
    settings.AZURE_VOICELIVE_ENDPOINT = localvoice_short.endpoint
    settings.AZURE_VOICELIVE_API_KEY = "test-key"
    rollovers = metric(metrics.UPSTREAM_ROLLOVERS)
    comm = await start_session(user)
    session = captured_sessions[-1]
    first_upstream = session.upstream_session_id
    assert first_upstream
    pcm = tone(40)
    errors: list[dict[str, Any]] = []
    echoed_after_limit = 0
    started = time.monotonic()
    # Stream in real time for 4 s: across the 2 s limit.
    while time.monotonic() - started < 4.0:
        await comm.send_to(bytes_data=pcm)
        await asyncio.sleep(0.04)
        for frame in drain_nowait(comm):
            assert frame["type"] == "websocket.send", f"closed: {frame}"
            if frame.get("bytes") is not None and time.monotonic() - started > 2.5:
                echoed_after_limit += len(frame["bytes"])
            elif frame.get("text"):
                message = json.loads(frame["text"])
                if message["type"] == "error" or message.get("state") == "error":
                    errors.append(message)
    assert errors == []
    assert metric(metrics.UPSTREAM_ROLLOVERS) >= rollovers + 1
    assert session.upstream_session_id not in ("", first_upstream)
    TIMINGS["audio_echoed_after_limit_bytes"] = echoed_after_limit
    assert echoed_after_limit > len(pcm) * 10
    await ping(comm)
    await comm.disconnect()
