"""The voice consumer over WebsocketCommunicator: admission, frames both ways, close codes.

The Voice Live SDK is faked at its import site (``tests/fakes.py``).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from azure.ai.voicelive.aio import ConnectionError as VoiceLiveConnectionError
from channels.db import database_sync_to_async
from django.contrib.auth.models import AnonymousUser, Group, User

from assistant import protocol
from assistant.history.writer import history
from assistant.models import AssistantProfile, LiveSession
from tests.fakes import FakeConnect, audio_delta
from tests.sessions import close_code, start
from tests.support.consumer import communicator, next_binary, next_message

pytestmark = pytest.mark.django_db(transaction=True)


async def test_anonymous_user_is_rejected_before_any_upstream(fake_connect: FakeConnect) -> None:
    comm = communicator(AnonymousUser())
    connected, code = await comm.connect()
    assert not connected
    assert code == 4401
    assert fake_connect.calls == []


async def test_session_update_carries_the_profile(
    user: User, default_profile: AssistantProfile, fake_connect: FakeConnect
) -> None:
    comm = communicator(user)
    await comm.connect()
    assert (await next_message(comm, "state"))["state"] == "connecting"
    assert (await next_message(comm, "state"))["state"] == "ready"
    ready = await next_message(comm, "session.ready")
    assert ready["profile"] == {"id": default_profile.pk, "name": "Default"}
    session = fake_connect.last.sent_of("session.update")[0]["session"]
    assert session["instructions"] == "Be brief."
    assert session["voice"] == {"type": "openai", "name": "alloy"}
    assert session["turn_detection"]["type"] == "server_vad"
    assert session["turn_detection"]["silence_duration_ms"] == 500
    assert session["input_audio_sampling_rate"] == 24000
    assert fake_connect.calls[0]["model"] == "gpt-realtime"
    await comm.disconnect()


async def test_audio_frames_reach_the_upstream(user: User, fake_connect: FakeConnect) -> None:
    comm = await start(user, fake_connect)
    frames = [bytes([i]) * 1920 for i in range(1, 6)]
    for frame in frames:
        await comm.send_to(bytes_data=frame)
    async with asyncio.timeout(2):
        while fake_connect.last.appended_audio() != b"".join(frames):
            await asyncio.sleep(0.01)
    await comm.disconnect()


async def test_upstream_audio_reaches_the_browser_as_binary(
    user: User, fake_connect: FakeConnect
) -> None:
    comm = await start(user, fake_connect)
    fake_connect.last.push(audio_delta("item_a", b"\x01\x02" * 240))
    start_msg = await next_message(comm, "audio.start")
    assert start_msg["item_id"] == "item_a"
    assert await next_binary(comm) == b"\x01\x02" * 240
    await comm.disconnect()


async def test_upstream_unavailable_gives_error_state_and_close_code(
    user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeConnect(fail=VoiceLiveConnectionError("Failed to establish WebSocket connection"))
    monkeypatch.setattr("assistant.voicelive.upstream.connect", fake)
    comm = communicator(user)
    connected, _ = await comm.connect()
    assert connected
    error = await next_message(comm, "error")
    assert error["code"] == "upstream_unavailable"
    assert "Traceback" not in error["message"]
    assert (await next_message(comm, "state"))["state"] == "error"
    assert await close_code(comm) == 4502
    await comm.wait(2)
    assert await LiveSession.objects.acount() == 0


async def test_upstream_connect_timeout_is_bounded(
    user: User, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    settings.VOICE_CONNECT_TIMEOUT = 0.3
    monkeypatch.setattr("assistant.voicelive.upstream.connect", FakeConnect(hang=True))
    comm = communicator(user)
    await comm.connect()
    started = asyncio.get_running_loop().time()
    assert (await next_message(comm, "error"))["code"] == "upstream_unavailable"
    assert await close_code(comm) == 4502
    assert asyncio.get_running_loop().time() - started < 2


async def test_upstream_drop_ends_the_session_cleanly(
    user: User, fake_connect: FakeConnect
) -> None:
    comm = await start(user, fake_connect)
    fake_connect.last.drop()
    assert (await next_message(comm, "error"))["code"] == "upstream_lost"
    assert await close_code(comm) == 4502


async def test_disconnect_leaves_no_running_task(user: User, fake_connect: FakeConnect) -> None:
    before = asyncio.all_tasks()
    comm = await start(user, fake_connect)
    await comm.send_to(bytes_data=b"\x00\x00" * 480)
    await comm.disconnect()
    await asyncio.sleep(0.05)
    # The history writer's flush task is the worker's (like the heartbeat's), not the session's.
    leftover = {
        t for t in asyncio.all_tasks() - before if not t.done() and not history.is_own_task(t)
    }
    assert leftover == set()
    assert fake_connect.last.closed
    assert await LiveSession.objects.acount() == 0


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ({"text_data": "{not json"}, "bad_json"),
        ({"text_data": "[1, 2]"}, "bad_message"),
        ({"text_data": '{"type": "session.update", "session": {}}'}, "unknown_type"),
        ({"text_data": '{"type": "playback.interrupted", "item_id": "x"}'}, "bad_message"),
        ({"text_data": '{"type": "text.send", "text": 5}'}, "bad_message"),
        ({"text_data": "x" * 20000}, "message_too_large"),
        ({"bytes_data": b"\x00\x01\x02"}, "bad_audio"),
        ({"bytes_data": b""}, "bad_audio"),
        ({"bytes_data": b"\x00" * 40000}, "message_too_large"),
    ],
)
async def test_bad_input_gets_a_code_and_the_session_survives(
    user: User, fake_connect: FakeConnect, frame: dict[str, Any], code: str
) -> None:
    comm = await start(user, fake_connect)
    # send_input, not send_to: the test client refuses to send an empty frame itself.
    if "text_data" in frame:
        await comm.send_input({"type": "websocket.receive", "text": frame["text_data"]})
    else:
        await comm.send_input({"type": "websocket.receive", "bytes": frame["bytes_data"]})
    assert (await next_message(comm, "error"))["code"] == code
    await comm.send_json_to({"type": "ping"})
    await next_message(comm, "pong")
    forwarded = [e["type"] for e in fake_connect.last.sent]
    assert forwarded == ["session.update"]
    await comm.disconnect()


async def test_text_message_is_sent_upstream_with_a_response(
    user: User, fake_connect: FakeConnect
) -> None:
    comm = await start(user, fake_connect)
    await comm.send_json_to({"type": "text.send", "text": "  What time is it?  "})
    await fake_connect.last.wait_for("response.create")
    item = fake_connect.last.sent_of("conversation.item.create")[0]["item"]
    assert item["content"] == [{"type": "input_text", "text": "What time is it?"}]
    await comm.disconnect()


async def test_profile_not_assigned_is_forbidden(
    user: User, fake_connect: FakeConnect, default_profile: AssistantProfile
) -> None:
    other = await AssistantProfile.objects.acreate(name="Secret", instructions="x")
    comm = communicator(user, f"/ws/voice/?profile={other.pk}")
    await comm.connect()
    assert (await next_message(comm, "error"))["code"] == "profile_forbidden"
    assert await close_code(comm) == 4403
    assert fake_connect.calls == []


async def test_group_assignment_is_respected(user: User, fake_connect: FakeConnect) -> None:
    @database_sync_to_async
    def assign() -> AssistantProfile:
        group = Group.objects.create(name="sales")
        user.groups.add(group)
        profile = AssistantProfile.objects.create(name="Sales", instructions="Sell things.")
        profile.groups.add(group)
        return profile

    sales = await assign()
    comm = await start(user, fake_connect)
    session = fake_connect.last.sent_of("session.update")[0]["session"]
    assert session["instructions"] == "Sell things."
    assert await LiveSession.objects.filter(profile=sales).aexists()
    await comm.disconnect()


async def test_a_session_ended_while_joining_its_groups_never_opens_the_upstream(
    user: User, fake_connect: FakeConnect, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An end that lands while the control subscription joins its groups (Redis slow)."""
    from assistant.live.control import ControlSubscription

    join = ControlSubscription.start

    async def slow_start(self: ControlSubscription, groups: list[str]) -> None:
        await join(self, groups)
        # What a heartbeat finding an end request, or a drain, does meanwhile.
        await self._handler(protocol.session_end("terminated"))

    monkeypatch.setattr(ControlSubscription, "start", slow_start)
    comm = communicator(user)
    await comm.connect()
    assert (await next_message(comm, "error"))["code"] == "terminated"
    assert await close_code(comm) == 4410
    await asyncio.sleep(0.1)
    assert fake_connect.calls == []
    assert await LiveSession.objects.acount() == 0


@pytest.mark.parametrize("step", ["admit", "claim"])
async def test_a_database_error_at_the_handshake_is_a_retryable_code_not_a_500(
    user: User, fake_connect: FakeConnect, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    """SQLite lock contention while claiming the session (issue 19): a stable, retryable code."""
    from django.db import OperationalError

    from assistant.calls import call as voice

    async def locked(**kwargs: Any) -> Any:
        raise OperationalError("database is locked")

    if step == "admit":
        monkeypatch.setattr(voice, "admit", locked)
    else:
        monkeypatch.setattr(voice.registry, "asession_claim", locked)
    comm = communicator(user)
    connected, _ = await comm.connect()
    assert connected  # accepted only to say why
    error = await next_message(comm, "error")
    assert error["code"] == "server_busy"
    assert await close_code(comm) == 4503
    assert fake_connect.calls == []
    assert not await LiveSession.objects.aexists()


async def test_a_terminate_ends_the_call_from_outside_the_control_subscription(
    user: User, fake_connect: FakeConnect, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An admin's Terminate: registry -> layer -> subscription -> call, and no return trip.

    The call's release closes the control subscription; it must not do so from inside the
    subscription's own task (which would have to recognise itself and could not be awaited).
    """
    from assistant.codes import Ending
    from assistant.live import registry
    from assistant.live.control import ControlSubscription

    closed_from_own_task: list[bool] = []
    aclose = ControlSubscription.aclose

    async def recording_aclose(self: ControlSubscription) -> None:
        closed_from_own_task.append(asyncio.current_task() is self._task)
        await aclose(self)

    monkeypatch.setattr(ControlSubscription, "aclose", recording_aclose)
    comm = await start(user, fake_connect)
    row = await LiveSession.objects.aget()
    asked = await database_sync_to_async(registry.session_end_request)(
        session_id=row.pk, reason=Ending.TERMINATED
    )
    assert asked
    assert (await next_message(comm, "error"))["code"] == "terminated"
    assert await close_code(comm) == 4410
    async with asyncio.timeout(3):
        while not closed_from_own_task:
            await asyncio.sleep(0.02)
    assert closed_from_own_task == [False]
    assert fake_connect.last.closed
