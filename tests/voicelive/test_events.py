"""The event router, seen from the browser: barge-in, transcripts, states, refused replies.

Driven through the voice consumer, with the Voice Live SDK faked (``tests/fakes.py``).
"""

from __future__ import annotations

import asyncio
import json

import pytest
from django.contrib.auth.models import User

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
