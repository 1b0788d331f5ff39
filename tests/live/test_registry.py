"""The cross-worker registry of live sessions: claims, end requests, monitors, release."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.contrib.auth.models import User
from django.utils import timezone

from assistant.live import registry
from assistant.models import AssistantProfile, LiveSession, MonitorAttachment


@pytest.fixture
def profile(db: None) -> AssistantProfile:
    return AssistantProfile.objects.create(name="Registry", voice="alloy")


@pytest.fixture
def user(db: None) -> User:
    return User.objects.create_user("regina", password="pw-regina-123")


def claim(user: User, profile: AssistantProfile, channel: str = "chan") -> registry.Claim:
    return registry.session_claim(user_id=user.pk, profile_id=profile.pk, channel_name=channel)


def test_a_claim_registers_a_row_for_this_worker(
    user: User, profile: AssistantProfile, settings: Any
) -> None:
    settings.VOICE_WORKER_NAME = "worker-7"
    first = claim(user, profile, "chan-1")
    assert not first.refused
    assert first.replaced == []
    row = LiveSession.objects.get(pk=first.session_id)
    assert (row.user_id, row.profile_id, row.channel_name) == (user.pk, profile.pk, "chan-1")
    assert row.worker == "worker-7"
    assert row.end_reason == ""
    assert row.last_seen > timezone.now() - timedelta(seconds=5)


def test_takeover_marks_the_oldest_session_replaced(
    user: User, profile: AssistantProfile, settings: Any
) -> None:
    settings.VOICE_SESSIONS_PER_USER = 1
    settings.VOICE_SESSION_POLICY = "takeover"
    first = claim(user, profile, "chan-1")
    second = claim(user, profile, "chan-2")
    assert second.replaced == [(first.session_id, "chan-1")]
    assert LiveSession.objects.get(pk=first.session_id).end_reason == "replaced"
    assert LiveSession.objects.get(pk=second.session_id).end_reason == ""
    # A replaced session no longer counts against the limit.
    third = claim(user, profile, "chan-3")
    assert third.replaced == [(second.session_id, "chan-2")]


def test_refuse_policy_refuses_beyond_the_limit(
    user: User, profile: AssistantProfile, settings: Any
) -> None:
    settings.VOICE_SESSIONS_PER_USER = 2
    settings.VOICE_SESSION_POLICY = "refuse"
    assert not claim(user, profile, "a").refused
    assert not claim(user, profile, "b").refused
    refused = claim(user, profile, "c")
    assert refused.refused
    assert refused.session_id is None
    assert LiveSession.objects.count() == 2


def test_a_claim_forgets_the_users_rows_whose_heartbeat_stopped(
    user: User, profile: AssistantProfile, settings: Any
) -> None:
    """A crashed worker's row does not hold the user's slot for ever."""
    settings.VOICE_SESSIONS_PER_USER = 1
    settings.VOICE_SESSION_POLICY = "refuse"
    dead = claim(user, profile, "dead")
    LiveSession.objects.filter(pk=dead.session_id).update(
        last_seen=registry.stale_before() - timedelta(seconds=1)
    )
    fresh = claim(user, profile, "fresh")
    assert not fresh.refused
    assert list(LiveSession.objects.values_list("channel_name", flat=True)) == ["fresh"]


def test_stale_before_is_three_heartbeats_ago(settings: Any) -> None:
    settings.VOICE_HEARTBEAT_SECONDS = 10
    age = timezone.now() - registry.stale_before()
    assert timedelta(seconds=29) < age < timedelta(seconds=31)


def test_monitors_are_recorded_for_live_sessions_only(
    user: User, profile: AssistantProfile
) -> None:
    session_id = claim(user, profile).session_id
    assert session_id is not None
    assert registry.monitor_attach(session_id=session_id, channel_name="mon", audio=False)
    # Attaching again updates the one row.
    assert registry.monitor_attach(session_id=session_id, channel_name="mon", audio=True)
    assert list(MonitorAttachment.objects.values_list("channel_name", "audio")) == [("mon", True)]
    assert not registry.monitor_attach(session_id=uuid.uuid4(), channel_name="m2", audio=False)
    registry.monitor_detach(channel_name="mon")
    assert not MonitorAttachment.objects.exists()


def test_release_deletes_the_row_and_its_monitors(user: User, profile: AssistantProfile) -> None:
    session_id = claim(user, profile).session_id
    assert session_id is not None
    registry.monitor_attach(session_id=session_id, channel_name="mon", audio=False)
    registry.session_release(session_id=session_id)
    assert not LiveSession.objects.exists()
    assert not MonitorAttachment.objects.exists()


@pytest.mark.django_db(transaction=True)
async def test_an_end_request_is_written_to_the_row_and_sent_to_the_session() -> None:
    """Both paths: the layer message (fast) and the row the heartbeat reads (slow)."""
    layer = get_channel_layer()
    channel = await layer.new_channel()
    user = await User.objects.acreate(username="ender")
    profile = await AssistantProfile.objects.acreate(name="Ender", voice="alloy")
    claimed = await registry.asession_claim(
        user_id=user.pk, profile_id=profile.pk, channel_name=channel
    )
    assert claimed.session_id is not None
    request = database_sync_to_async(registry.session_end_request)
    assert await request(session_id=claimed.session_id, reason="terminated")
    async with asyncio.timeout(2):
        assert await layer.receive(channel) == {"type": "session.end", "reason": "terminated"}
    row = await LiveSession.objects.aget(pk=claimed.session_id)
    assert row.end_reason == "terminated"
    assert not await request(session_id=uuid.uuid4(), reason="terminated")


@pytest.mark.django_db(transaction=True)
async def test_logout_ends_every_session_of_the_user_through_their_group() -> None:
    layer = get_channel_layer()
    channel = await layer.new_channel()
    user = await User.objects.acreate(username="leaver")
    other = await User.objects.acreate(username="stayer")
    profile = await AssistantProfile.objects.acreate(name="Leaver", voice="alloy")
    await layer.group_add(registry.user_group(user.pk), channel)
    for owner in (user, user, other):
        await registry.asession_claim(user_id=owner.pk, profile_id=profile.pk, channel_name="x")
    ended = await database_sync_to_async(registry.user_sessions_end)(
        user_id=user.pk, reason="logout"
    )
    assert ended == 2
    async with asyncio.timeout(2):
        assert await layer.receive(channel) == {"type": "session.end", "reason": "logout"}
    reasons = {
        (owner_id, reason)
        async for owner_id, reason in LiveSession.objects.values_list("user_id", "end_reason")
    }
    assert reasons == {(user.pk, "logout"), (other.pk, "")}
    await layer.group_discard(registry.user_group(user.pk), channel)
