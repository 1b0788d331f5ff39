"""Turn timings: the end of speech placed on our clock, the parts of a turn, one delivery each."""

from __future__ import annotations

import pytest

from assistant.voicelive.turn_timing import (
    AUDIO_BYTES_PER_MS,
    TurnTimer,
    TurnTiming,
    epoch_ns,
    speech_end_time,
)

SECOND = 1000 * AUDIO_BYTES_PER_MS  # bytes of one second of input audio


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_end_of_speech_is_when_its_audio_was_sent() -> None:
    # 3 s sent on this connection, the last at t=50; the speech ended at 2.2 s of it: that
    # audio went up 0.8 s before the last append.
    end = speech_end_time(2200, sent_bytes=3 * SECOND, base_bytes=0, sent_at=50.0)
    assert end == pytest.approx(49.2)


def test_the_silence_speech_stopped_includes_is_taken_off() -> None:
    # speech_stopped at 2.2 s includes the profile's 500 ms of silence: the speech ended at 1.7 s.
    end = speech_end_time(2200, sent_bytes=3 * SECOND, base_bytes=0, sent_at=50.0, silence_ms=500)
    assert end == pytest.approx(48.7)
    # Never before the connection's own audio began.
    assert speech_end_time(
        300, sent_bytes=SECOND, base_bytes=0, sent_at=50.0, silence_ms=500
    ) == pytest.approx(49.0)


def test_after_a_rollover_the_new_connection_counts_from_its_own_start() -> None:
    # 10 s went to the old connection, 1.5 s to the new one; audio_end_ms is the new one's.
    end = speech_end_time(
        1000, sent_bytes=11_500 * AUDIO_BYTES_PER_MS, base_bytes=10 * SECOND, sent_at=80.0
    )
    assert end == pytest.approx(79.5)


def test_a_clock_that_does_not_match_ours_gives_no_end() -> None:
    # The upstream counts 5 s of audio on a connection we sent 1 s: not our clock.
    assert speech_end_time(5000, sent_bytes=SECOND, base_bytes=0, sent_at=10.0) is None
    # Nothing sent yet, or a negative position.
    assert speech_end_time(100, sent_bytes=0, base_bytes=0, sent_at=0.0) is None
    assert speech_end_time(-1, sent_bytes=SECOND, base_bytes=0, sent_at=10.0) is None
    # A little past what we sent (frames rounded upstream): the latest append.
    assert speech_end_time(1050, sent_bytes=SECOND, base_bytes=0, sent_at=10.0) == 10.0


def test_the_parts_add_up_to_the_turn_latency() -> None:
    turn = TurnTiming(
        item_id="u1",
        end_of_speech=10.0,
        speech_stopped_at=10.5,
        transcribed_at=10.7,
        first_audio_at=11.4,
        tool_seconds=0.3,
        played_at=11.55,
    )
    assert turn.turn_latency_ms == 1400
    assert (turn.eot_ms, turn.transcription_ms, turn.tool_ms) == (500, 200, 300)
    assert turn.first_audio_ms == 400
    assert turn.played_latency_ms == 1550
    assert turn.eot_ms + turn.transcription_ms + turn.tool_ms + turn.first_audio_ms == 1400


def test_a_transcript_after_the_first_audio_was_not_on_the_way() -> None:
    turn = TurnTiming(item_id="u1", end_of_speech=10.0, speech_stopped_at=10.5, transcribed_at=11.5)
    turn.first_audio_at = 11.0
    assert turn.transcription_ms is None
    assert turn.first_audio_ms == 500


def test_attributes_are_flat_voice_keys_without_unmeasured_parts() -> None:
    turn = TurnTiming(item_id="u1", end_of_speech=10.0, speech_stopped_at=10.5)
    turn.first_audio_at, turn.response_id = 11.0, "r1"
    attributes = turn.attributes()
    assert attributes == {
        "voice.turn_latency_ms": 1000,
        "voice.eot_ms": 500,
        "voice.tool_ms": 0,
        "voice.first_audio_ms": 500,
        "voice.interrupted": False,
        "voice.push_to_talk": False,
        "voice.item_id": "u1",
        "voice.response_id": "r1",
    }


def timer() -> tuple[TurnTimer, list[TurnTiming], Clock, list[float]]:
    delivered: list[TurnTiming] = []
    clock = Clock()
    tools = [0.0]
    return (
        TurnTimer(delivered.append, tool_seconds=lambda: tools[0], clock=clock),
        delivered,
        clock,
        tools,
    )


def test_a_turn_is_delivered_once_when_the_next_begins() -> None:
    turns, delivered, clock, tools = timer()
    turns.speech_ended("u1", 99.6)
    clock.now = 100.3
    turns.transcribed("u1")
    tools[0] = 0.4  # a tool round ran
    clock.now = 101.0
    turns.audio_began("a1", "r1")
    clock.now = 101.2
    turns.audio_began("a2", "r1")  # a later item changes nothing
    assert turns.playback_began("a9") is False  # not this turn's item
    clock.now = 101.15
    assert turns.playback_began("a1") is True
    assert delivered == []
    clock.now = 105.0
    turns.speech_ended("u2", 104.5)
    [first] = delivered
    assert (first.turn_latency_ms, first.eot_ms, first.transcription_ms) == (1400, 400, 300)
    assert (first.tool_ms, first.first_audio_ms, first.played_latency_ms) == (400, 300, 1550)
    assert (first.response_id, first.audio_item_id, first.interrupted) == ("r1", "a1", False)
    turns.finish()
    turns.finish()
    assert len(delivered) == 1  # u2 got no reply: nothing to deliver


def test_audio_of_the_reply_the_user_spoke_over_is_not_the_turn_s() -> None:
    turns, delivered, clock, _ = timer()
    turns.speech_ended("u1", None, running_response="r0")
    assert turns.current is not None
    assert turns.current.end_of_speech == clock.now  # unknown: timed from speech_stopped
    clock.now += 0.1
    turns.audio_began("a0", "r0")
    clock.now += 0.5
    turns.audio_began("a1", "r1")
    turns.finish()
    assert delivered[0].turn_latency_ms == 600


def test_an_interrupted_reply_says_what_was_heard() -> None:
    turns, delivered, clock, _ = timer()
    turns.speech_ended("u1", 100.0)
    clock.now = 100.5
    turns.audio_began("a1", "r1")
    clock.now = 100.6
    turns.playback_began("a1")
    clock.now = 102.6
    turns.interrupted()
    assert turns.current is not None
    assert turns.current.heard_ms == 2000  # since playback began, until the page says
    turns.heard("a1", 1870)
    turns.speech_ended("u2", 103.0)
    assert (delivered[0].interrupted, delivered[0].heard_ms) == (True, 1870)


def test_push_to_talk_names_its_item_by_the_transcript() -> None:
    turns, delivered, clock, _ = timer()
    turns.speech_ended("", None, push_to_talk=True)
    clock.now += 0.2
    turns.transcribed("u7")
    clock.now += 0.3
    turns.audio_began("a1", "r1")
    turns.finish()
    [turn] = delivered
    assert (turn.item_id, turn.push_to_talk, turn.eot_ms) == ("u7", True, 0)
    assert (turn.transcription_ms, turn.turn_latency_ms) == (200, 500)


def test_a_monotonic_moment_as_unix_nanoseconds() -> None:
    # 1.5 s ago on the monotonic clock is 1.5 s before the wall clock's now.
    at = epoch_ns(98.5, wall=lambda: 1_700_000_000.0, monotonic=lambda: 100.0)
    assert at == 1_699_999_998_500_000_000
