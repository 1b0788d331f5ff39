"""Flow control of the assistant's audio to the browser: the window, the backlog, the acks."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from django.contrib.auth.models import User

from assistant.calls.outbound import (
    MIN_ACK_STEP_BYTES,
    AckOutOfRange,
    AudioSendWindow,
    BacklogFull,
)
from assistant.models import AssistantProfile
from tests.fakes import FakeConnect, audio_delta
from tests.support.consumer import next_binary, next_message, start_session

CHUNK = b"\x01\x02" * 2400  # 100 ms


def test_audio_within_the_window_is_sent_at_once() -> None:
    window = AudioSendWindow(window_bytes=3 * len(CHUNK), backlog_bytes=10 * len(CHUNK))
    assert [window.offer(CHUNK) for _ in range(3)] == [True, True, True]
    assert window.sent == 3 * len(CHUNK)
    assert window.offer(CHUNK) is False  # full: held
    assert window.held_bytes == len(CHUNK)


def test_an_ack_releases_held_audio_in_order_up_to_the_window() -> None:
    window = AudioSendWindow(window_bytes=2 * len(CHUNK), backlog_bytes=10 * len(CHUNK))
    held = [bytes([i]) * len(CHUNK) for i in range(4)]
    assert window.offer(CHUNK)
    assert window.offer(CHUNK)
    assert not any(window.offer(h) for h in held)
    assert window.ack(len(CHUNK)) == held[:1]
    assert window.ack(3 * len(CHUNK)) == held[1:3]
    assert window.held_bytes == len(CHUNK)
    # Once something is held, new audio queues behind it even if the window has room.
    assert window.ack(window.sent) == held[3:]
    assert window.offer(CHUNK) is True


def test_the_backlog_is_bounded() -> None:
    window = AudioSendWindow(window_bytes=len(CHUNK), backlog_bytes=2 * len(CHUNK))
    window.offer(CHUNK)
    window.offer(CHUNK)
    window.offer(CHUNK)
    with pytest.raises(BacklogFull):
        window.offer(CHUNK)
    assert window.held_bytes == 2 * len(CHUNK)


def test_clear_drops_only_held_audio() -> None:
    window = AudioSendWindow(window_bytes=len(CHUNK), backlog_bytes=4 * len(CHUNK))
    window.offer(CHUNK)
    window.offer(CHUNK)
    assert window.clear() == len(CHUNK)
    assert window.held_bytes == 0
    assert window.ack(len(CHUNK)) == []  # what was on the wire is still acknowledged


@pytest.mark.parametrize(
    "received",
    [
        -1,
        0,  # does not advance
        10 * len(CHUNK),  # more than was sent
        MIN_ACK_STEP_BYTES - 2,  # advances by less than the minimum step, not up to `sent`
    ],
)
def test_acks_that_do_not_advance_or_overshoot_are_refused(received: int) -> None:
    window = AudioSendWindow(window_bytes=4 * len(CHUNK), backlog_bytes=4 * len(CHUNK))
    window.offer(CHUNK)
    window.offer(CHUNK)
    with pytest.raises(AckOutOfRange):
        window.ack(received)
    assert window.acked == 0


def test_a_small_ack_is_fine_when_it_catches_up_with_everything_sent() -> None:
    window = AudioSendWindow(window_bytes=4 * len(CHUNK), backlog_bytes=4 * len(CHUNK))
    window.offer(b"\x00\x00" * 10)
    assert window.ack(20) == []
    assert window.acked == 20


# ----------------------------------------------------------------------------- the consumer

needs_db = pytest.mark.django_db(transaction=True)


@pytest.fixture
def user(db: None) -> User:
    if not AssistantProfile.objects.filter(is_default=True).exists():
        AssistantProfile.objects.create(name="Default", is_default=True, voice="alloy")
    return User.objects.create_user("slow", password="pw-slow-123")


@pytest.fixture
def small_window(settings: Any) -> None:
    settings.VOICE_AUDIO_SEND_WINDOW_BYTES = 2 * len(CHUNK)
    settings.VOICE_AUDIO_SEND_BACKLOG_BYTES = 3 * len(CHUNK)


async def binary_frames(comm: Any, quiet: float = 0.2) -> list[bytes]:
    """Binary frames until nothing arrives for ``quiet`` seconds."""
    frames = []
    while True:
        # receive_nothing, not a timed-out receive_output: that would cancel the consumer.
        if await comm.receive_nothing(quiet):
            return frames
        frame = await comm.receive_output(1)
        if frame.get("bytes") is not None:
            frames.append(frame["bytes"])


async def start_a_reply(fake_connect: FakeConnect, comm: Any, chunks: int) -> list[bytes]:
    """The upstream sends ``chunks`` audio chunks (first bytes 1, 2, ...); returns what arrives."""
    for i in range(chunks):
        fake_connect.last.push(audio_delta("item_a", bytes([i + 1]) * len(CHUNK)))
    await next_message(comm, "audio.start")
    return await binary_frames(comm)


@needs_db
async def test_consumer_holds_audio_past_the_window_until_acked(
    user: User, fake_connect: FakeConnect, small_window: None
) -> None:
    comm = await start_session(user)
    first = await start_a_reply(fake_connect, comm, 4)
    assert [f[0] for f in first] == [1, 2]  # the window: two chunks, then nothing
    await comm.send_json_to({"type": "audio.ack", "bytes": 2 * len(CHUNK)})
    assert [f[0] for f in await binary_frames(comm)] == [3, 4]
    # The ack is flow control: no reply, no error.
    await comm.send_json_to({"type": "ping"})
    assert (await next_message(comm, "pong"))["type"] == "pong"
    await comm.disconnect()


@needs_db
async def test_consumer_closes_a_browser_that_falls_too_far_behind(
    user: User, fake_connect: FakeConnect, small_window: None
) -> None:
    comm = await start_session(user)
    for i in range(6):  # window 2 + backlog 3, then one more
        fake_connect.last.push(audio_delta("item_a", bytes([i + 1]) * len(CHUNK)))
    seen = []
    async with asyncio.timeout(3):
        while True:
            frame = await comm.receive_output(3)
            if frame["type"] == "websocket.close":
                break
            if frame.get("text"):
                seen.append(frame["text"])
    assert frame["code"] == 4413
    assert any('"client_too_slow"' in text for text in seen), seen


@needs_db
async def test_barge_in_drops_held_audio(
    user: User, fake_connect: FakeConnect, small_window: None
) -> None:
    comm = await start_session(user)
    conn = fake_connect.last
    assert len(await start_a_reply(fake_connect, comm, 4)) == 2
    conn.push({"type": "input_audio_buffer.speech_started", "item_id": "u1", "audio_start_ms": 0})
    await next_message(comm, "playback.clear")
    await comm.send_json_to({"type": "audio.ack", "bytes": 2 * len(CHUNK)})
    assert await binary_frames(comm) == []  # the held chunks of the cut reply are gone
    conn.push(audio_delta("item_b", b"\x09" * len(CHUNK)))
    await next_message(comm, "audio.start")
    assert (await next_binary(comm))[0] == 9
    await comm.disconnect()


@needs_db
@pytest.mark.parametrize("received", [0, 10**9, -5, "12", True])
async def test_bad_acks_get_bad_message_and_the_session_survives(
    user: User, fake_connect: FakeConnect, received: Any
) -> None:
    comm = await start_session(user)
    await comm.send_json_to({"type": "audio.ack", "bytes": received})
    error = await next_message(comm, "error")
    assert error["code"] == "bad_message"
    await comm.send_json_to({"type": "ping"})
    await next_message(comm, "pong")
    await comm.disconnect()
