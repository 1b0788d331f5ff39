"""Live sessions write their history: the voice consumer's hooks, over the faked SDK.

Each test drives a session through the consumer (``tests/fakes.py`` fakes the SDK at its import
site), then flushes the worker's history writer and reads the rows.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth.models import User

from assistant.history.models import Conversation, Turn, UsageQuota, UsageRecord
from assistant.history.writer import history
from assistant.models import AssistantProfile
from tests.fakes import FakeConnect, audio_delta
from tests.sessions import close_code
from tests.support.consumer import communicator, next_message, start_session

pytestmark = pytest.mark.django_db(transaction=True)

USAGE = {
    "total_tokens": 150,
    "input_tokens": 100,
    "output_tokens": 50,
    "input_token_details": {"text_tokens": 40, "audio_tokens": 60, "cached_tokens": 0},
    "output_token_details": {"text_tokens": 10, "audio_tokens": 40},
}


def spoken_turn(conn: Any, n: int, question: str, answer: str) -> None:
    """What the upstream sends for one spoken question and its answer."""
    user_item, item, response = f"u{n}", f"a{n}", f"r{n}"
    conn.push({"type": "input_audio_buffer.speech_started", "item_id": user_item})
    conn.push({"type": "input_audio_buffer.speech_stopped", "item_id": user_item})
    conn.push(
        {
            "type": "conversation.item.input_audio_transcription.completed",
            "item_id": user_item,
            "content_index": 0,
            "transcript": question,
        }
    )
    conn.push({"type": "response.created", "response": {"id": response, "status": "in_progress"}})
    conn.push(audio_delta(item, b"\x01\x00" * 24_000, response_id=response))
    conn.push(
        {
            "type": "response.audio_transcript.done",
            "item_id": item,
            "response_id": response,
            "output_index": 0,
            "content_index": 0,
            "transcript": answer,
        }
    )
    conn.push(
        {
            "type": "response.done",
            "response": {"id": response, "status": "completed", "usage": USAGE, "output": []},
        }
    )


async def until_response_done(comm: Any) -> None:
    await next_message(comm, "response.done")


@database_sync_to_async
def rows(conversation_id: str) -> tuple[Conversation, list[Turn], list[UsageRecord]]:
    conversation = Conversation.objects.get(pk=conversation_id)
    turns = list(conversation.turns.order_by("seq"))
    usage = list(UsageRecord.objects.filter(session_id=conversation_id).order_by("created_at"))
    return conversation, turns, usage


async def test_a_session_writes_its_conversation_turns_and_usage(
    user: User, default_profile: AssistantProfile, fake_connect: FakeConnect
) -> None:
    comm = communicator(user)
    await comm.connect()
    ready = await next_message(comm, "session.ready")
    for _ in range(5):
        await comm.send_to(bytes_data=b"\x00\x01" * 2400)
    conn = fake_connect.last
    await conn.wait_for("input_audio_buffer.append")
    spoken_turn(conn, 1, "What is the capital of France?", "Paris.")
    await until_response_done(comm)
    await comm.send_to(text_data=json.dumps({"type": "text.send", "text": "And of Spain?"}))
    await conn.wait_for("response.create")
    await comm.send_to(text_data=json.dumps({"type": "session.stop"}))
    assert await close_code(comm) == 1000
    await history.flush()

    conversation, turns, usage = await rows(ready["session_id"])
    assert conversation.user_id == user.pk
    assert conversation.profile_id == default_profile.pk
    assert conversation.end_reason == "stopped"
    assert conversation.ended_at is not None
    # One upstream connection: the id its session.created gave (tests/fakes.py: sess_<n>).
    [upstream_id] = conversation.upstream_session_ids
    assert upstream_id.startswith("sess_")
    assert [(t.role, t.text) for t in turns] == [
        ("user", "What is the capital of France?"),
        ("assistant", "Paris."),
        ("typed", "And of Spain?"),
    ]
    assert turns[1].response_id == "r1"
    # Timed when the typed message ended the spoken turn: the parts add up to the latency.
    reply = turns[1]
    assert reply.latency_ms is not None
    assert reply.eot_ms is not None
    assert reply.first_audio_ms is not None
    parts = reply.eot_ms + (reply.transcription_ms or 0) + (reply.tool_ms or 0)
    assert parts + reply.first_audio_ms == reply.latency_ms
    assert conversation.worker  # which worker held the call
    first = usage[0]
    assert first.response_id == "r1"
    assert (first.input_tokens, first.output_tokens, first.output_audio_tokens) == (100, 50, 40)
    assert first.audio_in_seconds == pytest.approx(5 * 4800 / 48_000)
    assert first.audio_out_seconds == pytest.approx(1.0)


async def test_an_interruption_is_recorded_on_the_reply(
    user: User, default_profile: AssistantProfile, fake_connect: FakeConnect
) -> None:
    comm = await start_session(user)
    conn = fake_connect.last
    spoken_turn(conn, 1, "Tell me a story", "Once upon a time")
    await until_response_done(comm)
    await comm.send_to(
        text_data=json.dumps({"type": "playback.interrupted", "item_id": "a1", "played_ms": 420})
    )
    await conn.wait_for("conversation.item.truncate")
    ready_id = await end_and_flush(comm)
    _, turns, _ = await rows(ready_id)
    assert (turns[1].interrupted, turns[1].heard_ms) == (True, 420)


async def end_and_flush(comm: Any) -> str:
    """Disconnect the browser; returns the conversation id (the only one)."""
    await comm.disconnect()
    await history.flush()
    return str(await database_sync_to_async(lambda: Conversation.objects.get().pk)())


async def test_a_closed_browser_is_the_end_reason(
    user: User, default_profile: AssistantProfile, fake_connect: FakeConnect
) -> None:
    comm = await start_session(user)
    conversation_id = await end_and_flush(comm)
    conversation, _, _ = await rows(conversation_id)
    assert conversation.end_reason == "browser_closed"


async def test_a_profile_without_transcripts_keeps_usage_only(
    user: User, default_profile: AssistantProfile, fake_connect: FakeConnect
) -> None:
    default_profile.keep_transcripts = False
    await database_sync_to_async(default_profile.save)()
    comm = await start_session(user)
    spoken_turn(fake_connect.last, 1, "A secret question", "A secret answer")
    await until_response_done(comm)
    conversation_id = await end_and_flush(comm)
    conversation, turns, usage = await rows(conversation_id)
    assert not conversation.transcript_stored
    assert [t.role for t in turns] == ["user", "assistant"]
    assert all(t.text == "" for t in turns)
    assert usage[0].output_tokens == 50


async def test_drain_writes_the_last_history(
    user: User, default_profile: AssistantProfile, fake_connect: FakeConnect
) -> None:
    from assistant.live.worker import worker

    comm = await start_session(user)
    spoken_turn(fake_connect.last, 1, "Hello", "Hi there")
    await until_response_done(comm)
    await worker.drain(stop_server=False)
    worker.draining = False
    conversation = await database_sync_to_async(Conversation.objects.get)()
    assert conversation.end_reason == "server_draining"
    assert await database_sync_to_async(conversation.turns.count)() == 2
    await comm.disconnect()


# ---------------------------------------------------------------------- resume


@database_sync_to_async
def past_conversation(user: User, *lines: tuple[str, str]) -> Conversation:
    from django.utils import timezone

    conversation = Conversation.objects.create(user=user, profile_name="Default")
    for seq, (role, text) in enumerate(lines):
        Turn.objects.create(
            conversation=conversation, seq=seq, role=role, text=text, started_at=timezone.now()
        )
    return conversation


async def test_resume_seeds_the_upstream_and_records_where_it_came_from(
    user: User, default_profile: AssistantProfile, fake_connect: FakeConnect
) -> None:
    past = await past_conversation(
        user,
        ("user", "My name is Zoe."),
        ("assistant", "Nice to meet you, Zoe."),
        ("typed", "I live in Lyon."),
        ("tool", "ignored"),
    )
    comm = communicator(user, f"/ws/voice/?resume={past.pk}")
    await comm.connect()
    resumed = await next_message(comm, "conversation.resumed")
    assert resumed == {
        "type": "conversation.resumed",
        "conversation_id": str(past.pk),
        "messages": 3,
    }
    items = [e["item"] for e in fake_connect.last.sent_of("conversation.item.create")]
    assert [(i["role"], i["content"][0]["text"]) for i in items] == [
        ("user", "My name is Zoe."),
        ("assistant", "Nice to meet you, Zoe."),
        ("user", "I live in Lyon."),
    ]
    await comm.disconnect()
    await history.flush()
    new = await database_sync_to_async(Conversation.objects.exclude(pk=past.pk).get)()
    assert new.resumed_from_id == past.pk


@pytest.mark.parametrize("whose", ["someone else's", "not an id", "unknown"])
async def test_resume_of_anything_but_ones_own_is_refused(
    user: User, default_profile: AssistantProfile, fake_connect: FakeConnect, whose: str
) -> None:
    other = await database_sync_to_async(User.objects.create_user)("mallory")
    theirs = await past_conversation(other, ("user", "private"))
    target = {"someone else's": str(theirs.pk), "not an id": "xyz", "unknown": str(uuid.uuid4())}
    comm = communicator(user, f"/ws/voice/?resume={target[whose]}")
    await comm.connect()
    error = await next_message(comm, "error")
    assert error["code"] == "resume_not_found"
    assert await close_code(comm) == 4403
    assert fake_connect.calls == []


# ---------------------------------------------------------------------- quotas


@database_sync_to_async
def give_quota(user: User, minutes_per_day: int, used_seconds: float) -> None:
    UsageQuota.objects.create(user=user, minutes_per_day=minutes_per_day)
    if used_seconds:
        UsageRecord.objects.create(
            user=user, session_id=uuid.uuid4(), model="gpt-realtime", audio_in_seconds=used_seconds
        )


async def test_a_user_over_quota_is_refused_with_when_it_resets(
    user: User, default_profile: AssistantProfile, fake_connect: FakeConnect
) -> None:
    await give_quota(user, 1, 61.0)
    comm = communicator(user)
    await comm.connect()
    error = await next_message(comm, "error")
    assert error["code"] == "quota_exceeded"
    assert error["resets_at"]
    assert "T00:00:00" in error["resets_at"]
    assert await close_code(comm) == 4402
    assert fake_connect.calls == []


async def test_a_live_session_is_warned_then_ended_after_the_reply(
    user: User,
    default_profile: AssistantProfile,
    fake_connect: FakeConnect,
    settings: Any,
) -> None:
    settings.VOICE_HEARTBEAT_SECONDS = 0.1
    await give_quota(user, 1, 50.0)  # 83 %: warned at the first beat
    comm = await start_session(user)
    warning = await next_message(comm, "quota.warning", timeout=5)
    assert warning["limit"] == "day"
    assert 80 <= warning["percent"] < 100
    conn = fake_connect.last
    # A reply is running when the quota runs out: the session waits for it to be over.
    conn.push({"type": "response.created", "response": {"id": "r1", "status": "in_progress"}})
    conn.push(audio_delta("a1", b"\x01\x00" * 2400, response_id="r1"))
    await next_message(comm, "audio.start")
    await database_sync_to_async(UsageRecord.objects.create)(
        user=user, session_id=uuid.uuid4(), model="gpt-realtime", audio_in_seconds=20.0
    )
    await asyncio.sleep(0.5)  # several beats: over quota, but the reply is still running
    conn.push({"type": "response.done", "response": {"id": "r1", "status": "completed"}})
    error = await next_message(comm, "error", timeout=5)
    assert error["code"] == "quota_exceeded"
    assert error["resets_at"]
    assert await close_code(comm) == 4402
    await history.flush()
    conversation = await database_sync_to_async(Conversation.objects.get)()
    assert conversation.end_reason == "quota_exceeded"


async def read_until(comm: Any, received: list[int], kind: str, timeout: float = 10.0) -> Any:
    """Read frames, acking the audio as the page does, until a message of ``kind`` (returned)
    or the close (returns its code)."""
    async with asyncio.timeout(timeout):
        while True:
            frame = await comm.receive_output(timeout)
            if frame["type"] == "websocket.close":
                return frame.get("code")
            if frame.get("bytes") is not None:
                received[0] += len(frame["bytes"])
                ack = {"type": "audio.ack", "bytes": received[0]}
                await comm.send_to(text_data=json.dumps(ack))
                continue
            message = json.loads(frame["text"])
            if message["type"] == kind:
                return message


async def test_typed_messages_and_their_spoken_replies_use_the_quota(
    user: User,
    default_profile: AssistantProfile,
    fake_connect: FakeConnect,
    settings: Any,
) -> None:
    """A typed question costs its reply's audio and its own speaking time: a session that
    only types ends when the quota is used up (further questions refused meanwhile), and the
    next one is refused at the handshake.

    Before, only microphone audio counted: any number of typed turns were free.
    """
    settings.VOICE_HEARTBEAT_SECONDS = 0.1
    await give_quota(user, 1, 40.0)  # 20 s left
    comm = await start_session(user)
    conn = fake_connect.last
    reply = b"\x01\x00" * 24_000 * 4  # 4 s of audio per reply
    received = [0]
    replies = 0
    refused: Any = None
    for n in range(12):  # 12 x (4 s + 1 s typed) = 60 s: far over the 20 s left
        await comm.send_to(text_data=json.dumps({"type": "text.send", "text": f"Question {n}?"}))
        try:
            await conn.wait_for("response.create", count=replies + 1, timeout=1.0)
        except TimeoutError:
            refused = await read_until(comm, received, "error")
            break
        response = f"r{replies}"
        conn.push({"type": "response.created", "response": {"id": response}})
        conn.push(audio_delta(f"a{replies}", reply, response_id=response))
        conn.push({"type": "response.done", "response": {"id": response, "status": "completed"}})
        replies += 1
        await read_until(comm, received, "response.done")
        await asyncio.sleep(0.3)  # a few heartbeats: each re-checks the quota
    assert refused is not None, "12 typed turns with 4 s replies never used up 20 s"
    assert refused["code"] == "quota_exceeded", refused
    assert refused["resets_at"]
    assert 4 <= replies <= 5, replies  # 4 turns use the 20 s; the next beat notices
    assert await read_until(comm, received, "never") == 4402  # once the last reply played
    await history.flush()
    records = await database_sync_to_async(list)(UsageRecord.objects.exclude(audio_in_seconds=40))
    assert sum(r.audio_out_seconds for r in records) == pytest.approx(4.0 * replies)
    assert sum(r.typed_seconds for r in records) == pytest.approx(1.0 * replies)
    # And the next session is refused at the handshake.
    again = communicator(user)
    await again.connect()
    assert (await next_message(again, "error"))["code"] == "quota_exceeded"
    assert await close_code(again) == 4402


async def test_recording_off_keeps_nothing(
    user: User, default_profile: AssistantProfile, fake_connect: FakeConnect, settings: Any
) -> None:
    settings.HISTORY_RECORDING = False
    comm = await start_session(user)
    spoken_turn(fake_connect.last, 1, "Hello", "Hi")
    await until_response_done(comm)
    await comm.disconnect()
    await history.flush()
    assert not await Conversation.objects.aexists()
    assert not await UsageRecord.objects.aexists()
