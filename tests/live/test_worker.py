"""A worker's live sessions: pending slots and memberships (count, heartbeat, registry row)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.contrib.auth.models import User

from assistant.codes import Ending
from assistant.live import registry
from assistant.live import worker as worker_module
from assistant.live.beats import heartbeats
from assistant.live.worker import Membership, PendingSlot, worker
from assistant.models import AssistantProfile, LiveSession


class Session:
    """A live session as the worker and the heartbeat see it."""

    def __init__(self, session_id: uuid.UUID) -> None:
        self.session_id = session_id
        self.ended: list[Ending] = []

    async def end(self, ending: Ending) -> None:
        self.ended.append(ending)

    def beat(self) -> registry.Beat:
        return registry.Beat(self.session_id, "ready", 0.0, 0.0)

    def registry_says_end(self, reason: str) -> None:
        pass

    def registry_orders(self, orders: registry.Orders, read_at: float) -> None:
        pass


def test_a_pending_slot_counts_until_released_once() -> None:
    before = worker.pending
    with PendingSlot() as slot:
        assert worker.pending == before + 1
        slot.release()
        assert worker.pending == before
    assert worker.pending == before  # leaving the block does not give it back twice


def test_a_pending_slot_is_given_back_when_the_handshake_fails() -> None:
    before = worker.pending
    with pytest.raises(RuntimeError), PendingSlot():
        raise RuntimeError("the handshake failed")
    assert worker.pending == before


def test_pending_handshakes_count_against_capacity(settings: Any) -> None:
    settings.VOICE_MAX_SESSIONS_PER_WORKER = len(worker.sessions) + 1
    assert not worker.at_capacity()
    with PendingSlot():
        assert worker.at_capacity()
    assert not worker.at_capacity()


@pytest.mark.django_db(transaction=True)
async def test_a_membership_is_joined_and_left_as_one() -> None:
    user = await User.objects.acreate(username="member")
    profile = await AssistantProfile.objects.acreate(name="Member", voice="alloy")
    claim = await registry.asession_claim(user_id=user.pk, profile_id=profile.pk, channel_name="c")
    assert claim.session_id is not None
    session = Session(claim.session_id)
    membership = Membership(claim.session_id)
    pending = worker.pending
    with PendingSlot() as slot:
        membership.join(session, session, slot)
        # The slot became the session, with no moment counted twice or not at all.
        assert worker.pending == pending
    assert session in worker.sessions
    assert claim.session_id in heartbeats._members
    await membership.leave()
    assert session not in worker.sessions
    assert claim.session_id not in heartbeats._members
    assert not await LiveSession.objects.filter(pk=claim.session_id).aexists()
    membership.forget()  # idempotent: the release's last resort after a leave
    assert session not in worker.sessions


@pytest.mark.django_db(transaction=True)
async def test_leaving_lets_go_of_the_session_when_the_registry_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A database that fails (or hangs) must not keep a dead session counted by the worker."""

    async def broken_release(*, session_id: uuid.UUID) -> None:
        raise ConnectionError("database down")

    monkeypatch.setattr(registry, "asession_release", broken_release)
    session = Session(uuid.uuid4())
    membership = Membership(session.session_id)
    with PendingSlot() as slot:
        membership.join(session, session, slot)
    await membership.leave()
    assert session not in worker.sessions
    assert session.session_id not in heartbeats._members


async def test_a_drain_ends_every_session_with_the_retryable_code(settings: Any) -> None:
    settings.VOICE_DRAIN_SECONDS = 0.2
    drained = worker_module.Worker()
    sessions = [Session(uuid.uuid4()) for _ in range(2)]
    for session in sessions:
        drained.add(session)
    await drained.drain(stop_server=False)
    assert drained.draining
    assert all(s.ended == [Ending.DRAINING] for s in sessions)
