"""One call's trace: the session span, and the spans of its connections, turns and tool calls.

The tree (``docs/operating.md``)::

    realtime {model}                       the call, from admission to release
    ├── voice.upstream.connect             the first Voice Live connection
    ├── chat {model}                       one turn: end of speech -> end of the reply
    │   └── execute_tool {tool}            a tool call made in that turn
    ├── voice.upstream.rollover            a connection replaced before the service's limit
    └── ...

The call feeds it only control events it already produces (messages to the browser, typed
text, interruptions, usage, connections), never audio. Turn and tool spans are made when the
turn closes, with the times recorded on the way (:mod:`assistant.telemetry.turns`).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Concatenate, ParamSpec, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from assistant.telemetry import attributes as attr
from assistant.telemetry.attributes import CallFacts
from assistant.telemetry.turns import TurnAssembler, TurnRecord

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

#: The browser messages a trace learns from (the rest are skipped at once).
TRACED_TYPES = frozenset(
    {
        "speech.stopped",
        "transcript.user.done",
        "audio.start",
        "transcript.assistant.done",
        "response.done",
        "tool.started",
        "tool.finished",
        "quota.warning",
        "profile.handover",
        "session.ending",
        "error",
    }
)


def _guarded(
    method: Callable[Concatenate[CallTrace, P], R],
) -> Callable[Concatenate[CallTrace, P], R | None]:
    """A failure in tracing is logged once and stops this call's trace; the call goes on."""

    @functools.wraps(method)
    def guarded(self: CallTrace, *args: P.args, **kwargs: P.kwargs) -> R | None:
        if self.broken:
            return None
        try:
            return method(self, *args, **kwargs)
        except Exception:
            self.broken = True
            logger.exception("tracing this call failed; it goes on untraced")
            return None

    return guarded


class CallTrace:
    """The spans of one call (made only when tracing is on; see :func:`call_trace_start`).

    Args:
        tracer: the process's tracer.
        facts: the call's session id, model, profile, worker and user pseudonym.
    """

    def __init__(self, tracer: trace.Tracer, facts: CallFacts) -> None:
        self._tracer = tracer
        self._model = facts.model
        self.session_span: Span = tracer.start_span(
            attr.span_name(attr.OPERATION_SESSION, facts.model),
            kind=SpanKind.SERVER,
            attributes=attr.session_attributes(facts),
        )
        self._context = trace.set_span_in_context(self.session_span)
        self.turns = TurnAssembler(self._emit_turn)
        self._ended = False
        #: Set by a failure of the tracing itself: nothing more is traced for this call.
        self.broken = False

    # ------------------------------------------------------------------ context

    def attach(self) -> None:
        """Make the session span current in this task (and every task created after it).

        Never detached: the context belongs to the call's task, which ends with the call.
        """
        otel_context.attach(self._context)

    @property
    def trace_id(self) -> str:
        """The call's trace id, in hex (as the logs show it)."""
        return trace.format_trace_id(self.session_span.get_span_context().trace_id)

    # ------------------------------------------------------------------ control events

    def outgoing(self, kind: str, message: Any) -> None:
        """A control message went to the browser (``kind`` is its type)."""
        # Most messages are transcript deltas: skipped here, before anything else.
        if kind in TRACED_TYPES and not self._ended:
            self._outgoing(kind, message)

    @_guarded
    def _outgoing(self, kind: str, message: Any) -> None:
        turns = self.turns
        if kind == "speech.stopped":
            turns.user_spoke()
        elif kind == "audio.start":
            turns.response_seen(message.response_id or "", message.item_id or "", audio=True)
        elif kind == "transcript.assistant.done":
            turns.response_seen(message.response_id or "", message.item_id or "")
        elif kind == "response.done":
            turns.response_done(message.response_id or "", message.status)
        elif kind == "transcript.user.done":
            turns.event(kind)
        elif kind == "tool.started":
            turns.tool_started(message.call_id, message.name)
        elif kind == "tool.finished":
            turns.tool_finished(message.call_id, message.outcome)
        else:
            self._session_event(kind, message)

    @_guarded
    def typed(self) -> None:
        """The user typed a message (a turn, as a spoken one)."""
        if not self._ended:
            self.turns.user_typed()

    @_guarded
    def interrupted(self, item_id: str, played_ms: int) -> None:
        """The user talked over the reply ``item_id`` after hearing ``played_ms`` of it."""
        if not self._ended:
            self.turns.interrupted(item_id, played_ms)

    @_guarded
    def usage(self, response_id: str, usage: Mapping[str, Any] | None) -> None:
        """A response's usage, as the upstream reported it."""
        if not self._ended:
            self.turns.usage(response_id, usage)

    @_guarded
    def add_attributes(self, response_id: str, attributes: Mapping[str, AttributeValue]) -> bool:
        """Merge per-turn figures (flat ``voice.*`` keys) into the turn of ``response_id``.

        Returns:
            False when the turn is not open any more (or the call has ended).
        """
        return not self._ended and self.turns.add_attributes(response_id, attributes)

    @_guarded
    def connection(
        self, kind: str, started_monotonic: float, upstream_id: str, error: str | None
    ) -> None:
        """An upstream connection was opened (``connect``, ``rollover``), or failed to be.

        Args:
            kind: ``connect`` (the first) or ``rollover``.
            started_monotonic: ``time.monotonic()`` when opening began; it ended now.
            upstream_id: the upstream's session id ("" if it failed).
            error: the failure's type, or None.
        """
        if self._ended:
            return
        end = time.time_ns()
        start = end - int((time.monotonic() - started_monotonic) * 1e9)
        span = self._tracer.start_span(
            f"voice.upstream.{kind}",
            context=self._context,
            kind=SpanKind.CLIENT,
            attributes=attr.connection_attributes(upstream_id, self._model),
            start_time=start,
        )
        if error:
            span.set_attribute(attr.ERROR_TYPE, error)
            span.set_status(Status(StatusCode.ERROR))
        span.end(end_time=end)

    # ------------------------------------------------------------------ the end

    @_guarded
    def end(self, reason: str, *, error: str | None) -> None:
        """The call ended for ``reason``; ``error`` is its error code if it failed. Once."""
        if self._ended:
            return
        self._ended = True
        self.turns.close()
        span = self.session_span
        span.set_attribute(attr.END_REASON, reason)
        span.set_attribute(attr.TURNS, self.turns.count)
        if error:
            span.set_attribute(attr.ERROR_TYPE, error)
            span.set_status(Status(StatusCode.ERROR))
        span.end()

    # ------------------------------------------------------------------ spans

    def _session_event(self, kind: str, message: Any) -> None:
        """Quota warnings, handovers, endings and errors: events on the session span."""
        self.session_span.add_event(kind, attr.session_event_attributes(kind, message))

    def _emit_turn(self, turn: TurnRecord) -> None:
        span = self._tracer.start_span(
            attr.span_name(attr.OPERATION_TURN, self._model),
            context=self._context,
            kind=SpanKind.CLIENT,
            attributes=attr.turn_attributes(turn, self._model),
            start_time=turn.started_ns,
        )
        for name, at in turn.events:
            span.add_event(name, timestamp=at)
        if turn.attributes:
            span.set_attributes(turn.attributes)
        turn_context = trace.set_span_in_context(span)
        for tool in turn.tools:
            ended = tool.ended_ns if tool.ended_ns is not None else turn.ended_ns
            child = self._tracer.start_span(
                attr.span_name(attr.OPERATION_TOOL, tool.name),
                context=turn_context,
                kind=SpanKind.INTERNAL,
                attributes=attr.tool_attributes(tool),
                start_time=tool.started_ns,
            )
            if tool.outcome not in ("ok", ""):
                child.set_status(Status(StatusCode.ERROR))
            child.end(end_time=max(ended, tool.started_ns))
        span.end(end_time=max(turn.ended_ns, turn.started_ns))


def call_trace_start(tracer: trace.Tracer | None, facts: CallFacts) -> CallTrace | None:
    """The call's trace, or None with tracing off (then the call pays nothing for it)."""
    if tracer is None:
        return None
    return CallTrace(tracer, facts)
