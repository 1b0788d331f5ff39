"""The session supervisor: takeover, end requests, profile changes, heartbeat, re-validation.

Driven through the voice consumer, with the Voice Live SDK faked (``tests/fakes.py``).
"""

from __future__ import annotations

from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth.models import User

from assistant import services
from assistant.live import registry
from assistant.models import AssistantProfile, LiveSession
from tests.fakes import FakeConnect
from tests.sessions import close_code, start
from tests.support.consumer import communicator, next_message

pytestmark = pytest.mark.django_db(transaction=True)


async def test_second_session_takes_over_the_first(user: User, fake_connect: FakeConnect) -> None:
    first = await start(user, fake_connect)
    second = await start(user, fake_connect)
    assert (await next_message(first, "error"))["code"] == "session_replaced"
    assert await close_code(first) == 4409
    await first.disconnect()
    assert await LiveSession.objects.acount() == 1
    await second.disconnect()


async def test_refuse_policy_refuses_the_second_session(
    user: User, fake_connect: FakeConnect, settings: Any
) -> None:
    settings.VOICE_SESSION_POLICY = "refuse"
    first = await start(user, fake_connect)
    second = communicator(user)
    await second.connect()
    assert (await next_message(second, "error"))["code"] == "too_many_sessions"
    assert await close_code(second) == 4429
    assert len(fake_connect.calls) == 1
    await first.send_json_to({"type": "ping"})
    await next_message(first, "pong")
    await first.disconnect()


async def test_profile_change_applies_live_without_reconnecting(
    user: User, fake_connect: FakeConnect, default_profile: AssistantProfile
) -> None:
    comm = await start(user, fake_connect)
    default_profile.instructions = "Answer like a pirate."
    default_profile.vad_silence_duration_ms = 800
    await database_sync_to_async(services.profile_save)(profile=default_profile)
    updated = await next_message(comm, "profile.updated")
    assert updated["profile"]["id"] == default_profile.pk
    updates = fake_connect.last.sent_of("session.update")
    assert len(updates) == 2
    assert updates[1]["session"]["instructions"] == "Answer like a pirate."
    assert updates[1]["session"]["turn_detection"]["silence_duration_ms"] == 800
    assert len(fake_connect.calls) == 1
    await comm.disconnect()


async def test_admin_terminate_ends_the_session(user: User, fake_connect: FakeConnect) -> None:
    comm = await start(user, fake_connect)
    row = await LiveSession.objects.aget()
    await database_sync_to_async(registry.session_end_request)(
        session_id=row.pk, reason="terminated"
    )
    assert (await next_message(comm, "error"))["code"] == "terminated"
    assert await close_code(comm) == 4410


async def test_logout_ends_live_sessions(user: User, fake_connect: FakeConnect) -> None:
    comm = await start(user, fake_connect)
    await database_sync_to_async(registry.user_sessions_end)(user_id=user.pk, reason="logout")
    assert await close_code(comm) == 4401


async def test_end_request_lands_through_the_heartbeat_without_the_layer(
    user: User, fake_connect: FakeConnect, settings: Any
) -> None:
    """A terminate whose layer message is lost still ends the session at the next heartbeat."""
    settings.VOICE_HEARTBEAT_SECONDS = 0.1
    comm = await start(user, fake_connect)
    await LiveSession.objects.all().aupdate(end_reason="terminated")
    assert await close_code(comm) == 4410


async def test_deleted_login_session_ends_the_call_at_revalidation(
    user: User, fake_connect: FakeConnect, settings: Any
) -> None:
    """Sessions expired or deleted server-side (not via logout) are caught by the re-check."""
    from django.contrib.sessions.backends.db import SessionStore

    settings.VOICE_HEARTBEAT_SECONDS = 0.05
    settings.VOICE_REVALIDATE_SECONDS = 0.1
    store = SessionStore()
    await store.aset("_auth_user_id", str(user.pk))
    await store.asave()
    comm = communicator(user)
    comm.scope["session"] = store
    connected, _ = await comm.connect()
    assert connected
    await next_message(comm, "session.ready")
    await comm.send_json_to({"type": "ping"})
    await next_message(comm, "pong")
    await store.adelete()
    assert await close_code(comm) == 4401
