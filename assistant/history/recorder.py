"""What one live session records for its history: turns, timings, events and usage (no Django).

The recorder watches the messages the session already produces — what goes to the browser
(transcripts, ``audio.start``, tool lines, errors, quota warnings), what comes from it (typed
text, ``playback.interrupted``) — plus the upstream's ``usage`` of each response and each
turn's timings (assistant/voicelive/turn_timing.py, delivered once per turn). It
only appends to in-memory lists: no I/O and no await, so it costs the audio path nothing. The
worker's :class:`assistant.history.writer.HistoryWriter` drains it off the event loop.

Usage is recorded as it accrues, not only when a response ends: each response takes the audio
and typed text since the previous one, and every drain also carries what has accrued since the
last response (:class:`Accrual`), which the writer keeps in the session's *accrued* ledger row.
A worker that dies then loses at most the usage of one flush interval.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from assistant.history.records import (
    TIMING_FIELDS,
    Accrual,
    Batch,
    ConversationStart,
    EventRecord,
    TimesUpdate,
    TurnRecord,
    TurnTimes,
    TurnUpdate,
    UsageEntry,
)
from assistant.history.usage import AUDIO_BYTES_PER_SECOND

#: Turns held for one session between flushes; past it the oldest are dropped (and counted).
MAX_PENDING_TURNS = 500

__all__ = [
    "MAX_PENDING_TURNS",
    "TIMING_FIELDS",
    "Accrual",
    "Batch",
    "ConversationRecorder",
    "ConversationStart",
    "EventRecord",
    "TimesUpdate",
    "TurnRecord",
    "TurnTimes",
    "TurnUpdate",
    "UsageEntry",
]


class ConversationRecorder:
    """The history of one session, kept in memory until the writer takes it.

    Args:
        conversation_id: the conversation row (the session id).
        start: what the row is created with (user, profile, model, whether text is kept).
        clock: wall-clock seconds (tests pass their own).

    Attributes:
        before_drain: called first thing on every drain (no I/O): brings the counts up to
            date from the session's own counters, so a drain carries the usage until then.
    """

    def __init__(
        self,
        conversation_id: uuid.UUID,
        start: ConversationStart,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.conversation_id = conversation_id
        self.store_text = start.store_text
        self.model = start.model
        self._clock = clock
        self._seq = 0
        self._batch = Batch(conversation_id, start=start)
        self._started_by_item: dict[str, float] = {}  # item id -> when it began
        self._stopped_by_item: dict[str, float] = {}  # user item id -> end of its speech
        self._by_item: dict[str, int] = {}  # item id -> seq of its turn
        self._by_response: dict[str, int] = {}  # response id -> seq of its assistant turn
        self._times_by_response: dict[str, TurnTimes] = {}  # timed before its turn was seen
        self._upstream_count = 0
        self._tool_arguments: dict[str, str] = {}  # call id -> its arguments' summary
        # Running totals, and how much of them responses took (the rest is the accrual).
        self._in_bytes = self._out_bytes = 0
        self._typed = 0.0
        self._in_given = self._out_given = 0
        self._typed_given = 0.0
        self._drained: tuple[int, int, float] = (0, 0, 0.0)  # what the last accrual said
        self.before_drain: Callable[[], None] | None = None
        self.ended = False

    # ------------------------------------------------------------------ what happens

    def upstream_session(self, upstream_id: str) -> None:
        """An upstream connection was opened (the first one, or a rollover's)."""
        if upstream_id:
            self._batch.upstream_session_ids.append(upstream_id)
            self._upstream_count += 1
            if self._upstream_count > 1:
                self._event("rollover", upstream_id)

    def audio_in(self, nbytes: int) -> None:
        """The user's audio relayed upstream (attributed to the next response's usage)."""
        self._in_bytes += nbytes

    def audio_out(self, nbytes: int) -> None:
        """Assistant audio relayed to the browser (attributed to the next response's usage)."""
        self._out_bytes += nbytes

    def typed_time(self, seconds: float) -> None:
        """Typed messages sent upstream, as quotas count them (``usage.typed_seconds``)."""
        self._typed += seconds

    def outgoing(self, kind: str, payload: Mapping[str, Any]) -> None:
        """A message sent to the browser."""
        now = self._clock()
        item_id = str(payload.get("item_id") or "")
        if kind == "speech.started" and item_id:
            self._started_by_item[item_id] = now
        elif kind == "speech.stopped":
            if item_id:
                self._stopped_by_item[item_id] = now
        elif kind == "transcript.user.done":
            ended = self._stopped_by_item.pop(item_id, now)
            self._add_turn("user", payload.get("transcript"), ended, item_id=item_id)
        elif kind == "audio.start":
            if item_id:
                self._started_by_item[item_id] = now
        elif kind == "transcript.assistant.done":
            response_id = str(payload.get("response_id") or "")
            self._add_turn(
                "assistant",
                payload.get("transcript"),
                now,
                item_id=item_id,
                response_id=response_id,
                times=self._times_by_response.pop(response_id, None),
            )
        elif kind == "error":
            self._event("error", str(payload.get("code") or ""))
        elif kind == "quota.warning":
            self._event("quota_warning", f"{payload.get('limit')}: {payload.get('percent')}%")
        elif kind == "tool.started":
            call_id = str(payload.get("call_id") or "")
            self._started_by_item[call_id] = now
            self._tool_arguments[call_id] = str(payload.get("arguments") or "")
        elif kind == "tool.finished":
            call_id = str(payload.get("call_id") or "")
            arguments = self._tool_arguments.pop(call_id, "")
            began = self._started_by_item.get(call_id, now)
            self._event(
                "tool",
                f"{payload.get('name')} → {payload.get('outcome')}",
                duration_ms=max(0, round((now - began) * 1000)),
                at=began,
            )
            text = (
                f"{payload.get('name')}({arguments}) → {payload.get('outcome')}: "
                f"{payload.get('summary') or ''}"
            )
            self._add_turn("tool", text.rstrip(": "), now, item_id=call_id)

    def typed(self, text: str) -> None:
        """The user typed a message (``text.send``)."""
        self._add_turn("typed", text, self._clock())

    def interrupted(self, item_id: str, heard_ms: int) -> None:
        """The user cut the assistant's ``item_id`` off after hearing ``heard_ms`` of it."""
        seq = self._by_item.get(item_id)
        if seq is None:
            return
        pending = next((t for t in self._batch.turns if t.seq == seq), None)
        if pending is not None:
            pending.interrupted, pending.heard_ms = True, heard_ms
        else:
            self._batch.updates.append(TurnUpdate(seq, True, heard_ms))

    def timed(self, response_id: str, times: TurnTimes) -> None:
        """A turn is over with these timings for the reply ``response_id``."""
        seq = self._by_response.get(response_id)
        if seq is None:
            if response_id and len(self._times_by_response) < MAX_PENDING_TURNS:
                self._times_by_response[response_id] = times  # its transcript is still to come
            return
        pending = next((t for t in self._batch.turns if t.seq == seq), None)
        if pending is not None:
            pending.times = times
        else:
            self._batch.timings.append(TimesUpdate(seq, times))

    def response_usage(self, response_id: str, usage: Mapping[str, Any] | None) -> None:
        """``response.done`` arrived with ``usage``: it takes what accrued since the last one."""
        in_bytes, out_bytes, typed = self._pending()
        self._batch.usage.append(
            UsageEntry(
                response_id=response_id,
                model=self.model,
                usage=dict(usage or {}),
                audio_in_seconds=in_bytes / AUDIO_BYTES_PER_SECOND,
                audio_out_seconds=out_bytes / AUDIO_BYTES_PER_SECOND,
                typed_seconds=typed,
                at=self._clock(),
            )
        )
        self._in_given, self._out_given, self._typed_given = (
            self._in_bytes,
            self._out_bytes,
            self._typed,
        )

    def end(self, reason: str) -> None:
        """The session ended (idempotent): the next drain carries the end.

        What no response took (the user spoke and nobody answered) stays in the accrued row.
        """
        if self.ended:
            return
        self.ended = True
        self._batch.ended_at = self._clock()
        self._batch.end_reason = reason

    # ------------------------------------------------------------------ the writer's side

    def drain(self) -> Batch:
        """Everything since the last drain, with the accrual if it changed; starts a new batch.

        The batch that ends the conversation always carries the accrual: its last word.
        """
        if self.before_drain is not None and not self.ended:
            self.before_drain()
        batch, self._batch = self._batch, Batch(self.conversation_id)
        pending = self._pending()
        if pending != self._drained or batch.ended_at is not None:
            self._drained = pending
            in_bytes, out_bytes, typed = pending
            batch.accrual = Accrual(
                audio_in_seconds=in_bytes / AUDIO_BYTES_PER_SECOND,
                audio_out_seconds=out_bytes / AUDIO_BYTES_PER_SECOND,
                typed_seconds=typed,
                at=self._clock(),
            )
        return batch

    def _pending(self) -> tuple[int, int, float]:
        """Audio bytes in and out and typed seconds that no response has taken yet."""
        return (
            self._in_bytes - self._in_given,
            self._out_bytes - self._out_given,
            self._typed - self._typed_given,
        )

    def _add_turn(
        self,
        role: str,
        text: Any,
        now: float,
        *,
        item_id: str = "",
        response_id: str = "",
        times: TurnTimes | None = None,
    ) -> None:
        text = text if isinstance(text, str) else ""
        turn = TurnRecord(
            seq=self._seq,
            role=role,
            text=text if self.store_text else "",
            started_at=self._started_by_item.pop(item_id, now),
            ended_at=now,
            item_id=item_id,
            response_id=response_id,
            times=times,
        )
        self._seq += 1
        if turn.item_id:
            self._by_item[turn.item_id] = turn.seq
        if response_id and role == "assistant":
            self._by_response.setdefault(response_id, turn.seq)
        turns = self._batch.turns
        turns.append(turn)
        if len(turns) > MAX_PENDING_TURNS:
            del turns[0]
            self._batch.dropped_turns += 1

    def _event(
        self, kind: str, detail: str, *, duration_ms: int | None = None, at: float | None = None
    ) -> None:
        events = self._batch.events
        events.append(
            EventRecord(kind, self._clock() if at is None else at, detail[:200], duration_ms)
        )
        if len(events) > MAX_PENDING_TURNS:
            del events[0]
