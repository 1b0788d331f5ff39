"""Heartbeats: many sessions' registry rows in one write, each caller its own answer."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from assistant.live import beats, registry
from assistant.live.beats import HeartbeatBatcher, next_tick_delay
from assistant.live.registry import Beat
from assistant.models import AssistantProfile, LiveSession


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
        Beat(
            session_id=s.pk,
            state="listening",
            audio_in_seconds=1.5,
            audio_out_seconds=0.5,
            typed_seconds=2.0,
        )
        for s in live_sessions
    ]
    with CaptureQueriesContext(connection) as queries:
        orders = registry.sessions_tick(beats_in)
    reasons = {sid: o.end_reason for sid, o in orders.items() if o.end_reason}
    # An executemany is logged as "<n> times: <sql>".
    statements = [q["sql"].split(": ", 1)[-1].split()[0].upper() for q in queries.captured_queries]
    # Two SELECTs (the rows with their profile's version; the monitor attachments) and one
    # UPDATE (executemany), whatever the number of sessions; the rest is the transaction around
    # the UPDATE (a savepoint here, inside the test's transaction).
    selects_updates = [s for s in statements if s in ("SELECT", "UPDATE")]
    assert selects_updates == ["SELECT", "SELECT", "UPDATE"]
    assert reasons == {second.pk: "terminated", third.pk: "gone"}
    row = LiveSession.objects.get(pk=first.pk)
    assert (row.state, row.audio_in_seconds, row.audio_out_seconds) == ("listening", 1.5, 0.5)
    assert row.typed_seconds == 2.0  # what quotas count of the session besides its audio
    assert row.last_seen > first.last_seen


def test_the_tick_reads_profile_versions_and_monitors(live_sessions: list[LiveSession]) -> None:
    """The slow path of profile changes and monitor attachments (issue 9.7)."""
    from assistant.models import MonitorAttachment
    from assistant.voicelive.config import profile_version

    first, second, _ = live_sessions
    MonitorAttachment.objects.create(session=first, channel_name="mon-1", audio=True)
    beats_in = [
        Beat(session_id=s.pk, state="ready", audio_in_seconds=0, audio_out_seconds=0)
        for s in (first, second)
    ]
    orders = registry.sessions_tick(beats_in)
    assert first.profile is not None
    version = profile_version(first.profile.updated_at)
    assert orders[first.pk] == registry.Orders(profile_version=version, monitors={"mon-1": True})
    assert orders[second.pk] == registry.Orders(profile_version=version)
    first.delete()  # the attachments go with the session
    assert not MonitorAttachment.objects.exists()


def test_no_beats_no_query(db: None) -> None:
    with CaptureQueriesContext(connection) as queries:
        assert registry.sessions_tick([]) == {}
    assert not queries


class Member:
    """A session as the heartbeat sees it."""

    def __init__(self, session_id: uuid.UUID) -> None:
        self.session_id = session_id
        self.told: list[str] = []
        self.orders: list[registry.Orders] = []

    def beat(self) -> Beat:
        return Beat(
            session_id=self.session_id, state="ready", audio_in_seconds=0, audio_out_seconds=0
        )

    def registry_says_end(self, reason: str) -> None:
        self.told.append(reason)

    def registry_orders(self, orders: registry.Orders, read_at: float) -> None:
        self.orders.append(orders)


@pytest.fixture
def fast_ticks(settings: Any) -> None:
    settings.VOICE_HEARTBEAT_SECONDS = 0.05


async def test_one_tick_one_database_call_for_all_sessions(
    monkeypatch: pytest.MonkeyPatch, fast_ticks: None
) -> None:
    calls: list[list[Beat]] = []
    members = [Member(uuid.uuid4()) for _ in range(3)]
    ended = members[2]

    async def fake_write(batch: list[Beat]) -> dict[uuid.UUID, registry.Orders]:
        calls.append(batch)
        return {
            b.session_id: registry.Orders(
                end_reason="replaced" if b.session_id == ended.session_id else ""
            )
            for b in batch
        }

    monkeypatch.setattr(registry, "asessions_tick", fake_write)
    batcher = HeartbeatBatcher()
    for member in members:
        batcher.join(member.session_id, member)
    async with asyncio.timeout(2):
        while not calls:
            await asyncio.sleep(0.01)
    assert {b.session_id for b in calls[0]} == {m.session_id for m in members}
    assert ended.told == ["replaced"]
    assert members[0].told == members[1].told == []
    assert members[0].orders == [registry.Orders()]  # the others hear the rest of the orders
    for member in members:
        batcher.leave(member.session_id)
    await asyncio.sleep(0.15)  # no members: the task ends
    assert batcher._task is not None
    assert batcher._task.done()


async def test_a_failed_write_is_logged_and_the_next_tick_tries_again(
    monkeypatch: pytest.MonkeyPatch, fast_ticks: None, caplog: pytest.LogCaptureFixture
) -> None:
    attempts = 0

    async def failing_write(batch: list[Beat]) -> dict[uuid.UUID, registry.Orders]:
        nonlocal attempts
        attempts += 1
        raise RuntimeError("database is locked")

    monkeypatch.setattr(registry, "asessions_tick", failing_write)
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

    async def fake_write(batch: list[Beat]) -> dict[uuid.UUID, registry.Orders]:
        seen.append({b.session_id for b in batch})
        return {}

    monkeypatch.setattr(registry, "asessions_tick", fake_write)
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
