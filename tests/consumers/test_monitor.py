"""Live monitors over WebsocketCommunicator: who may watch, what they see, how it ends."""

from __future__ import annotations

import uuid

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import Permission, User

from assistant.models import LiveSession
from tests.fakes import FakeConnect
from tests.sessions import close_code, start
from tests.support.consumer import communicator, next_message

pytestmark = pytest.mark.django_db(transaction=True)


@database_sync_to_async
def make_staff(username: str, *, permitted: bool = True) -> User:
    staff = User.objects.create_user(username, password="pw-staff-123", is_staff=True)
    if permitted:
        staff.user_permissions.add(Permission.objects.get(codename="monitor_livesession"))
    return User.objects.get(pk=staff.pk)  # fresh: no cached permissions


async def monitor(staff: User, session_id: object) -> WebsocketCommunicator:
    comm = communicator(staff, f"/ws/monitor/{session_id}/")
    comm.scope["url_route"] = {"kwargs": {"session_id": str(session_id)}}
    return comm


async def test_staff_without_the_permission_are_refused(user: User) -> None:
    staff = await make_staff("nosy", permitted=False)
    comm = await monitor(staff, uuid.uuid4())
    connected, code = await comm.connect()
    assert not connected
    assert code == 4403


async def test_an_unknown_session_ends_the_monitor_with_a_reason() -> None:
    staff = await make_staff("watcher")
    comm = await monitor(staff, uuid.uuid4())
    connected, _ = await comm.connect()
    assert connected
    assert (await next_message(comm, "monitor.ended"))["reason"] == "not_found"
    assert await close_code(comm) == 1000


async def test_a_monitor_sees_the_session_and_its_end(
    user: User, fake_connect: FakeConnect
) -> None:
    talker = await start(user, fake_connect)
    row = await LiveSession.objects.aget()
    staff = await make_staff("watcher")
    comm = await monitor(staff, row.pk)
    connected, _ = await comm.connect()
    assert connected
    attached = await next_message(comm, "monitor.attached")
    assert attached["session_id"] == str(row.pk)
    assert attached["username"] == user.get_username()
    fake_connect.last.push(
        {
            "type": "conversation.item.input_audio_transcription.completed",
            "item_id": "u1",
            "content_index": 0,
            "transcript": "Hello.",
        }
    )
    # A copy of what the session sent its browser ...
    assert (await next_message(comm, "transcript.user.done"))["transcript"] == "Hello."
    await talker.send_json_to({"type": "session.stop"})
    # ... then the end, when the session ends.
    assert (await next_message(comm, "monitor.ended"))["reason"] == "ended"
    assert await close_code(comm) == 1000
    await talker.disconnect()
