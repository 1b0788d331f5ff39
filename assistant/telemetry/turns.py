"""A call's turns, assembled from its control events, for their spans (no I/O, no SDK).

A *turn* is one exchange: it opens at the user's end of speech (``speech.stopped``) or typed
message — or at the assistant's first event when nobody asked (a greeting) — and takes every
response, tool call and interruption until the next turn opens (or the call ends). Closing it
only then is deliberate: the user cuts a reply off after its ``response.done`` (the relay sends
audio faster than it plays), so whether it was interrupted and how much was heard is known only
once the user speaks again.

Only timestamps and small counters are kept (wall-clock nanoseconds, as spans take them); the
spans are made once a turn closes, with explicit start and end times, so nothing here runs per
audio frame and nothing is kept for a turn once it is emitted.

Other parts of the service add their own per-turn figures with :meth:`TurnAssembler.add_attributes`
(a mapping of flat ``voice.*`` keys, e.g. ``TurnTiming.attributes()``), keyed by a response id.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.util.types import AttributeValue

#: Tool calls traced per turn; past it they are counted (``voice.tool_calls_dropped``), not kept.
MAX_TOOLS_PER_TURN = 32
#: Span events per turn (response ends, first audio, transcripts); past it, dropped.
MAX_EVENTS_PER_TURN = 64


@dataclass(slots=True)
class ToolRecord:
    """One tool call of a turn."""

    call_id: str
    name: str
    started_ns: int
    ended_ns: int | None = None
    outcome: str = ""


@dataclass(slots=True)
class TurnRecord:
    """One turn, as its span will show it.

    Attributes:
        index: 1 for the call's first turn, and so on.
        trigger: what opened it: ``speech``, ``text`` or ``assistant`` (nobody asked).
        started_ns: when it opened (the user's end of speech as the service saw it).
        ended_ns: its latest event (the last ``response.done`` or tool end, usually).
    """

    index: int
    trigger: str
    started_ns: int
    ended_ns: int
    response_ids: list[str] = field(default_factory=list)
    item_ids: set[str] = field(default_factory=set)
    statuses: list[str] = field(default_factory=list)
    tools: list[ToolRecord] = field(default_factory=list)
    tools_dropped: int = 0
    events: list[tuple[str, int]] = field(default_factory=list)
    attributes: dict[str, AttributeValue] = field(default_factory=dict)
    input_tokens: int | None = None
    output_tokens: int | None = None
    interrupted: bool = False
    heard_ms: int | None = None
    first_audio_ns: int | None = None

    def event(self, name: str, at: int) -> None:
        """Note a moment of the turn (a span event), within the cap."""
        if len(self.events) < MAX_EVENTS_PER_TURN:
            self.events.append((name, at))
        self.ended_ns = max(self.ended_ns, at)

    @property
    def answered(self) -> bool:
        """True once a response of the assistant belongs to it."""
        return bool(self.response_ids)


class TurnAssembler:
    """Builds a call's :class:`TurnRecord` from its control events; hands each closed one on.

    Args:
        emit: receives each turn once it closes (makes its spans).
        clock: wall-clock nanoseconds (tests pass their own).
    """

    def __init__(
        self, emit: Callable[[TurnRecord], None], *, clock: Callable[[], int] = time.time_ns
    ) -> None:
        self._emit = emit
        self._clock = clock
        self._open: TurnRecord | None = None
        self._count = 0
        # The last closed turn's responses: a late figure for one of them is refused, not put
        # on the next turn.
        self._closed_responses: frozenset[str] = frozenset()

    @property
    def count(self) -> int:
        """Turns opened so far."""
        return self._count

    @property
    def current(self) -> TurnRecord | None:
        """The open turn, if any."""
        return self._open

    # ------------------------------------------------------------------ what opens a turn

    def user_spoke(self) -> None:
        """The user's speech ended (``speech.stopped``): a new turn, unless none was answered."""
        self._user_turn("speech")

    def user_typed(self) -> None:
        """The user sent a typed message: a new turn, as a spoken one."""
        self._user_turn("text")

    def _user_turn(self, trigger: str) -> None:
        now = self._clock()
        turn = self._open
        if turn is not None and not turn.answered and not turn.tools:
            # Still waiting for an answer (a pause mid-sentence): the latest end of speech
            # is the one the user waits from.
            turn.trigger, turn.started_ns, turn.ended_ns = trigger, now, max(turn.ended_ns, now)
            return
        self._close()
        self._count += 1
        self._open = TurnRecord(self._count, trigger, now, now)

    def _turn(self) -> TurnRecord:
        """The open turn; the assistant speaking unasked (a greeting) opens one."""
        if self._open is None:
            now = self._clock()
            self._count += 1
            self._open = TurnRecord(self._count, "assistant", now, now)
        return self._open

    # ------------------------------------------------------------------ inside a turn

    def event(self, name: str) -> None:
        """A moment worth seeing on the turn's span (e.g. ``transcript.user.done``)."""
        if self._open is not None:
            self._open.event(name, self._clock())

    def response_seen(self, response_id: str, item_id: str = "", *, audio: bool = False) -> None:
        """A response of the assistant belongs to the open turn (its first audio if ``audio``)."""
        turn = self._turn()
        now = self._clock()
        if response_id and response_id not in turn.response_ids:
            turn.response_ids.append(response_id)
        if item_id:
            turn.item_ids.add(item_id)
        if audio and turn.first_audio_ns is None:
            turn.first_audio_ns = now
            turn.event("audio.start", now)
        turn.ended_ns = max(turn.ended_ns, now)

    def response_done(self, response_id: str, status: str) -> None:
        """A response ended with ``status`` (``completed``, ``cancelled``, ...)."""
        self.response_seen(response_id)
        turn = self._turn()
        turn.statuses.append(status)
        turn.event("response.done", self._clock())

    def usage(self, response_id: str, usage: Mapping[str, Any] | None) -> None:
        """A response's token usage, summed on the turn it belongs to."""
        turn = self._find(response_id)
        if turn is None or not usage:
            return
        for key in ("input_tokens", "output_tokens"):
            value = usage.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                setattr(turn, key, (getattr(turn, key) or 0) + value)

    def tool_started(self, call_id: str, name: str) -> None:
        """The model called a tool."""
        turn = self._turn()
        now = self._clock()
        if len(turn.tools) >= MAX_TOOLS_PER_TURN:
            turn.tools_dropped += 1
            return
        turn.tools.append(ToolRecord(call_id, name, now))
        turn.ended_ns = max(turn.ended_ns, now)

    def tool_finished(self, call_id: str, outcome: str) -> None:
        """A tool call ended with ``outcome`` (``ok``, ``error``, ``timeout``, ...)."""
        turn = self._open
        tool = next((t for t in turn.tools if t.call_id == call_id), None) if turn else None
        if turn is None or tool is None or tool.ended_ns is not None:
            return
        tool.ended_ns = self._clock()
        tool.outcome = outcome
        turn.ended_ns = max(turn.ended_ns, tool.ended_ns)

    def interrupted(self, item_id: str, heard_ms: int) -> None:
        """The user cut the reply ``item_id`` off after hearing ``heard_ms`` of it."""
        turn = self._open
        if turn is None or (item_id and turn.item_ids and item_id not in turn.item_ids):
            return
        turn.interrupted = True
        turn.heard_ms = max(0, heard_ms)
        turn.event("playback.interrupted", self._clock())

    def add_attributes(self, response_id: str, attributes: Mapping[str, AttributeValue]) -> bool:
        """Merge ``attributes`` (flat ``voice.*`` keys) into the turn of ``response_id``.

        A response not seen yet belongs to the open turn (responses come one after another).

        Returns:
            False when its turn was already emitted, or no turn is open.
        """
        turn = self._open
        if turn is None or response_id in self._closed_responses:
            return False
        if response_id and response_id not in turn.response_ids:
            turn.response_ids.append(response_id)
        turn.attributes.update(attributes)
        return True

    # ------------------------------------------------------------------ the end

    def close(self) -> None:
        """The call ended: the open turn is complete."""
        self._close()

    def _close(self) -> None:
        turn, self._open = self._open, None
        if turn is not None:
            self._closed_responses = frozenset(turn.response_ids)
            self._emit(turn)

    def _find(self, response_id: str) -> TurnRecord | None:
        turn = self._open
        if turn is not None and response_id in turn.response_ids:
            return turn
        return None
