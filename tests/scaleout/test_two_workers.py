"""Scale-out over real processes: two Daphne workers, one Redis, one database (issue 3).

Every test drives real browsers' websockets (session cookie + Origin) against real Daphne
processes; the upstream is an echo server speaking the Voice Live protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import pytest

from tests.scaleout.conftest import ADMIN, HEARTBEAT, MEASURED, Cluster
from tests.support.servers import Browser, DaphneServer, NginxProxy, Socket, form_fields

pytestmark = [pytest.mark.scaleout, pytest.mark.redis, pytest.mark.timeout(60)]

FRAME = b"\x01\x00" * 960  # 40 ms of PCM16 at 24 kHz


async def eventually(
    check: Callable[[], Coroutine[Any, Any, bool]], *, timeout: float, interval: float = 0.05
) -> float:
    """Await ``check()`` until it is true; returns the seconds it took."""
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > timeout:
            msg = f"still false after {timeout}s"
            raise AssertionError(msg)
        await asyncio.sleep(interval)
    return time.monotonic() - started


async def talk(browser: Browser, server: DaphneServer) -> tuple[Socket, str]:
    """Open ``/ws/voice/`` on ``server``; returns the socket once the session is ready."""
    sock = await browser.websocket(server.ws_url("/ws/voice/"), origin=server.base_url)
    ready = await sock.expect("session.ready", timeout=10)
    return sock, ready["session_id"]


def live_rows(cluster: Cluster, user: str | None = None) -> list[tuple[str, str, str]]:
    """Live session rows (id, worker, end_reason), optionally of one user."""
    sql = (
        "SELECT s.id, s.worker, s.end_reason FROM assistant_livesession s "
        "JOIN auth_user u ON u.id = s.user_id"
    )
    if user is None:
        return [(str(r[0]), r[1], r[2]) for r in cluster.database.query(sql)]
    rows = cluster.database.query(sql + " WHERE u.username = %s", (user,))
    return [(str(r[0]), r[1], r[2]) for r in rows]


@pytest.fixture
async def browsers(
    session_keys: dict[str, list[str]],
) -> AsyncIterator[Callable[..., Coroutine[Any, Any, Browser]]]:
    """Logged-in browsers (each with a login session of its own), closed after the test."""
    opened: list[Browser] = []

    async def login(server: DaphneServer, username: str) -> Browser:
        browser = Browser(server.base_url)
        opened.append(browser)
        keys = session_keys[username]
        keys.append(keys.pop(0))  # a login session of its own, reused after a few browsers
        return browser.adopt_session(keys[-1])

    yield login
    for browser in opened:
        await browser.aclose()


async def test_second_session_on_other_worker_takes_over(
    two_workers: Cluster, browsers: Callable[..., Any]
) -> None:
    """Takeover across workers: the older socket on A closes 4409, one live row remains."""
    c = two_workers
    first_sock, first_id = await talk(await browsers(c.a, "user1"), c.a)
    second_sock, second_id = await talk(await browsers(c.b, "user1"), c.b)

    error = await first_sock.expect("error", timeout=3)
    assert error["code"] == "session_replaced"
    assert await first_sock.expect_close(timeout=3) == 4409

    async def one_row_left() -> bool:
        # A deletes its row right after the close frame.
        return [(r[0], r[1], r[2]) for r in live_rows(c, "user1")] == [(second_id, "B", "")]

    await eventually(one_row_left, timeout=1.0)
    await second_sock.send_json({"type": "ping"})
    await second_sock.expect("pong")
    assert first_id != second_id


async def test_simultaneous_sessions_of_one_user_on_both_workers_leave_one(
    two_workers: Cluster, browsers: Callable[..., Any]
) -> None:
    """Two sockets of one user opened at the same moment on A and B: exactly one survives."""
    c = two_workers
    on_a, on_b = await browsers(c.a, "user12"), await browsers(c.b, "user12")
    socks = await asyncio.gather(
        on_a.websocket(c.a.ws_url("/ws/voice/")), on_b.websocket(c.b.ws_url("/ws/voice/"))
    )

    async def outcome(sock: Socket) -> str:
        try:
            return (await sock.expect("session.ready", timeout=5))["session_id"]
        except AssertionError:
            return f"closed {sock.close_code}"

    outcomes = await asyncio.gather(*(outcome(s) for s in socks))

    async def one_row() -> bool:
        return len(live_rows(c, "user12")) == 1

    await eventually(one_row, timeout=1.0)
    survivor = live_rows(c, "user12")[0][0]
    assert survivor in outcomes, outcomes
    loser = socks[1 - outcomes.index(survivor)]
    assert await loser.expect_close(timeout=3) == 4409
    await socks[outcomes.index(survivor)].send_json({"type": "ping"})
    await socks[outcomes.index(survivor)].expect("pong")
    for sock in socks:
        await sock.close()


async def test_refuse_policy_across_workers_keeps_the_first_session(
    two_workers: Cluster, worker_c: DaphneServer, browsers: Callable[..., Any]
) -> None:
    """With the refuse policy a second session on another worker gets 4429; the first talks on."""
    c = two_workers
    first_sock, first_id = await talk(await browsers(c.a, "user2"), c.a)
    second = await (await browsers(worker_c, "user2")).websocket(
        worker_c.ws_url("/ws/voice/"), origin=worker_c.base_url
    )
    assert (await second.expect("error"))["code"] == "too_many_sessions"
    assert await second.expect_close() == 4429
    await first_sock.send_audio(FRAME)
    await first_sock.expect("audio.start", timeout=3)
    assert [r[0] for r in live_rows(c, "user2")] == [first_id]


async def test_admin_terminate_through_b_ends_the_session_on_a(
    two_workers: Cluster, browsers: Callable[..., Any]
) -> None:
    """Terminate posted to worker B closes the session held by worker A (4410) within 1 s."""
    c = two_workers
    sock, session_id = await talk(await browsers(c.a, "user3"), c.a)
    admin = await browsers(c.b, ADMIN)
    started = time.monotonic()
    status = await admin.post_form(f"/admin/assistant/livesession/{session_id}/terminate/", {})
    assert status == 302
    assert (await sock.expect("error", timeout=2))["code"] == "terminated"
    assert await sock.expect_close(timeout=2) == 4410
    elapsed = MEASURED["terminate via B -> close on A"] = time.monotonic() - started
    assert elapsed < 1.0

    async def row_gone() -> bool:
        return live_rows(c, "user3") == []

    await eventually(row_gone, timeout=1.0)


async def test_profile_saved_on_b_reaches_the_session_on_a(
    two_workers: Cluster, browsers: Callable[..., Any]
) -> None:
    """A profile saved in B's admin reaches A's live session (profile.updated) within 1 s."""
    c = two_workers
    sock, _ = await talk(await browsers(c.a, "user4"), c.a)
    profile = sock.texts("session.ready")[0]["profile"]
    elapsed = await change_profile(c, await browsers(c.b, ADMIN), profile["id"], sock)
    MEASURED["profile saved on B -> profile.updated on A"] = elapsed
    assert elapsed < 1.0


async def save_profile(admin: Browser, profile_id: int) -> None:
    """Publish the profile through B's admin change form (new instructions, all else as it was).

    Saving alone keeps the change in the profile's draft: only publishing reaches users.
    """
    path = f"/admin/assistant/assistantprofile/{profile_id}/change/"
    fields = form_fields(await admin.get_text(path), form_id="assistantprofile_form")
    stamp = f"Changed at {time.time():.3f}."
    fields = [(k, stamp if k == "instructions" else v) for k, v in fields]
    fields.append(("_publish", "1"))
    assert await admin.post_form(path, fields) == 302, "the change form was refused"


async def change_profile(c: Cluster, admin: Browser, profile_id: int, sock: Socket) -> float:
    """Save the profile on B; returns the seconds until A's browser gets ``profile.updated``."""
    started = time.monotonic()
    await save_profile(admin, profile_id)
    updated = await sock.expect("profile.updated", timeout=3)
    assert updated["profile"]["id"] == profile_id
    return time.monotonic() - started


async def test_monitor_on_b_follows_the_session_on_a(
    two_workers: Cluster, browsers: Callable[..., Any]
) -> None:
    """A monitor on B gets A's messages: attached, then audio.start, states and transcripts."""
    c = two_workers
    sock, session_id = await talk(await browsers(c.a, "user5"), c.a)
    admin = await browsers(c.b, ADMIN)
    monitor = await admin.websocket(c.b.ws_url(f"/ws/monitor/{session_id}/"))
    attached = await monitor.expect("monitor.attached", timeout=3)
    assert (attached["session_id"], attached["username"]) == (session_id, "user5")
    await sock.send_audio(FRAME)
    assert (await monitor.expect("audio.start", timeout=3))["item_id"]
    await monitor.expect("state", state="assistant_speaking", timeout=3)
    await sock.send_json({"type": "text.send", "text": "hello"})
    done = await monitor.expect("transcript.assistant.done", timeout=3)
    await monitor.expect("response.done", response_id=done["response_id"], timeout=3)
    assert not [f for f in monitor.seen if f.kind == "binary"], "audio without VOICE_MONITOR_AUDIO"
    await sock.send_json({"type": "session.stop"})
    assert (await monitor.expect("monitor.ended", timeout=3))["reason"] == "ended"


async def test_monitor_audio_crosses_workers_when_enabled(
    two_workers: Cluster, worker_c: DaphneServer, browsers: Callable[..., Any]
) -> None:
    """With VOICE_MONITOR_AUDIO=1 on the monitor's worker, both sides' audio arrive, prefixed."""
    c = two_workers
    sock, session_id = await talk(await browsers(c.a, "user6"), c.a)
    admin = await browsers(worker_c, ADMIN)
    monitor = await admin.websocket(worker_c.ws_url(f"/ws/monitor/{session_id}/"))
    await monitor.expect("monitor.attached", timeout=3)
    await sock.send_audio(FRAME)
    frames: dict[int, bytes] = {}
    async with asyncio.timeout(3):
        while set(frames) != {0x01, 0x02}:
            frame = await monitor.next_frame(3)
            assert frame.kind != "close", f"monitor closed ({frame.code})"
            if frame.kind == "binary":
                frames[frame.data[0]] = frame.data[1:]
    assert frames == {0x01: FRAME, 0x02: FRAME}


def listed_in_console(html: str, session_id: str) -> bool:
    """True when the live-sessions console page shows the session (its terminate URL)."""
    return f"/admin/assistant/livesession/{session_id}/terminate/" in html


async def test_killed_worker_leaves_no_stale_session(
    two_workers: Cluster, worker_c: DaphneServer, browsers: Callable[..., Any]
) -> None:
    """SIGKILL of A: its session leaves B's console within ~3 heartbeats; the user starts again.

    The new session goes to the ``refuse`` worker, so a stale row would refuse it (4429).
    """
    c = two_workers
    _, session_id = await talk(await browsers(c.a, "user7"), c.a)
    admin = await browsers(c.b, ADMIN)
    console = "/admin/assistant/livesession/"
    assert listed_in_console(await admin.get_text(console), session_id)
    c.a.kill()
    killed = time.monotonic()

    async def gone() -> bool:
        return not listed_in_console(await admin.get_text(console), session_id)

    await eventually(gone, timeout=3 * HEARTBEAT + 3)
    swept = MEASURED["SIGKILL of A -> session gone from B's console"] = time.monotonic() - killed
    # The last heartbeat was at most one period before the kill.
    assert swept < 4 * HEARTBEAT + 0.5
    sock, new_id = await talk(await browsers(worker_c, "user7"), worker_c)
    assert [(r[0], r[1]) for r in live_rows(c, "user7")] == [(new_id, "C")]
    await sock.close()


async def test_sigterm_drains_worker_a(two_workers: Cluster, browsers: Callable[..., Any]) -> None:
    """SIGTERM to A: its browser gets server_draining + 4001, new sockets get 4001, A exits."""
    c = two_workers
    browser = await browsers(c.a, "user8")
    sock, _ = await talk(browser, c.a)
    late_browser = await browsers(c.a, "user9")
    c.a.sigterm()
    signalled = time.monotonic()
    assert (await sock.expect("error", timeout=3))["code"] == "server_draining"
    assert await sock.expect_close(timeout=3) == 4001
    MEASURED["SIGTERM -> live browser closed 4001"] = time.monotonic() - signalled
    late = await late_browser.websocket(c.a.ws_url("/ws/voice/"), origin=c.a.base_url)
    assert (await late.expect("error", timeout=3))["code"] == "server_draining"
    assert await late.expect_close(timeout=3) == 4001
    async with late_browser.http.get(f"{c.a.base_url}/readyz") as resp:
        assert resp.status == 503, "a draining worker must leave the load balancer"
        assert (await resp.json())["checks"]["worker"]["ok"] is False
    try:
        c.a.wait_exit(timeout=10)
    except subprocess.TimeoutExpired:
        pytest.fail(f"A still running 10 s after SIGTERM:\n{c.a.log_tail()}")
    MEASURED["SIGTERM -> A exited"] = time.monotonic() - signalled


async def stream(sock: Socket, seconds: float) -> int:
    """Send real-time audio for ``seconds``; returns the bytes sent."""
    frames = int(seconds / 0.04)
    started = time.monotonic()
    for i in range(frames):
        await sock.send_audio(FRAME)
        await asyncio.sleep(max(0.0, started + (i + 1) * 0.04 - time.monotonic()))
    return frames * len(FRAME)


async def test_redis_restart_keeps_talking_and_control_recovers(
    two_workers: Cluster, browsers: Callable[..., Any]
) -> None:
    """Redis killed for ~3 s: A's echo keeps flowing (no byte lost); then control recovers.

    Redis restarts empty (no persistence), so the profile change proves A re-added its group
    memberships, and the terminate proves its channel receives again.
    """
    c = two_workers
    sock, session_id = await talk(await browsers(c.a, "user10"), c.a)
    admin = await browsers(c.b, ADMIN)
    echoed = 0

    async def count_echo() -> None:
        nonlocal echoed
        while True:
            frame = await sock.next_frame(30)
            if frame.kind == "binary":
                echoed += len(frame.data)
            elif frame.kind == "close":
                return

    profile_id = sock.texts("session.ready")[0]["profile"]["id"]
    reader = asyncio.create_task(count_echo())  # the only reader: frames land in sock.seen
    try:
        sent = await stream(sock, 0.5)
        c.redis.kill()
        sent += await stream(sock, 3.0)
        c.redis.restart()
        restarted = time.monotonic()
        streaming = asyncio.create_task(stream(sock, 1.0))
        # Control recovers while the audio keeps flowing. A change saved before A rejoined its
        # groups is lost (the restarted Redis is empty): save again until one arrives.
        deadline = restarted + 8
        while True:
            seen = len(sock.texts("profile.updated"))
            await save_profile(admin, profile_id)

            async def arrived(seen: int = seen) -> bool:
                return len(sock.texts("profile.updated")) > seen

            try:
                await eventually(arrived, timeout=0.25)
                break
            except AssertionError:
                if time.monotonic() > deadline:
                    raise
        MEASURED["Redis back -> profile change reaches A"] = time.monotonic() - restarted
        sent += await streaming

        async def all_echoed() -> bool:
            return echoed == sent

        await eventually(all_echoed, timeout=3)
        assert sock.close_code is None
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
    started = time.monotonic()
    assert await admin.post_form(f"/admin/assistant/livesession/{session_id}/terminate/", {}) == 302
    assert await sock.expect_close(timeout=3) == 4410
    MEASURED["terminate after Redis restart"] = time.monotonic() - started


async def test_new_session_starts_while_redis_is_down(
    two_workers: Cluster, browsers: Callable[..., Any]
) -> None:
    """Redis is only the control bus: a user can still start talking while it is down."""
    c = two_workers
    browser = await browsers(c.a, "user9")
    c.redis.kill()
    try:
        sock = await browser.websocket(c.a.ws_url("/ws/voice/"))
        await sock.expect("session.ready", timeout=5)
        await sock.send_audio(FRAME)
        await sock.expect("audio.start", timeout=3)
    finally:
        c.redis.restart()


@pytest.mark.skipif(not NginxProxy.available(), reason="nginx is not installed (/usr/sbin/nginx)")
async def test_websocket_through_nginx_reaches_a_worker(
    two_workers: Cluster, browsers: Callable[..., Any]
) -> None:
    """nginx round-robin over A and B: sessions through it talk, and both workers serve some."""
    c = two_workers
    proxy = NginxProxy([c.a.port, c.b.port], c.logs).start()
    try:
        workers = set()
        for username in ("user11", "user12"):
            browser = await browsers(c.a, username)
            browser.base_url = proxy.base_url
            sock = await browser.websocket(proxy.ws_url("/ws/voice/"), origin=proxy.base_url)
            await sock.expect("session.ready", timeout=10)
            await sock.send_audio(FRAME)
            await sock.expect("audio.start", timeout=3)
            workers |= {r[1] for r in live_rows(c, username)}
            await sock.close()
        assert workers == {"A", "B"}
    finally:
        proxy.stop()
