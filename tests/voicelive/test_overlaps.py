"""Speech over a reply, seen from the browser: a backchannel lets it go on, words barge in.

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


REFUSED = {
    "type": "error",
    "error": {"type": "invalid_request_error", "code": "conversation_already_has_active_response"},
}


async def test_a_reply_refused_while_deciding_is_asked_for_after_a_barge_in(
    user: User, fake_connect: FakeConnect
) -> None:
    """Azure may refuse the automatic reply to speech over a reply (interrupt_response off)."""
    comm = await start(user, fake_connect)
    conn = fake_connect.last
    await _reply_playing(comm, conn)
    conn.push(REFUSED)
    conn.push(
        {
            "type": "conversation.item.input_audio_transcription.delta",
            "item_id": "u1",
            "content_index": 0,
            "delta": "Wait, what about ",
        }
    )
    await conn.wait_for("response.cancel")
    assert conn.sent_of("response.create") == []
    conn.push({"type": "response.done", "response": {"id": "r1", "status": "cancelled"}})
    await conn.wait_for("response.create")
    await comm.disconnect()


async def test_a_reply_refused_while_deciding_is_not_asked_for_after_a_backchannel(
    user: User, fake_connect: FakeConnect
) -> None:
    comm = await start(user, fake_connect)
    conn = fake_connect.last
    await _reply_playing(comm, conn)
    conn.push({"type": "input_audio_buffer.speech_stopped", "item_id": "u1", "audio_end_ms": 400})
    conn.push(REFUSED)
    conn.push(
        {
            "type": "conversation.item.input_audio_transcription.completed",
            "item_id": "u1",
            "content_index": 0,
            "transcript": "Okay.",
        }
    )
    await next_message(comm, "playback.resume")
    conn.push({"type": "response.done", "response": {"id": "r1", "status": "completed"}})
    assert (await next_message(comm, "response.done"))["status"] == "completed"
    assert (await next_message(comm, "state"))["state"] == "ready"
    assert conn.sent_of("response.create") == []
    assert conn.sent_of("response.cancel") == []
    await comm.disconnect()


@pytest.mark.parametrize("upstream_reply", ["before_the_verdict", "after_the_verdict"])
async def test_a_reply_done_upstream_while_deciding_ends_once_and_its_successor_is_unheard(
    user: User, fake_connect: FakeConnect, upstream_reply: str
) -> None:
    """The reply is generated faster than it plays: its response.done comes while deciding.

    The page gets that response.done then (before playback.resume), and the upstream's own
    reply to the hum (localvoice starts it as soon as the first reply is done) is cancelled
    unheard, whether it starts before the verdict or after the item's delete was sent.
    """
    comm = await start(user, fake_connect)
    conn = fake_connect.last
    await _reply_playing(comm, conn)
    conn.push({"type": "response.done", "response": {"id": "r1", "status": "completed"}})
    assert (await next_message(comm, "response.done"))["status"] == "completed"
    conn.push({"type": "input_audio_buffer.speech_stopped", "item_id": "u1", "audio_end_ms": 400})
    reply_to_the_hum = [
        {"type": "response.created", "response": {"id": "r2", "status": "in_progress"}},
        audio_delta("a2", b"\x00\x03" * 480, "r2"),
    ]
    if upstream_reply == "before_the_verdict":
        for event in reply_to_the_hum:
            conn.push(event)
        await conn.wait_for("response.cancel")
    conn.push(
        {
            "type": "conversation.item.input_audio_transcription.completed",
            "item_id": "u1",
            "content_index": 0,
            "transcript": "Uh-huh.",
        }
    )
    seen = await _texts_until(comm, "playback.resume")
    await conn.wait_for("conversation.item.delete")
    if upstream_reply == "after_the_verdict":
        for event in reply_to_the_hum:
            conn.push(event)
        await conn.wait_for("response.cancel")
    conn.push({"type": "response.done", "response": {"id": "r2", "status": "cancelled"}})
    assert await comm.receive_nothing(0.3)  # no audio, response.done or clear of r2
    kinds = [message["type"] for message in seen]
    assert "playback.clear" not in kinds
    assert "response.done" not in kinds  # r1's came once, before; r2's never
    assert len(conn.sent_of("response.cancel")) == 1
    assert conn.sent_of("response.create") == []
    await comm.disconnect()
