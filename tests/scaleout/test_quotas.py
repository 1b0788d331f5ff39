"""Quotas across workers: two live sessions of one user on two real Daphne workers (Redis).

Each worker's heartbeat re-checks the user's quota with the usage not written yet of all their
live sessions: its own session's exact count and the other worker's from the registry row that
worker refreshes on its heartbeat. Here the history is written only every 60 s, so the other
session's audio is known through the registry alone: both sessions together stay within the
quota, give or take a heartbeat each.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.scaleout.conftest import MEASURED, Cluster, setup_env
from tests.support.servers import (
    Browser,
    DaphneServer,
    Database,
    RedisServer,
    Socket,
    login_sessions,
    manage,
)

pytestmark = [pytest.mark.scaleout, pytest.mark.redis, pytest.mark.timeout(90)]

FRAME_MS = 40
FRAME = b"\x01\x00" * (24 * FRAME_MS)  # 40 ms of PCM16 at 24 kHz
USER = "quota1"
QUOTA_SECONDS = 60  # minutes_per_day=1
USED_SECONDS = 50.0  # already written: 10 s left for both sessions together

OPENED: list[Browser] = []  # browsers a test opened besides the fixture's

SETUP = f"""
import uuid
from django.contrib.auth.models import User
from assistant.history.models import UsageQuota, UsageRecord
user = User.objects.create_user({USER!r}, password="quota-pw-1234")
UsageQuota.objects.create(user=user, minutes_per_day=1)
UsageRecord.objects.create(
    user=user, session_id=uuid.uuid4(), model="gpt-realtime", audio_in_seconds={USED_SECONDS}
)
"""


@pytest.fixture(scope="module")
def quota_workers(
    redis: RedisServer, database: Database, upstream: str, logs: Path
) -> Iterator[tuple[DaphneServer, DaphneServer]]:
    """Two workers allowing two live sessions per user, writing history only every minute."""
    manage(setup_env(database), "shell", "-c", SETUP)
    cluster = Cluster(
        a=None,  # type: ignore[arg-type]
        b=None,  # type: ignore[arg-type]
        redis=redis,
        database=database,
        upstream=upstream,
        logs=logs,
    )
    extra = {"VOICE_SESSIONS_PER_USER": "2", "HISTORY_FLUSH_SECONDS": "60"}
    a, b = cluster.worker("QA", **extra), cluster.worker("QB", **extra)
    try:
        a.start()
        b.start()
        yield a, b
    finally:
        a.stop()
        b.stop()


@pytest.fixture
async def sockets(
    quota_workers: tuple[DaphneServer, DaphneServer], database: Database
) -> AsyncIterator[list[Socket]]:
    keys = login_sessions(setup_env(database), [USER], per_user=2)[USER]
    browsers = [
        Browser(w.base_url).adopt_session(k) for w, k in zip(quota_workers, keys, strict=False)
    ]
    socks = [
        await b.websocket(w.ws_url("/ws/voice/"), origin=w.base_url)
        for b, w in zip(browsers, quota_workers, strict=False)
    ]
    for sock in socks:
        await sock.expect("session.ready", timeout=10)
    yield socks
    for browser in [*browsers, *OPENED]:
        await browser.aclose()
    OPENED.clear()


async def fresh_socket(worker: DaphneServer, database: Database) -> Socket:
    """A fresh socket of the user on ``worker`` (its browser is closed with the test's loop)."""
    [key] = login_sessions(setup_env(database), [USER], per_user=1)[USER]
    browser = Browser(worker.base_url).adopt_session(key)
    OPENED.append(browser)
    return await browser.websocket(worker.ws_url("/ws/voice/"), origin=worker.base_url)


async def talk_until_closed(sock: Socket) -> tuple[float, int]:
    """Stream audio in real time until the server closes; returns (seconds sent, close code)."""
    received = 0

    async def read() -> int:
        nonlocal received
        while True:
            frame = await sock.next_frame(timeout=30)
            if frame.kind == "close":
                assert frame.code is not None
                return frame.code
            if frame.kind == "binary":
                received += len(frame.data)
                await sock.send_json({"type": "audio.ack", "bytes": received})

    reader = asyncio.create_task(read())
    sent = 0
    started = time.monotonic()
    while not reader.done():
        try:
            await sock.send_audio(FRAME)
        except Exception:
            break
        sent += 1
        await asyncio.sleep(max(0.0, started + sent * FRAME_MS / 1000 - time.monotonic()))
    return sent * FRAME_MS / 1000, await reader


async def test_two_sessions_on_two_workers_cannot_both_overspend(
    sockets: list[Socket],
    quota_workers: tuple[DaphneServer, DaphneServer],
    database: Database,
) -> None:
    results = await asyncio.gather(*(talk_until_closed(s) for s in sockets))
    for sock, (_, code) in zip(sockets, results, strict=True):
        assert code == 4402, sock.texts("error")
        assert sock.texts("quota.warning"), "warned first (83 % used at the start)"
        errors = sock.texts("error")
        assert errors[-1]["code"] == "quota_exceeded", errors
        assert errors[-1]["resets_at"], errors
    # Over quota now: a new session is refused at the handshake, with when the quota resets.
    again = await fresh_socket(quota_workers[0], database)
    refusal = await again.expect("error")
    assert refusal["code"] == "quota_exceeded", refusal
    assert refusal["resets_at"], refusal
    assert await again.expect_close() == 4402
    # SIGTERM: each worker drains, and its drain writes the history it still holds.
    for worker in quota_workers:
        worker.sigterm()
        worker.wait_exit(timeout=15)
    # What quotas count: audio both ways (the echo upstream sends it all back) and typed text.
    [(counted,)] = database.query(
        "SELECT SUM(r.audio_in_seconds + r.audio_out_seconds + r.typed_seconds) "
        "FROM assistant_usagerecord r "
        "JOIN auth_user u ON u.id = r.user_id WHERE u.username = %s",
        (USER,),
    )
    spent_live = float(counted) - USED_SECONDS
    left = QUOTA_SECONDS - USED_SECONDS
    MEASURED[f"quota: seconds counted of two sessions on two workers ({left:.0f} s left)"] = (
        spent_live
    )
    # Were each worker to count its own session only, each would stop at the 10 s left, 20 s
    # together; counting the other's live audio they stop near 10 s together (a heartbeat or
    # two each over, more on a loaded machine).
    assert spent_live < 2 * left, results
