"""The voice consumer over WebsocketCommunicator, with a fake Voice Live SDK connection."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from azure.ai.voicelive.aio import ConnectionError as VoiceLiveConnectionError
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser, Group, User

from assistant import services
from assistant.live import registry
from assistant.models import AssistantProfile, LiveSession
from tests.fakes import FakeConnect, audio_delta
from tests.support.consumer import communicator, next_binary, next_message, start_session

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def default_profile(db: None) -> AssistantProfile:
    # The data migration's default may be there (first test on a fresh database).
    AssistantProfile.objects.filter(is_default=True).exclude(name="Default").update(
        is_default=False
    )
    profile, _ = AssistantProfile.objects.get_or_create(
        name="Default",
        defaults={"instructions": "Be brief.", "is_default": True, "voice": "alloy"},
    )
    return profile


@pytest.fixture
def user(default_profile: AssistantProfile) -> User:
    return User.objects.create_user("alice", password="pw-alice-123")


async def close_code(comm: WebsocketCommunicator, timeout: float = 3.0) -> int:
    async with asyncio.timeout(timeout):
        while True:
            frame = await comm.receive_output(timeout)
            if frame["type"] == "websocket.close":
                return frame.get("code", 1000)


async def start(user: Any, fake: FakeConnect, path: str = "/ws/voice/") -> Any:
    return await start_session(user, path)


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


async def test_barge_in_clears_playback_cancels_and_truncates(
    user: User, fake_connect: FakeConnect
) -> None:
    comm = await start(user, fake_connect)
    conn = fake_connect.last
    conn.push({"type": "response.created", "response": {"id": "resp_1", "status": "in_progress"}})
    conn.push(audio_delta("item_a", b"\x00\x01" * 480))
    await next_binary(comm)
    conn.push(
        {"type": "input_audio_buffer.speech_started", "item_id": "item_u", "audio_start_ms": 0}
    )
    await next_message(comm, "playback.clear")
    await next_message(comm, "speech.started")
    assert (await next_message(comm, "state"))["state"] == "listening"
    await conn.wait_for("response.cancel")
    # The cancel usually finds nothing running: that error is never shown.
    conn.push(
        {
            "type": "error",
            "error": {"type": "invalid_request_error", "code": "response_cancel_not_active"},
        }
    )
    await comm.send_json_to({"type": "playback.interrupted", "item_id": "item_a", "played_ms": 320})
    await conn.wait_for("conversation.item.truncate")
    truncate = conn.sent_of("conversation.item.truncate")[0]
    assert truncate == {
        "type": "conversation.item.truncate",
        "item_id": "item_a",
        "audio_end_ms": 320,
        "content_index": 0,
    }
    assert await comm.receive_nothing(0.2)
    await comm.disconnect()


async def test_transcripts_and_states_follow_a_turn(user: User, fake_connect: FakeConnect) -> None:
    comm = await start(user, fake_connect)
    conn = fake_connect.last
    conn.push({"type": "input_audio_buffer.speech_started", "item_id": "u1", "audio_start_ms": 0})
    conn.push({"type": "input_audio_buffer.speech_stopped", "item_id": "u1", "audio_end_ms": 900})
    conn.push(
        {
            "type": "conversation.item.input_audio_transcription.completed",
            "item_id": "u1",
            "content_index": 0,
            "transcript": "hello there",
        }
    )
    conn.push({"type": "response.created", "response": {"id": "r1", "status": "in_progress"}})
    ids = {"response_id": "r1", "item_id": "a1", "output_index": 0, "content_index": 0}
    conn.push({"type": "response.audio_transcript.delta", "delta": "Hi", **ids})
    conn.push(audio_delta("a1", b"\x00\x00" * 100, "r1"))
    conn.push({"type": "response.audio_transcript.done", "transcript": "Hi!", **ids})
    conn.push({"type": "response.done", "response": {"id": "r1", "status": "completed"}})
    states = []
    user_done = assistant_done = None
    async with asyncio.timeout(3):
        while len(states) < 4 or assistant_done is None:
            frame = await comm.receive_output(2)
            if frame.get("text") is None:
                continue
            message = json.loads(frame["text"])
            if message["type"] == "state":
                states.append(message["state"])
            elif message["type"] == "transcript.user.done":
                user_done = message
            elif message["type"] == "transcript.assistant.done":
                assistant_done = message
    assert states == ["listening", "processing", "assistant_speaking", "ready"]
    assert user_done is not None
    assert user_done["transcript"] == "hello there"
    assert assistant_done["transcript"] == "Hi!"
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
    leftover = {t for t in asyncio.all_tasks() - before if not t.done()}
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


async def test_session_expired_rolls_over_with_context(
    user: User, fake_connect: FakeConnect
) -> None:
    comm = await start(user, fake_connect)
    first = fake_connect.last
    first.push(
        {
            "type": "conversation.item.input_audio_transcription.completed",
            "item_id": "u1",
            "content_index": 0,
            "transcript": "My name is Alice.",
        }
    )
    await next_message(comm, "transcript.user.done")
    first.push(
        {"type": "error", "error": {"type": "invalid_request_error", "code": "session_expired"}}
    )
    first.drop()
    async with asyncio.timeout(2):
        while len(fake_connect.connections) < 2:
            await asyncio.sleep(0.01)
    second = fake_connect.last
    await second.wait_for("conversation.item.create")
    seeded = second.sent_of("conversation.item.create")[0]["item"]
    assert seeded["content"][0]["text"] == "My name is Alice."
    await comm.send_to(bytes_data=b"\x00\x00" * 480)
    await second.wait_for("input_audio_buffer.append")
    await comm.send_json_to({"type": "ping"})
    await next_message(comm, "pong")
    await comm.disconnect()


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


async def test_typing_over_the_assistant_interrupts_and_a_refused_reply_is_asked_again(
    user: User, fake_connect: FakeConnect
) -> None:
    comm = await start(user, fake_connect)
    conn = fake_connect.last
    conn.push({"type": "response.created", "response": {"id": "r1", "status": "in_progress"}})
    conn.push(audio_delta("a1", b"\x00\x01" * 240, "r1"))
    await next_binary(comm)
    await comm.send_json_to({"type": "text.send", "text": "Actually, something else."})
    await next_message(comm, "playback.clear")
    await conn.wait_for("response.create")
    assert [e["type"] for e in conn.sent[-3:]] == [
        "response.cancel",
        "conversation.item.create",
        "response.create",
    ]
    # The service still had the old reply running: not an error for the user, and the reply
    # is requested again once the running one is done.
    conn.push(
        {
            "type": "error",
            "error": {
                "type": "invalid_request_error",
                "code": "conversation_already_has_active_response",
            },
        }
    )
    conn.push({"type": "response.done", "response": {"id": "r1", "status": "cancelled"}})
    await next_message(comm, "response.done")
    await conn.wait_for("response.create", count=2)
    rest = []
    while not await comm.receive_nothing(0.1):
        rest.append(await comm.receive_output())
    assert not [f for f in rest if '"type":"error"' in (f.get("text") or "")]
    await comm.disconnect()


async def test_a_refusal_that_arrives_after_the_running_reply_ended_is_retried(
    user: User, fake_connect: FakeConnect
) -> None:
    """An "already active" refusal after that reply's done: nothing else would ask again."""
    comm = await start(user, fake_connect)
    conn = fake_connect.last
    conn.push({"type": "response.created", "response": {"id": "r1", "status": "in_progress"}})
    conn.push({"type": "response.done", "response": {"id": "r1", "status": "completed"}})
    await next_message(comm, "response.done")
    await comm.send_json_to({"type": "text.send", "text": "And another thing."})
    await conn.wait_for("response.create")
    already_active = {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "code": "conversation_already_has_active_response",
        },
    }
    conn.push(already_active)
    await conn.wait_for("response.create", count=2)
    # Bounded: an upstream that keeps refusing without ever starting a reply is not retried
    # forever (three retries, then the reply waits for the next response.done).
    for _ in range(5):
        conn.push(already_active)
    await asyncio.sleep(0.2)
    assert len(conn.sent_of("response.create")) == 4
    assert await comm.receive_nothing(0.1)
    await comm.disconnect()
