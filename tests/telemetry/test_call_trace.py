"""A call's spans from its control events: the tree, the GenAI attributes, the turn figures.

The SDK is real (its in-memory exporter stands in for the collector); the real-path test over
OTLP/HTTP is tests/telemetry/test_otlp_path.py.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from assistant import protocol
from assistant.codes import ErrorCode
from assistant.telemetry.attributes import CallFacts
from assistant.telemetry.call_trace import CallTrace, call_trace_start

FACTS = CallFacts(
    session_id="5b0c7a52-0000-4000-8000-000000000001",
    model="gpt-realtime",
    profile_id=7,
    profile_name="Reception",
    worker="web-1",
    user_ref="0123456789abcdef",
)


@pytest.fixture
def spans() -> Iterator[tuple[CallTrace, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace = call_trace_start(provider.get_tracer("test"), FACTS)
    assert trace is not None
    yield trace, exporter
    provider.shutdown()


def by_name(exporter: InMemorySpanExporter) -> dict[str, list[ReadableSpan]]:
    found: dict[str, list[ReadableSpan]] = {}
    for span in exporter.get_finished_spans():
        found.setdefault(span.name, []).append(span)
    return found


def spoken_turn_with_a_tool(trace: CallTrace) -> None:
    """What the relay sends the browser for "what time is it?" answered through the clock."""
    trace.outgoing("speech.stopped", protocol.SpeechStopped(item_id="u1"))
    trace.outgoing(
        "transcript.user.done", protocol.UserTranscriptDone(item_id="u1", transcript="time?")
    )
    trace.outgoing("response.done", protocol.ResponseDone(response_id="r1", status="completed"))
    trace.usage("r1", {"input_tokens": 120, "output_tokens": 9})
    trace.outgoing(
        "tool.started",
        protocol.ToolCallStarted(call_id="c1", name="get_current_time", arguments=""),
    )
    time.sleep(0.002)
    trace.outgoing(
        "tool.finished",
        protocol.ToolCallFinished(call_id="c1", name="get_current_time", outcome="ok", summary=""),
    )
    trace.outgoing("audio.start", protocol.AudioStart(item_id="a2", response_id="r2"))
    trace.outgoing(
        "transcript.assistant.done",
        protocol.AssistantTranscriptDone(item_id="a2", response_id="r2", transcript="It's 4."),
    )
    trace.outgoing("response.done", protocol.ResponseDone(response_id="r2", status="completed"))
    trace.usage("r2", {"input_tokens": 150, "output_tokens": 12})


def test_the_session_span_has_the_genai_attributes_and_ends_with_the_call(spans) -> None:
    trace, exporter = spans
    trace.connection("connect", time.monotonic() - 0.05, "sess_up_1", None)
    trace.end("stopped", error=None)
    found = by_name(exporter)
    session = found["realtime gpt-realtime"][0]
    assert session.attributes is not None
    assert dict(session.attributes) == {
        "gen_ai.operation.name": "realtime",
        "gen_ai.provider.name": "azure.ai.voicelive",
        "gen_ai.request.model": "gpt-realtime",
        "gen_ai.conversation.id": FACTS.session_id,
        "voice.profile": "Reception",
        "voice.profile.id": 7,
        "voice.worker": "web-1",
        "enduser.pseudo.id": "0123456789abcdef",
        "voice.end_reason": "stopped",
        "voice.turns": 0,
    }
    assert session.status.status_code == StatusCode.UNSET
    connect = found["voice.upstream.connect"][0]
    assert connect.parent is not None
    assert connect.parent.span_id == session.context.span_id
    assert connect.attributes is not None
    assert connect.attributes["voice.upstream.session_id"] == "sess_up_1"
    assert connect.end_time is not None
    assert connect.start_time is not None
    assert 40e6 <= connect.end_time - connect.start_time < 5e9  # it began 50 ms before


def test_a_spoken_turn_with_a_tool_call_makes_a_turn_span_with_the_tool_under_it(spans) -> None:
    trace, exporter = spans
    spoken_turn_with_a_tool(trace)
    assert trace.add_attributes("r2", {"voice.turn_latency_ms": 512, "voice.eot_ms": 180})
    trace.end("goodbye", error=None)
    found = by_name(exporter)
    session = found["realtime gpt-realtime"][0]
    [turn] = found["chat gpt-realtime"]
    [tool] = found["execute_tool get_current_time"]
    assert turn.parent is not None
    assert turn.parent.span_id == session.context.span_id
    assert tool.parent is not None
    assert tool.parent.span_id == turn.context.span_id
    assert turn.context.trace_id == tool.context.trace_id == session.context.trace_id
    attributes = dict(turn.attributes or {})
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.usage.input_tokens"] == 270
    assert attributes["gen_ai.usage.output_tokens"] == 21
    assert attributes["gen_ai.response.id"] == "r2"
    assert attributes["gen_ai.response.finish_reasons"] == ("completed", "completed")
    assert attributes["voice.turn.trigger"] == "speech"
    assert attributes["voice.responses"] == 2
    assert attributes["voice.tool_calls"] == 1
    assert attributes["voice.interrupted"] is False
    assert attributes["voice.turn_latency_ms"] == 512  # merged from the turn's timing record
    assert attributes["voice.eot_ms"] == 180
    assert [event.name for event in turn.events] == [
        "transcript.user.done",
        "response.done",
        "audio.start",
        "response.done",
    ]
    tool_attributes = dict(tool.attributes or {})
    assert tool_attributes == {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "get_current_time",
        "gen_ai.tool.call.id": "c1",
        "gen_ai.tool.type": "function",
        "voice.tool.outcome": "ok",
    }
    assert tool.start_time is not None
    assert tool.end_time is not None
    assert turn.start_time is not None
    assert turn.end_time is not None
    assert turn.start_time <= tool.start_time < tool.end_time <= turn.end_time
    assert session.attributes is not None
    assert session.attributes["voice.turns"] == 1


def test_an_interruption_is_known_when_the_user_speaks_again(spans) -> None:
    trace, exporter = spans
    trace.outgoing("speech.stopped", protocol.SpeechStopped(item_id="u1"))
    trace.outgoing("audio.start", protocol.AudioStart(item_id="a1", response_id="r1"))
    trace.outgoing("response.done", protocol.ResponseDone(response_id="r1", status="completed"))
    assert exporter.get_finished_spans() == ()  # the reply may still be cut off
    trace.interrupted("a1", 840)
    trace.outgoing("speech.stopped", protocol.SpeechStopped(item_id="u2"))
    [first] = by_name(exporter)["chat gpt-realtime"]
    assert first.attributes is not None
    assert first.attributes["voice.interrupted"] is True
    assert first.attributes["voice.heard_ms"] == 840
    assert first.attributes["voice.turn.index"] == 1
    trace.typed()
    trace.end("stopped", error=None)
    turns = by_name(exporter)["chat gpt-realtime"]
    # The second turn was never answered; the typed message opened none of its own.
    assert [dict(t.attributes or {})["voice.turn.index"] for t in turns] == [1, 2]
    assert dict(turns[1].attributes or {})["voice.turn.trigger"] == "text"


def test_a_failed_tool_and_a_failed_call_are_errors(spans) -> None:
    trace, exporter = spans
    trace.typed()
    trace.outgoing(
        "tool.started", protocol.ToolCallStarted(call_id="c9", name="check_status", arguments="")
    )
    trace.outgoing(
        "tool.finished",
        protocol.ToolCallFinished(call_id="c9", name="check_status", outcome="timeout", summary=""),
    )
    trace.outgoing("error", protocol.error(ErrorCode.UPSTREAM_LOST))
    trace.end("upstream_lost", error="upstream_lost")
    found = by_name(exporter)
    [tool] = found["execute_tool check_status"]
    assert tool.status.status_code == StatusCode.ERROR
    assert dict(tool.attributes or {})["error.type"] == "timeout"
    session = found["realtime gpt-realtime"][0]
    assert session.status.status_code == StatusCode.ERROR
    assert dict(session.attributes or {})["error.type"] == "upstream_lost"
    assert [(e.name, dict(e.attributes or {})) for e in session.events] == [
        ("error", {"voice.code": "upstream_lost"})
    ]


def test_nothing_is_recorded_after_the_end_and_no_tracer_means_no_trace(spans) -> None:
    trace, exporter = spans
    trace.end("stopped", error=None)
    trace.outgoing("speech.stopped", protocol.SpeechStopped(item_id="u1"))
    trace.connection("rollover", time.monotonic(), "x", None)
    trace.end("internal", error="internal")
    assert [span.name for span in exporter.get_finished_spans()] == ["realtime gpt-realtime"]
    assert call_trace_start(None, FACTS) is None


def test_a_failed_rollover_is_an_error_span_under_the_session(spans) -> None:
    trace, exporter = spans
    trace.connection("rollover", time.monotonic(), "", "upstream_unavailable")
    trace.end("upstream_lost", error="upstream_lost")
    [rollover] = by_name(exporter)["voice.upstream.rollover"]
    assert rollover.status.status_code == StatusCode.ERROR
    assert dict(rollover.attributes or {})["error.type"] == "upstream_unavailable"


def test_a_failure_in_tracing_stops_the_trace_not_the_call(spans, caplog) -> None:
    trace, exporter = spans
    trace.outgoing("tool.started", object())  # a message without its fields: a bug of ours
    assert trace.broken
    assert "tracing this call failed" in caplog.text
    trace.outgoing("speech.stopped", protocol.SpeechStopped(item_id="u1"))
    trace.end("stopped", error=None)
    assert exporter.get_finished_spans() == ()


def test_a_timing_record_goes_to_its_turn_and_a_late_one_is_refused(spans) -> None:
    trace, exporter = spans
    trace.outgoing("speech.stopped", protocol.SpeechStopped(item_id="u1"))
    # Before any event of its response: the open turn's.
    assert trace.add_attributes("r1", {"voice.eot_ms": 210})
    trace.outgoing("audio.start", protocol.AudioStart(item_id="a1", response_id="r1"))
    trace.outgoing("response.done", protocol.ResponseDone(response_id="r1", status="completed"))
    trace.outgoing("speech.stopped", protocol.SpeechStopped(item_id="u2"))
    assert not trace.add_attributes("r1", {"voice.heard_ms": 1})  # its turn is gone
    [first] = by_name(exporter)["chat gpt-realtime"]
    assert dict(first.attributes or {})["voice.eot_ms"] == 210
    assert dict(first.attributes or {})["voice.responses"] == 1
    trace.end("stopped", error=None)
    assert not trace.add_attributes("r2", {"voice.eot_ms": 1})
