"""Heartbeats: many sessions' registry rows in one write, each caller its own answer."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from assistant import beats, registry
from assistant.beats import HeartbeatBatcher, next_tick_delay
from assistant.models import AssistantProfile, LiveSession
from assistant.registry import Beat


@pytest.fixture
def live_sessions(db: None) -> list[LiveSession]:
    profile = AssistantProfile.objects.filter(is_default=True).first()
    if profile is None:
        profile = AssistantProfile.objects.create(name="Default", is_default=True, voice="alloy")
    sessions = []
    for n in range(3):
        user = User.objects.create_user(f"beat{n}", password="pw-beat-123")
        claim = registry.session_claim(user_id=user.pk, profile_id=profile.pk, channel_name=f"c{n}")
        assert claim.session_id is not None
        sessions.append(LiveSession.objects.get(pk=claim.session_id))
    return sessions


def test_one_write_refreshes_every_row_and_reports_end_reasons(
    live_sessions: list[LiveSession],
) -> None:
    first, second, third = live_sessions
    LiveSession.objects.filter(pk=second.pk).update(end_reason="terminated")
    third.delete()  # swept, e.g. its worker was presumed dead
    beats_in = [
        Beat(session_id=s.pk, state="listening", audio_in_seconds=1.5, audio_out_seconds=0.5)
        for s in live_sessions
    ]
    with CaptureQueriesContext(connection) as queries:
        reasons = registry.sessions_heartbeat(beats_in)
    # An executemany is logged as "<n> times: <sql>".
    statements = [q["sql"].split(": ", 1)[-1].split()[0].upper() for q in queries.captured_queries]
    # One SELECT and one UPDATE (executemany), whatever the number of sessions; the rest is the
    # transaction around the UPDATE (a savepoint here, inside the test's transaction).
    assert [s for s in statements if s in ("SELECT", "UPDATE")] == ["SELECT", "UPDATE"]
    assert reasons == {second.pk: "terminated", third.pk: "gone"}
    row = LiveSession.objects.get(pk=first.pk)
    assert (row.state, row.audio_in_seconds, row.audio_out_seconds) == ("listening", 1.5, 0.5)
    assert row.last_seen > first.last_seen


def test_no_beats_no_query(db: None) -> None:
    with CaptureQueriesContext(connection) as queries:
        assert registry.sessions_heartbeat([]) == {}
    assert not queries


async def test_concurrent_beats_share_one_database_call(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[Beat]] = []
    ended = uuid.uuid4()

    async def fake_write(batch: list[Beat]) -> dict[uuid.UUID, str]:
        calls.append(batch)
        return {ended: "replaced"}

    monkeypatch.setattr(registry, "asessions_heartbeat", fake_write)
    batcher = HeartbeatBatcher()
    ids = [uuid.uuid4(), uuid.uuid4(), ended]
    answers = await asyncio.gather(
        *(
            batcher.beat(Beat(session_id=i, state="ready", audio_in_seconds=0, audio_out_seconds=0))
            for i in ids
        )
    )
    assert answers == [None, None, "replaced"]
    assert len(calls) == 1
    assert {b.session_id for b in calls[0]} == set(ids)


async def test_a_failed_write_reaches_every_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    async def failing_write(batch: list[Beat]) -> dict[uuid.UUID, str]:
        raise RuntimeError("database is locked")

    monkeypatch.setattr(registry, "asessions_heartbeat", failing_write)
    batcher = HeartbeatBatcher()
    results = await asyncio.gather(
        *(
            batcher.beat(
                Beat(
                    session_id=uuid.uuid4(), state="ready", audio_in_seconds=0, audio_out_seconds=0
                )
            )
            for _ in range(2)
        ),
        return_exceptions=True,
    )
    assert all(isinstance(r, RuntimeError) for r in results)


def test_the_batcher_survives_a_new_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each asyncio.run (or test) has its own loop: a flusher of a finished loop is not reused."""

    async def fake_write(batch: list[Beat]) -> dict[uuid.UUID, str]:
        return {}

    monkeypatch.setattr(registry, "asessions_heartbeat", fake_write)
    batcher = HeartbeatBatcher()

    async def one() -> Any:
        return await batcher.beat(
            Beat(session_id=uuid.uuid4(), state="ready", audio_in_seconds=0, audio_out_seconds=0)
        )

    assert asyncio.run(one()) is None
    assert asyncio.run(asyncio.wait_for(one(), 2)) is None


def test_ticks_are_shared_and_within_a_period(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(beats.time, "time", lambda: 1_000.3)
    monkeypatch.setattr(beats, "_PHASE", 0.0)
    assert next_tick_delay(5.0) == pytest.approx(4.7)
    assert 0 < next_tick_delay(0.1) <= 0.1
