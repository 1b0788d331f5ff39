"""What a session's recorder hands its writer: turns, timings, events, usage (no Django).

The records of :mod:`assistant.history.recorder`, in a module of their own: the recorder builds
them, the writer (:mod:`assistant.history.writer`) turns them into rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


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
    times: TurnTimes | None = None


@dataclass(frozen=True, slots=True)
class TurnTimes:
    """An assistant turn's timings in ms (``TurnTiming``'s parts; None: not measured)."""

    latency_ms: int | None
    eot_ms: int | None = None
    transcription_ms: int | None = None
    tool_ms: int | None = None
    first_audio_ms: int | None = None
    played_latency_ms: int | None = None


#: TurnTimes' fields, named as the turn's columns.
TIMING_FIELDS = (
    "latency_ms",
    "eot_ms",
    "transcription_ms",
    "tool_ms",
    "first_audio_ms",
    "played_latency_ms",
)


@dataclass(frozen=True, slots=True)
class TimesUpdate:
    """Timings for a turn that may already be written (they are known when the turn is over)."""

    seq: int
    times: TurnTimes


@dataclass(frozen=True, slots=True)
class EventRecord:
    """Something the session timeline shows besides the turns."""

    kind: str  # one of ConversationEvent.Kind: tool, error, rollover, quota_warning
    at: float
    detail: str = ""
    duration_ms: int | None = None


@dataclass(slots=True)
class UsageEntry:
    """One response's usage: tokens as the upstream reported them, audio as relayed."""

    response_id: str
    model: str
    usage: Mapping[str, Any]
    audio_in_seconds: float
    audio_out_seconds: float
    at: float
    typed_seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class Accrual:
    """What the session used since its last response, as of ``at`` (totals, not a delta).

    Totals, so writing one again, or only the latest of several, is always right.
    """

    audio_in_seconds: float
    audio_out_seconds: float
    typed_seconds: float
    at: float

    @property
    def zero(self) -> bool:
        """True when nothing has accrued."""
        return not (self.audio_in_seconds or self.audio_out_seconds or self.typed_seconds)


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
    worker: str = ""
    profile_version: int | None = None
    is_draft: bool = False


@dataclass(slots=True)
class Batch:
    """Everything recorded since the last drain."""

    conversation_id: uuid.UUID
    start: ConversationStart | None = None
    turns: list[TurnRecord] = field(default_factory=list)
    updates: list[TurnUpdate] = field(default_factory=list)
    timings: list[TimesUpdate] = field(default_factory=list)
    events: list[EventRecord] = field(default_factory=list)
    usage: list[UsageEntry] = field(default_factory=list)
    upstream_session_ids: list[str] = field(default_factory=list)
    ended_at: float | None = None
    end_reason: str = ""
    dropped_turns: int = 0
    #: What accrued since the last response, when it changed since the previous drain.
    accrual: Accrual | None = None

    @property
    def has_events(self) -> bool:
        """True when there is more to write than the accrual (the conversation's rows).

        A batch with the start always has: dropping it would lose the conversation row,
        and every later batch with it (they are written only into an existing row).
        """
        return (
            bool(
                self.turns
                or self.updates
                or self.timings
                or self.events
                or self.usage
                or self.upstream_session_ids
            )
            or self.ended_at is not None
            or self.start is not None
        )

    @property
    def empty(self) -> bool:
        """True when there is nothing to write."""
        return self.accrual is None and not self.has_events
