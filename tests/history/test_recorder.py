"""The recorder turns a session's message stream into turns, timings and usage (no Django)."""

from __future__ import annotations

import uuid

from assistant.history.recorder import (
    AUDIO_BYTES_PER_SECOND,
    MAX_PENDING_TURNS,
    ConversationRecorder,
    ConversationStart,
    TimesUpdate,
    TurnTimes,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def recorder(clock: Clock, *, store_text: bool = True) -> ConversationRecorder:
    start = ConversationStart(
        user_id=1,
        profile_id=2,
        profile_name="Friendly",
        model="gpt-realtime",
        started_at=clock.now,
        store_text=store_text,
    )
    return ConversationRecorder(uuid.uuid4(), start, clock=clock)


def spoken_turn(rec: ConversationRecorder, clock: Clock) -> None:
    """A question, then an answer whose audio starts 0.8 s after the user stopped."""
    rec.outgoing("speech.started", {"item_id": "u1"})
    clock.now += 2.0
    rec.outgoing("speech.stopped", {"item_id": "u1"})
    rec.audio_in(2 * AUDIO_BYTES_PER_SECOND)
    clock.now += 0.3
    rec.outgoing("transcript.user.done", {"item_id": "u1", "transcript": "Capital of France?"})
    clock.now += 0.5
    rec.outgoing("audio.start", {"item_id": "a1", "response_id": "r1"})
    rec.audio_out(3 * AUDIO_BYTES_PER_SECOND)
    clock.now += 1.0
    rec.outgoing(
        "transcript.assistant.done",
        {"item_id": "a1", "response_id": "r1", "transcript": "Paris."},
    )
    rec.response_usage("r1", {"input_tokens": 20, "output_tokens": 10})
    # The turn is over (the relay's TurnTimer): its timings go with the reply's turn.
    rec.timed("r1", TIMES)


TIMES = TurnTimes(
    latency_ms=1300,
    eot_ms=500,
    transcription_ms=300,
    tool_ms=0,
    first_audio_ms=500,
    played_latency_ms=1420,
)


def test_a_spoken_turn_becomes_two_turns_with_times_latency_and_usage() -> None:
    clock = Clock()
    rec = recorder(clock)
    spoken_turn(rec, clock)
    batch = rec.drain()
    assert batch.start is not None
    user, assistant = batch.turns
    assert (user.seq, user.role, user.text) == (0, "user", "Capital of France?")
    assert (user.started_at, user.ended_at) == (1000.0, 1002.0)  # speech start to stop
    assert (assistant.seq, assistant.role, assistant.text) == (1, "assistant", "Paris.")
    assert assistant.started_at == 1002.8  # its audio began
    assert assistant.times == TIMES
    [usage] = batch.usage
    assert usage.usage["input_tokens"] == 20
    assert (usage.audio_in_seconds, usage.audio_out_seconds) == (2.0, 3.0)
    assert batch.accrual is None  # the response took everything: nothing accrued since
    # The next drain starts empty, without the start.
    assert rec.drain().empty


def test_usage_accrues_between_responses_and_every_drain_carries_it() -> None:
    """What no response has taken yet is in every drain that changed it (totals, not deltas)."""
    clock = Clock()
    rec = recorder(clock)
    rec.audio_in(AUDIO_BYTES_PER_SECOND)
    rec.typed_time(1.5)
    first = rec.drain()
    assert first.accrual is not None
    assert (first.accrual.audio_in_seconds, first.accrual.typed_seconds) == (1.0, 1.5)
    assert first.has_events  # the start
    assert rec.drain().empty  # nothing changed: nothing to write
    rec.audio_in(AUDIO_BYTES_PER_SECOND // 2)
    rec.audio_out(AUDIO_BYTES_PER_SECOND)
    second = rec.drain()
    assert not second.has_events  # an accrual alone: no conversation rows to touch
    assert second.accrual is not None
    assert (second.accrual.audio_in_seconds, second.accrual.audio_out_seconds) == (1.5, 1.0)
    clock.now += 1
    rec.response_usage("r1", {})  # takes all of it...
    third = rec.drain()
    [usage] = third.usage
    assert (usage.audio_in_seconds, usage.audio_out_seconds, usage.typed_seconds) == (
        1.5,
        1.0,
        1.5,
    )
    assert third.accrual is not None
    assert third.accrual.zero  # ...so the accrued row goes back to nothing
    assert third.accrual.at == 1001.0


def test_a_drain_brings_the_counts_up_to_date_first() -> None:
    rec = recorder(Clock())
    rec.drain()
    rec.before_drain = lambda: rec.audio_in(AUDIO_BYTES_PER_SECOND)
    accrual = rec.drain().accrual
    assert accrual is not None
    assert accrual.audio_in_seconds == 1.0


def test_a_tool_call_is_a_turn_with_its_arguments_outcome_and_result() -> None:
    clock = Clock()
    rec = recorder(clock)
    rec.outgoing("tool.started", {"call_id": "c1", "name": "get_current_time", "arguments": ""})
    clock.now += 0.4
    rec.outgoing(
        "tool.finished",
        {"call_id": "c1", "name": "get_current_time", "outcome": "ok", "summary": "10:42"},
    )
    rec.outgoing("tool.finished", {"call_id": "c2", "name": "search", "outcome": "timeout"})
    first, second = rec.drain().turns
    assert (first.role, first.text, first.item_id) == (
        "tool",
        "get_current_time() → ok: 10:42",
        "c1",
    )
    assert (first.started_at, first.ended_at) == (1000.0, 1000.4)
    assert (second.role, second.text) == ("tool", "search() → timeout")


def test_an_interruption_updates_the_pending_turn_or_a_written_one() -> None:
    clock = Clock()
    rec = recorder(clock)
    spoken_turn(rec, clock)
    rec.interrupted("a1", 640)
    [_, assistant] = rec.drain().turns
    assert (assistant.interrupted, assistant.heard_ms) == (True, 640)
    rec.interrupted("a1", 700)  # after the flush: an update of the written row
    [update] = rec.drain().updates
    assert (update.seq, update.heard_ms) == (1, 700)
    rec.interrupted("never-seen", 5)
    assert rec.drain().empty


def test_typed_text_and_usage_only_profiles() -> None:
    clock = Clock()
    rec = recorder(clock, store_text=False)
    rec.typed("secret words")
    spoken_turn(rec, clock)
    batch = rec.drain()
    assert [(t.role, t.text) for t in batch.turns] == [
        ("typed", ""),
        ("user", ""),
        ("assistant", ""),
    ]
    assert len(batch.usage) == 1  # usage is kept either way


def test_the_end_carries_unaccounted_audio_and_is_idempotent() -> None:
    clock = Clock()
    rec = recorder(clock)
    rec.audio_in(AUDIO_BYTES_PER_SECOND)  # the user spoke; no reply came
    rec.drain()
    rec.upstream_session("sess_1")
    clock.now += 5
    rec.end("user_stop")
    rec.end("something else")
    batch = rec.drain()
    assert batch.upstream_session_ids == ["sess_1"]
    assert (batch.ended_at, batch.end_reason) == (1005.0, "user_stop")
    assert not batch.usage  # no response row: the accrued row keeps it
    # The last batch always says what is left, even unchanged since the previous drain.
    assert batch.accrual is not None
    assert batch.accrual.audio_in_seconds == 1.0


def test_pending_turns_are_bounded() -> None:
    clock = Clock()
    rec = recorder(clock)
    for i in range(MAX_PENDING_TURNS + 7):
        rec.typed(f"message {i}")
    batch = rec.drain()
    assert len(batch.turns) == MAX_PENDING_TURNS
    assert batch.dropped_turns == 7
    assert batch.turns[-1].text == f"message {MAX_PENDING_TURNS + 6}"


def test_hostile_payloads_record_nothing_odd() -> None:
    clock = Clock()
    rec = recorder(clock)
    rec.outgoing("transcript.user.done", {"item_id": None, "transcript": 42})
    rec.outgoing("audio.start", {})
    rec.outgoing("unknown.type", {"transcript": "x"})
    [turn] = rec.drain().turns
    assert (turn.role, turn.text, turn.item_id) == ("user", "", "")


def test_timings_of_a_turn_already_written_come_as_an_update() -> None:
    clock = Clock()
    rec = recorder(clock)
    spoken_turn(rec, clock)
    rec.drain()
    later = TurnTimes(latency_ms=900)
    rec.timed("r1", later)
    batch = rec.drain()
    assert batch.timings == [TimesUpdate(seq=1, times=later)]
    assert batch.has_events


def test_timings_before_the_reply_s_transcript_wait_for_its_turn() -> None:
    clock = Clock()
    rec = recorder(clock)
    rec.timed("r9", TIMES)
    rec.outgoing("transcript.assistant.done", {"item_id": "a9", "response_id": "r9"})
    [turn] = rec.drain().turns
    assert turn.times == TIMES


def test_tool_calls_errors_rollovers_and_quota_warnings_are_timeline_events() -> None:
    clock = Clock()
    rec = recorder(clock)
    rec.upstream_session("sess_1")  # the first connection is no rollover
    rec.outgoing("tool.started", {"call_id": "c1", "name": "weather", "arguments": "{}"})
    clock.now += 0.25
    rec.outgoing("tool.finished", {"call_id": "c1", "name": "weather", "outcome": "ok"})
    rec.outgoing("error", {"code": "upstream_error"})
    rec.outgoing("quota.warning", {"limit": "day", "percent": 80})
    rec.upstream_session("sess_2")
    events = rec.drain().events
    assert [(e.kind, e.detail, e.duration_ms) for e in events] == [
        ("tool", "weather → ok", 250),
        ("error", "upstream_error", None),
        ("quota_warning", "day: 80%", None),
        ("rollover", "sess_2", None),
    ]
    assert events[0].at == 1000.0  # when the call began
