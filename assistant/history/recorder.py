"""What one live session records for its history: turns, timings and usage (no Django).

The recorder watches the messages the session already produces — what goes to the browser
(transcripts, ``speech.stopped``, ``audio.start``, ``response.done``), what comes from it
(typed text, ``playback.interrupted``) — plus the upstream's ``usage`` of each response. It
only appends to in-memory lists: no I/O and no await, so it costs the audio path nothing. The
worker's :class:`assistant.history.writer.HistoryWriter` drains it off the event loop.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

#: Bytes per second of the PCM16 24 kHz mono audio both ways.
AUDIO_BYTES_PER_SECOND = 48_000
#: Turns held for one session between flushes; past it the oldest are dropped (and counted).
MAX_PENDING_TURNS = 500


@dataclass(slots=True)
class TurnRecord:
    """One turn as recorded; ``seq`` orders it within the conversation."""

    seq: int
    role: str
    text: str
    started_at: float
    ended_at: float | None = None
    item_id: str = ""
    response_id: str = ""
    interrupted: bool = False
    heard_ms: int | None = None
    latency_ms: int | None = None


@dataclass(slots=True)
class UsageEntry:
    """One response's usage: tokens as the upstream reported them, audio as relayed."""

    response_id: str
    model: str
    usage: Mapping[str, Any]
    audio_in_seconds: float
    audio_out_seconds: float
    at: float


@dataclass(slots=True)
class TurnUpdate:
    """A change to a turn that may already be written (an interruption learnt later)."""

    seq: int
    interrupted: bool
    heard_ms: int | None


@dataclass(frozen=True, slots=True)
class ConversationStart:
    """What the conversation row is created with (on the writer's first flush)."""

    user_id: int
    profile_id: int | None
    profile_name: str
    model: str
    started_at: float
    store_text: bool = True
    resumed_from: uuid.UUID | None = None


@dataclass(slots=True)
class Batch:
    """Everything recorded since the last drain."""

    conversation_id: uuid.UUID
    start: ConversationStart | None = None
    turns: list[TurnRecord] = field(default_factory=list)
    updates: list[TurnUpdate] = field(default_factory=list)
    usage: list[UsageEntry] = field(default_factory=list)
    upstream_session_ids: list[str] = field(default_factory=list)
    ended_at: float | None = None
    end_reason: str = ""
    dropped_turns: int = 0

    @property
    def empty(self) -> bool:
        """True when there is nothing to write.

        A batch with the start is never empty: dropping it would lose the conversation row,
        and every later batch with it (they are written only into an existing row).
        """
        return (
            not (self.turns or self.updates or self.usage or self.upstream_session_ids)
            and self.ended_at is None
            and self.start is None
        )


class ConversationRecorder:
    """The history of one session, kept in memory until the writer takes it.

    Args:
        conversation_id: the conversation row (the session id).
        start: what the row is created with (user, profile, model, whether text is kept).
        clock: wall-clock seconds (tests pass their own).
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
        self._speech_stopped_at: float | None = None
        self._latency_by_response: dict[str, int] = {}
        self._audio_out_by_item: dict[str, int] = {}
        self._tool_arguments: dict[str, str] = {}  # call id -> its arguments' summary
        self._audio_in_bytes = 0
        self.ended = False

    # ------------------------------------------------------------------ what happens

    def upstream_session(self, upstream_id: str) -> None:
        """An upstream connection was opened (the first one, or a rollover's)."""
        if upstream_id:
            self._batch.upstream_session_ids.append(upstream_id)

    def audio_in(self, nbytes: int) -> None:
        """The user's audio relayed upstream (attributed to the next response's usage)."""
        self._audio_in_bytes += nbytes

    def audio_out(self, item_id: str, nbytes: int) -> None:
        """Assistant audio relayed to the browser for ``item_id``."""
        self._audio_out_by_item[item_id] = self._audio_out_by_item.get(item_id, 0) + nbytes

    def outgoing(self, kind: str, payload: Mapping[str, Any]) -> None:
        """A message sent to the browser."""
        now = self._clock()
        item_id = str(payload.get("item_id") or "")
        if kind == "speech.started" and item_id:
            self._started_by_item[item_id] = now
        elif kind == "speech.stopped":
            self._speech_stopped_at = now
            if item_id:
                self._stopped_by_item[item_id] = now
        elif kind == "transcript.user.done":
            ended = self._stopped_by_item.pop(item_id, now)
            self._add_turn("user", payload.get("transcript"), ended, item_id=item_id)
        elif kind == "audio.start":
            response_id = str(payload.get("response_id") or "")
            if item_id:
                self._started_by_item[item_id] = now
            if self._speech_stopped_at is not None and response_id:
                latency = round((now - self._speech_stopped_at) * 1000)
                self._latency_by_response[response_id] = max(0, latency)
                self._speech_stopped_at = None
        elif kind == "transcript.assistant.done":
            response_id = str(payload.get("response_id") or "")
            self._add_turn(
                "assistant",
                payload.get("transcript"),
                now,
                item_id=item_id,
                response_id=response_id,
                latency_ms=self._latency_by_response.pop(response_id, None),
            )
        elif kind == "tool.started":
            call_id = str(payload.get("call_id") or "")
            self._started_by_item[call_id] = now
            self._tool_arguments[call_id] = str(payload.get("arguments") or "")
        elif kind == "tool.finished":
            call_id = str(payload.get("call_id") or "")
            arguments = self._tool_arguments.pop(call_id, "")
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

    def response_usage(
        self, response_id: str, usage: Mapping[str, Any] | None, item_ids: list[str]
    ) -> None:
        """``response.done`` arrived with ``usage``; ``item_ids`` are its output items."""
        out_bytes = sum(self._audio_out_by_item.pop(item, 0) for item in item_ids)
        self._batch.usage.append(
            UsageEntry(
                response_id=response_id,
                model=self.model,
                usage=dict(usage or {}),
                audio_in_seconds=self._audio_in_bytes / AUDIO_BYTES_PER_SECOND,
                audio_out_seconds=out_bytes / AUDIO_BYTES_PER_SECOND,
                at=self._clock(),
            )
        )
        self._audio_in_bytes = 0

    def end(self, reason: str) -> None:
        """The session ended (idempotent): the next drain carries the end."""
        if self.ended:
            return
        self.ended = True
        if self._audio_in_bytes or self._audio_out_by_item:
            # Audio no response accounted for (the user spoke, nobody answered): still used.
            self.response_usage("", None, list(self._audio_out_by_item))
        self._batch.ended_at = self._clock()
        self._batch.end_reason = reason

    # ------------------------------------------------------------------ the writer's side

    def drain(self) -> Batch:
        """Everything since the last drain; the recorder starts a new batch."""
        batch, self._batch = self._batch, Batch(self.conversation_id)
        return batch

    def _add_turn(
        self,
        role: str,
        text: Any,
        now: float,
        *,
        item_id: str = "",
        response_id: str = "",
        latency_ms: int | None = None,
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
            latency_ms=latency_ms,
        )
        self._seq += 1
        if turn.item_id:
            self._by_item[turn.item_id] = turn.seq
        turns = self._batch.turns
        turns.append(turn)
        if len(turns) > MAX_PENDING_TURNS:
            del turns[0]
            self._batch.dropped_turns += 1
