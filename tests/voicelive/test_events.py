"""The event router, seen from the browser: barge-in, transcripts, states, refused replies.

Driven through the voice consumer, with the Voice Live SDK faked (``tests/fakes.py``).
"""

from __future__ import annotations

import asyncio
import json

import pytest
from django.contrib.auth.models import User

from assistant.models import AssistantProfile
from tests.fakes import FakeConnect, audio_delta
from tests.sessions import start
from tests.support.consumer import next_binary, next_message

pytestmark = pytest.mark.django_db(transaction=True)


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


async def test_transcripts_that_are_not_text_are_counted_and_the_session_goes_on(
    user: User, fake_connect: FakeConnect
) -> None:
    """An upstream ``transcript`` of 42 or an object used to end the session (issue 19)."""
    from assistant import metrics

    bad_fields = metrics.UPSTREAM_ERRORS.labels(kind="bad_field")
    before = bad_fields._value.get()
    comm = await start(user, fake_connect)
    conn = fake_connect.last
    user_item = {"item_id": "u1", "content_index": 0}
    ids = {"response_id": "r1", "item_id": "a1", "output_index": 0, "content_index": 0}
    conn.push(
        {"type": "conversation.item.input_audio_transcription.delta", "delta": 7, **user_item}
    )
    conn.push(
        {
            "type": "conversation.item.input_audio_transcription.completed",
            "transcript": 42,
            **user_item,
        }
    )
    conn.push({"type": "response.created", "response": {"id": "r1", "status": "in_progress"}})
    conn.push({"type": "response.audio_transcript.delta", "delta": ["x"], **ids})
    conn.push({"type": "response.audio_transcript.done", "transcript": {"a": 1}, **ids})
    conn.push({"type": "response.text.done", "text": 3.5, **ids})
    user_done = await next_message(comm, "transcript.user.done")
    assert user_done["transcript"] == ""
    assert (await next_message(comm, "transcript.assistant.done"))["transcript"] == ""
    await comm.send_json_to({"type": "ping"})
    await next_message(comm, "pong")
    assert bad_fields._value.get() - before == 5
    await comm.disconnect()


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


async def _reply_playing(comm: object, conn: object) -> None:
    conn.push({"type": "response.created", "response": {"id": "r1", "status": "in_progress"}})  # type: ignore[attr-defined]
    conn.push(audio_delta("a1", b"\x00\x01" * 480, "r1"))  # type: ignore[attr-defined]
    await next_binary(comm)
    conn.push(  # type: ignore[attr-defined]
        {"type": "input_audio_buffer.speech_started", "item_id": "u1", "audio_start_ms": 0}
    )
    await next_message(comm, "playback.duck")


async def _texts_until(comm: object, kind: str) -> list[dict[str, object]]:
    """Every JSON message up to and including the first of ``kind``."""
    seen: list[dict[str, object]] = []
    async with asyncio.timeout(3):
        while not seen or seen[-1]["type"] != kind:
            frame = await comm.receive_output(3)  # type: ignore[attr-defined]
            if frame.get("text") is not None:
                seen.append(json.loads(frame["text"]))
    return seen


async def test_a_backchannel_over_a_reply_ducks_it_and_lets_it_go_on(
    user: User, fake_connect: FakeConnect
) -> None:
    from assistant import metrics

    backchannels = metrics.OVERLAPS.labels(verdict="backchannel", reason="listed")
    before = backchannels._value.get()
    comm = await start(user, fake_connect)
    conn = fake_connect.last
    await _reply_playing(comm, conn)
    user_item = {"item_id": "u1", "content_index": 0}
    conn.push(
        {"type": "conversation.item.input_audio_transcription.delta", "delta": "Mm", **user_item}
    )
    conn.push({"type": "input_audio_buffer.speech_stopped", "item_id": "u1", "audio_end_ms": 400})
    conn.push(
        {
            "type": "conversation.item.input_audio_transcription.completed",
            "transcript": "Mm-hmm.",
            **user_item,
        }
    )
    seen = await _texts_until(comm, "playback.resume")
    # The page never hears of the backchannel as a turn: no clear, no user line, no state.
    kinds = {message["type"] for message in seen}
    assert kinds.isdisjoint(
        {"playback.clear", "speech.started", "speech.stopped", "transcript.user.delta"}
    )
    await conn.wait_for("conversation.item.delete")
    assert conn.sent_of("conversation.item.delete") == [
        {"type": "conversation.item.delete", "item_id": "u1"}
    ]
    assert conn.sent_of("response.cancel") == []
    assert backchannels._value.get() == before + 1
    # The reply goes on; then the upstream's own reply to the deleted item is cancelled unheard.
    conn.push(audio_delta("a1", b"\x00\x02" * 480, "r1"))
    assert await next_binary(comm) == b"\x00\x02" * 480
    conn.push({"type": "response.done", "response": {"id": "r1", "status": "completed"}})
    assert (await next_message(comm, "response.done"))["status"] == "completed"
    assert (await next_message(comm, "state"))["state"] == "ready"
    conn.push({"type": "response.created", "response": {"id": "r2", "status": "in_progress"}})
    conn.push(audio_delta("a2", b"\x00\x03" * 480, "r2"))
    await conn.wait_for("response.cancel")
    conn.push({"type": "response.done", "response": {"id": "r2", "status": "cancelled"}})
    assert await comm.receive_nothing(0.3)
    await comm.disconnect()


async def test_words_over_a_reply_barge_in_and_the_page_catches_up(
    user: User, fake_connect: FakeConnect
) -> None:
    comm = await start(user, fake_connect)
    conn = fake_connect.last
    await _reply_playing(comm, conn)
    conn.push(
        {
            "type": "conversation.item.input_audio_transcription.delta",
            "item_id": "u1",
            "content_index": 0,
            "delta": "Wait, stop",
        }
    )
    seen = await _texts_until(comm, "transcript.user.delta")
    kinds = [message["type"] for message in seen]
    assert kinds.index("playback.clear") < kinds.index("speech.started")
    assert seen[-1]["delta"] == "Wait, stop"
    await conn.wait_for("response.cancel")
    assert conn.sent_of("conversation.item.delete") == []
    await comm.send_json_to({"type": "playback.interrupted", "item_id": "a1", "played_ms": 640})
    await conn.wait_for("conversation.item.truncate")
    await comm.disconnect()


async def test_speech_too_long_for_a_backchannel_is_held_then_barges_in(
    user: User, fake_connect: FakeConnect
) -> None:
    comm = await start(user, fake_connect)
    conn = fake_connect.last
    await _reply_playing(comm, conn)
    seen = await _texts_until(comm, "speech.started")
    kinds = [message["type"] for message in seen]
    assert kinds[:2] == ["playback.hold", "playback.clear"]
    await conn.wait_for("response.cancel")
    await comm.disconnect()


async def test_with_backchannels_off_any_speech_barges_in_at_once(
    user: User, fake_connect: FakeConnect, default_profile: AssistantProfile
) -> None:
    default_profile.backchannels = False
    await default_profile.asave()
    comm = await start(user, fake_connect)
    conn = fake_connect.last
    update = conn.sent_of("session.update")[0]
    assert update["session"]["turn_detection"]["interrupt_response"] is True
    conn.push({"type": "response.created", "response": {"id": "r1", "status": "in_progress"}})
    conn.push({"type": "input_audio_buffer.speech_started", "item_id": "u1", "audio_start_ms": 0})
    seen = await _texts_until(comm, "speech.started")
    assert [m["type"] for m in seen if m["type"].startswith("playback.")] == ["playback.clear"]
    await comm.disconnect()
