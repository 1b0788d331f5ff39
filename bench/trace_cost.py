"""What tracing and the log context cost a call, per control message, per turn and per record.

Microbenchmarks of the code the call runs (``assistant/telemetry``), with the real SDK and a
``BatchSpanProcessor`` whose exporter drops the spans (the export runs in its thread, not here):

* ``message, untraced type``: a control message the trace skips (a transcript delta);
* ``message, traced type``: one it records (``audio.start``);
* ``turn``: a spoken turn with a tool call, from ``speech.stopped`` to its spans being made;
* ``log record``: the filter stamping session, user, trace and span ids, outside a span and inside.

With tracing off a call has no trace at all: what remains is ``if call.trace is not None`` per
control message, and the log filter.

    .venv/bin/python -m bench.trace_cost --rounds 5
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
from collections.abc import Callable, Sequence

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from assistant import protocol
from assistant.telemetry.attributes import CallFacts
from assistant.telemetry.call_trace import CallTrace
from assistant.telemetry.logs import LogContextFilter

FACTS = CallFacts("5b0c7a52-0000-4000-8000-000000000001", "gpt-realtime", 1, "Default", "w", "ab")


class Dropping(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def per_call(work: Callable[[], object], n: int, rounds: int) -> float:
    """Median over ``rounds`` of the mean seconds per call of ``work``."""
    results = []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(n):
            work()
        results.append((time.perf_counter() - started) / n)
    return statistics.median(results)


def spoken_turn(trace: CallTrace) -> None:
    trace.outgoing("speech.stopped", protocol.SpeechStopped(item_id="u"))
    trace.outgoing("transcript.user.done", protocol.UserTranscriptDone(item_id="u", transcript=""))
    trace.outgoing("response.done", protocol.ResponseDone(response_id="r1", status="completed"))
    trace.outgoing("tool.started", protocol.ToolCallStarted(call_id="c", name="t", arguments=""))
    trace.outgoing(
        "tool.finished",
        protocol.ToolCallFinished(call_id="c", name="t", outcome="ok", summary=""),
    )
    trace.outgoing("audio.start", protocol.AudioStart(item_id="a", response_id="r2"))
    trace.outgoing("response.done", protocol.ResponseDone(response_id="r2", status="completed"))
    trace.usage("r2", {"input_tokens": 10, "output_tokens": 5})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--n", type=int, default=20_000)
    args = parser.parse_args()
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Dropping(), max_queue_size=1 << 16))
    trace = CallTrace(provider.get_tracer("bench"), FACTS)
    delta = protocol.AssistantTranscriptDelta(item_id="a", response_id="r", delta="x")
    audio_start = protocol.AudioStart(item_id="a", response_id="r")
    record = logging.LogRecord("assistant.x", logging.INFO, "", 0, "m", (), None)
    log_filter = LogContextFilter()
    rows = [
        (
            "message, untraced type",
            per_call(lambda: trace.outgoing(delta.type, delta), args.n, args.rounds),
        ),
        (
            "message, traced type",
            per_call(lambda: trace.outgoing(audio_start.type, audio_start), args.n, args.rounds),
        ),
        (
            "turn (7 messages, 2 spans)",
            per_call(lambda: spoken_turn(trace), args.n // 10, args.rounds),
        ),
        ("log record, no span", per_call(lambda: log_filter.filter(record), args.n, args.rounds)),
    ]
    trace.attach()
    rows.append(
        ("log record, in a span", per_call(lambda: log_filter.filter(record), args.n, args.rounds))
    )
    for name, seconds in rows:
        print(f"{name:32s} {seconds * 1e6:8.2f} µs")
    provider.shutdown()


if __name__ == "__main__":
    main()
