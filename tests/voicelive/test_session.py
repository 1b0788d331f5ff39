"""VoiceLiveSession on its own: a fake SDK connection, a recording sink, no Django, no socket."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from assistant import protocol
from assistant.codes import ERROR_MESSAGES, ErrorCode, State
from assistant.voicelive.config import UpstreamSettings
from assistant.voicelive.microphone import MAX_APPEND_BYTES
from assistant.voicelive.session import VoiceLiveSession
from assistant.voicelive.turn_timing import TurnTiming
from tests.fakes import FakeConnect, FakeConnection, audio_delta
from tests.support.session_configs import session_config

CONFIG = session_config()
UPSTREAM = UpstreamSettings(endpoint="wss://voicelive.invalid", api_key="key", api_version="v1")


class RecordingSink:
    """The browser side of a session, as a list of what it was told."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.audio: list[bytes] = []
        self.states: list[State] = []
        self.lost: list[ErrorCode] = []
        self.usage: list[tuple[str, Any]] = []
        self.timings: list[TurnTiming] = []
        self.changed = asyncio.Event()

    async def send_message(self, message: protocol.ServerMessage) -> None:
        self.messages.append(json.loads(protocol.encode(message)))
        self.changed.set()

    async def clear_playback(self) -> None:
        await self.send_message(protocol.PlaybackClear())

    async def send_audio(self, pcm: bytes) -> None:
        self.audio.append(pcm)
        self.changed.set()

    async def set_state(self, state: State) -> None:
        self.states.append(state)
        self.changed.set()

    async def upstream_lost(self, code: ErrorCode) -> None:
        self.lost.append(code)
        self.changed.set()

    def response_usage(self, response_id: str, usage: Any) -> None:
        self.usage.append((response_id, usage))

    def turn_timed(self, timing: TurnTiming) -> None:
        self.timings.append(timing)

    def types(self) -> list[str]:
        return [m["type"] for m in self.messages]

    async def until(self, check: Any, timeout: float = 2.0) -> None:
        async with asyncio.timeout(timeout):
            while not check():
                self.changed.clear()
                await self.changed.wait()


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


@pytest.fixture
async def session(fake_connect: FakeConnect, sink: RecordingSink) -> Any:
    voice = VoiceLiveSession(config=CONFIG, upstream=UPSTREAM, sink=sink)
    await voice.start()
    yield voice
    await voice.aclose()


def conn_of(fake_connect: FakeConnect) -> FakeConnection:
    return fake_connect.last


async def test_start_configures_the_session_and_says_ready(
    session: VoiceLiveSession, fake_connect: FakeConnect, sink: RecordingSink
) -> None:
    assert fake_connect.calls[0]["model"] == "gpt-realtime"
    update = conn_of(fake_connect).sent_of("session.update")[0]["session"]
    assert update["instructions"] == "Be brief."
    assert update["voice"] == {"type": "openai", "name": "alloy"}
    assert session.upstream_session_id.startswith("sess_")
    assert sink.states == [State.READY]
    assert session.state == State.READY


async def test_queued_microphone_frames_go_up_merged_and_counted(
    session: VoiceLiveSession, fake_connect: FakeConnect
) -> None:
    frames = [bytes([n]) * 960 for n in range(1, 6)]  # 20 ms each
    for frame in frames:
        session.append_audio(frame)
    conn = conn_of(fake_connect)
    async with asyncio.timeout(2):
        while conn.appended_audio() != b"".join(frames):
            await asyncio.sleep(0.01)
    appends = conn.sent_of("input_audio_buffer.append")
    assert len(appends) < len(frames)  # frames already queued travel together
    assert all(len(a["audio"]) * 3 // 4 <= MAX_APPEND_BYTES + 960 for a in appends)
    assert session.audio_in_bytes == sum(map(len, frames))


async def test_assistant_audio_reaches_the_sink_after_its_item_starts(
    session: VoiceLiveSession, fake_connect: FakeConnect, sink: RecordingSink
) -> None:
    conn = conn_of(fake_connect)
    conn.push(audio_delta("item_a", b"\x01\x02" * 240, "r1"))
    conn.push(audio_delta("item_a", b"\x03\x04" * 240, "r1"))
    await sink.until(lambda: len(sink.audio) == 2)
    assert sink.messages == [{"type": "audio.start", "item_id": "item_a", "response_id": "r1"}]
    assert sink.audio == [b"\x01\x02" * 240, b"\x03\x04" * 240]
    assert sink.states[-1] == State.ASSISTANT_SPEAKING
    assert session.audio_out_bytes == 960


async def test_speaking_over_a_reply_clears_playback_and_cancels_it(
    session: VoiceLiveSession, fake_connect: FakeConnect, sink: RecordingSink
) -> None:
    conn = conn_of(fake_connect)
    conn.push({"type": "response.created", "response": {"id": "r1", "status": "in_progress"}})
    conn.push({"type": "input_audio_buffer.speech_started", "item_id": "u1", "audio_start_ms": 0})
    await sink.until(lambda: State.LISTENING in sink.states)
    assert sink.types() == ["playback.clear", "speech.started"]
    assert sink.messages[1]["item_id"] == "u1"
    await conn.wait_for("response.cancel")


async def test_an_upstream_error_is_shown_with_its_fixed_text_and_benign_ones_are_not(
    session: VoiceLiveSession, fake_connect: FakeConnect, sink: RecordingSink
) -> None:
    conn = conn_of(fake_connect)
    benign = {"type": "invalid_request_error", "code": "response_cancel_not_active"}
    conn.push({"type": "error", "error": benign})
    conn.push({"type": "error", "error": {"type": "server_error", "code": "boom\nforged"}})
    await sink.until(lambda: sink.messages)
    assert sink.messages == [
        {
            "type": "error",
            "code": "upstream_error",
            "message": ERROR_MESSAGES[ErrorCode.UPSTREAM_ERROR],
        }
    ]
    assert sink.lost == []


async def test_a_malformed_frame_is_skipped_and_the_session_goes_on(
    session: VoiceLiveSession, fake_connect: FakeConnect, sink: RecordingSink
) -> None:
    conn = conn_of(fake_connect)
    conn.push(b"{not json")  # type: ignore[arg-type]
    conn.push({"type": "response.audio.done", "item_id": "a1", "response_id": "r1"})
    await sink.until(lambda: sink.messages)
    assert sink.messages == [{"type": "audio.done", "item_id": "a1"}]
    assert sink.lost == []


async def test_a_dropped_connection_is_reported_once_as_lost(
    session: VoiceLiveSession, fake_connect: FakeConnect, sink: RecordingSink
) -> None:
    conn_of(fake_connect).drop()
    await sink.until(lambda: sink.lost)
    await asyncio.sleep(0.05)
    assert sink.lost == [ErrorCode.UPSTREAM_LOST]


async def test_rollover_carries_the_conversation_to_a_new_connection(
    session: VoiceLiveSession, fake_connect: FakeConnect, sink: RecordingSink
) -> None:
    first = conn_of(fake_connect)
    first.push(
        {
            "type": "conversation.item.input_audio_transcription.completed",
            "item_id": "u1",
            "content_index": 0,
            "transcript": " My name is Alice. ",
        }
    )
    await sink.until(lambda: "transcript.user.done" in sink.types())
    await session.send_text("What is my name?")
    session.begin_rollover()
    async with asyncio.timeout(2):
        while len(fake_connect.connections) < 2 or not first.closed:
            await asyncio.sleep(0.01)
    second = conn_of(fake_connect)
    seeded = [e["item"]["content"][0]["text"] for e in second.sent_of("conversation.item.create")]
    assert seeded == ["My name is Alice.", "What is my name?"]
    session.append_audio(b"\x00\x00" * 480)
    await second.wait_for("input_audio_buffer.append")
    assert sink.lost == []


async def test_close_leaves_nothing_running(fake_connect: FakeConnect, sink: RecordingSink) -> None:
    before = asyncio.all_tasks()
    voice = VoiceLiveSession(config=CONFIG, upstream=UPSTREAM, sink=sink)
    await voice.start()
    voice.append_audio(b"\x00\x00" * 480)
    await asyncio.sleep(0)  # its tasks are running
    await voice.aclose()
    await asyncio.sleep(0)
    assert {t for t in asyncio.all_tasks() - before if not t.done()} == set()
    assert conn_of(fake_connect).closed
    assert sink.lost == []  # closing is not losing the upstream


async def test_a_replys_usage_reaches_the_sink_with_its_done(
    session: VoiceLiveSession, fake_connect: FakeConnect, sink: RecordingSink
) -> None:
    conn = conn_of(fake_connect)
    usage = {"input_tokens": 12, "output_tokens": 34}
    conn.push({"type": "response.created", "response": {"id": "r1", "status": "in_progress"}})
    conn.push(
        {"type": "response.done", "response": {"id": "r1", "status": "completed", "usage": usage}}
    )
    await sink.until(lambda: sink.usage)
    assert sink.usage == [("r1", usage)]
    assert "response.done" in sink.types()
    assert not session.reply_running


async def test_carried_over_items_are_sent_on_connect(
    sink: RecordingSink, fake_connect: FakeConnect
) -> None:
    voice = VoiceLiveSession(config=CONFIG, upstream=UPSTREAM, sink=sink)
    voice.carry_over([("user", "My name is Zoe."), ("assistant", "Hello Zoe.")])
    await voice.start()
    try:
        items = [e["item"] for e in conn_of(fake_connect).sent_of("conversation.item.create")]
        assert [(i["role"], i["content"][0]["text"]) for i in items] == [
            ("user", "My name is Zoe."),
            ("assistant", "Hello Zoe."),
        ]
    finally:
        await asyncio.sleep(0)  # let its tasks start: a task cancelled unstarted leaves a warning
        await voice.aclose()


async def test_a_turn_is_timed_from_where_the_speech_ended_in_the_audio(
    session: VoiceLiveSession, fake_connect: FakeConnect, sink: RecordingSink
) -> None:
    conn = conn_of(fake_connect)
    session.append_audio(b"\x00\x01" * 24_000)  # 1 s of speech and silence
    async with asyncio.timeout(2):
        while session.audio_in_bytes < 48_000:
            await asyncio.sleep(0.01)
    sent_at = session.microphone.sent_at
    # speech_stopped at 600 ms of the audio (400 ms before the last of it went up) includes
    # the profile's 500 ms of silence: the speech ended 900 ms before the last append.
    conn.push({"type": "input_audio_buffer.speech_stopped", "item_id": "u1", "audio_end_ms": 600})
    conn.push({"type": "response.created", "response": {"id": "r1", "status": "in_progress"}})
    conn.push(audio_delta("a1", b"\x01\x00" * 480, "r1"))
    await sink.until(lambda: len(sink.audio) == 1)
    session.playback_began("a1")
    session.finish_turn()
    [timing] = sink.timings
    assert timing.end_of_speech == pytest.approx(sent_at - 0.9)
    assert timing.eot_ms >= 900
    assert timing.turn_latency_ms is not None
    assert timing.turn_latency_ms >= timing.eot_ms
    assert timing.played_latency_ms is not None
    assert timing.played_latency_ms >= timing.turn_latency_ms
    assert (timing.item_id, timing.response_id, timing.audio_item_id) == ("u1", "r1", "a1")


async def test_after_a_rollover_audio_end_ms_counts_from_the_new_connection(
    session: VoiceLiveSession, fake_connect: FakeConnect, sink: RecordingSink
) -> None:
    first = conn_of(fake_connect)
    session.append_audio(b"\x00\x01" * 24_000)  # 1 s to the first connection
    async with asyncio.timeout(2):
        while session.audio_in_bytes < 48_000:
            await asyncio.sleep(0.01)
    session.begin_rollover()
    async with asyncio.timeout(2):
        while len(fake_connect.connections) < 2 or not first.closed:
            await asyncio.sleep(0.01)
    second = conn_of(fake_connect)
    assert session.microphone.connection_bytes == 48_000
    session.append_audio(b"\x00\x01" * 24_000)  # 1 s to the new one
    async with asyncio.timeout(2):
        while session.audio_in_bytes < 96_000:
            await asyncio.sleep(0.01)
    sent_at = session.microphone.sent_at
    # 900 ms of the new connection's audio, with the profile's 500 ms of silence in it: the
    # speech ended at 400 ms of it, 600 ms before the last append (not 1.6 s: the old count).
    second.push({"type": "input_audio_buffer.speech_stopped", "item_id": "u1", "audio_end_ms": 900})
    second.push(audio_delta("a1", b"\x01\x00" * 480, "r1"))
    await sink.until(lambda: len(sink.audio) == 1)
    session.finish_turn()
    [timing] = sink.timings
    assert timing.end_of_speech == pytest.approx(sent_at - 0.6)
