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


class Member:
    """A session as the heartbeat sees it."""

    def __init__(self, session_id: uuid.UUID) -> None:
        self.session_id = session_id
        self.told: list[str] = []

    def beat(self) -> Beat:
        return Beat(
            session_id=self.session_id, state="ready", audio_in_seconds=0, audio_out_seconds=0
        )

    def registry_says_end(self, reason: str) -> None:
        self.told.append(reason)


@pytest.fixture
def fast_ticks(settings: Any) -> None:
    settings.VOICE_HEARTBEAT_SECONDS = 0.05


async def test_one_tick_one_database_call_for_all_sessions(
    monkeypatch: pytest.MonkeyPatch, fast_ticks: None
) -> None:
    calls: list[list[Beat]] = []
    members = [Member(uuid.uuid4()) for _ in range(3)]
    ended = members[2]

    async def fake_write(batch: list[Beat]) -> dict[uuid.UUID, str]:
        calls.append(batch)
        return {ended.session_id: "replaced"}

    monkeypatch.setattr(registry, "asessions_heartbeat", fake_write)
    batcher = HeartbeatBatcher()
    for member in members:
        batcher.join(member.session_id, member)
    async with asyncio.timeout(2):
        while not calls:
            await asyncio.sleep(0.01)
    assert {b.session_id for b in calls[0]} == {m.session_id for m in members}
    assert ended.told == ["replaced"]
    assert members[0].told == members[1].told == []
    for member in members:
        batcher.leave(member.session_id)
    await asyncio.sleep(0.15)  # no members: the task ends
    assert batcher._task is not None
    assert batcher._task.done()


async def test_a_failed_write_is_logged_and_the_next_tick_tries_again(
    monkeypatch: pytest.MonkeyPatch, fast_ticks: None, caplog: pytest.LogCaptureFixture
) -> None:
    attempts = 0

    async def failing_write(batch: list[Beat]) -> dict[uuid.UUID, str]:
        nonlocal attempts
        attempts += 1
        raise RuntimeError("database is locked")

    monkeypatch.setattr(registry, "asessions_heartbeat", failing_write)
    batcher = HeartbeatBatcher()
    member = Member(uuid.uuid4())
    batcher.join(member.session_id, member)
    async with asyncio.timeout(2):
        while attempts < 2:
            await asyncio.sleep(0.01)
    batcher.leave(member.session_id)
    assert member.told == []  # a failed write ends nobody's call
    assert "heartbeat of 1 sessions failed" in caplog.text


def test_the_batcher_survives_a_new_event_loop(
    monkeypatch: pytest.MonkeyPatch, fast_ticks: None
) -> None:
    """Each asyncio.run (or test) has its own loop: members of a finished loop are dropped."""
    seen: list[set[uuid.UUID]] = []

    async def fake_write(batch: list[Beat]) -> dict[uuid.UUID, str]:
        seen.append({b.session_id for b in batch})
        return {}

    monkeypatch.setattr(registry, "asessions_heartbeat", fake_write)
    batcher = HeartbeatBatcher()
    old, new = Member(uuid.uuid4()), Member(uuid.uuid4())

    async def join_and_wait(member: Member) -> None:
        batcher.join(member.session_id, member)
        await asyncio.sleep(0.2)

    asyncio.run(join_and_wait(old))  # the loop ends without old leaving
    seen.clear()
    asyncio.run(join_and_wait(new))
    assert seen
    assert all(ids == {new.session_id} for ids in seen)


def test_ticks_are_shared_and_within_a_period(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(beats.time, "time", lambda: 1_000.3)
    monkeypatch.setattr(beats, "_PHASE", 0.0)
    assert next_tick_delay(5.0) == pytest.approx(4.7)
    assert 0 < next_tick_delay(0.1) <= 0.1
