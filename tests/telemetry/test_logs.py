"""Log records carry the call's context; the JSON-lines format writes one object per line."""

from __future__ import annotations

import asyncio
import contextvars
import io
import json
import logging
from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from assistant.calls.tracing import user_ref
from assistant.telemetry.logs import (
    JsonLinesFormatter,
    LogContextFilter,
    log_context_bind,
    user_pseudonym,
)


@pytest.fixture
def json_log() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLinesFormatter())
    handler.addFilter(LogContextFilter())
    logger = logging.getLogger("tests.telemetry.json")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    text = stream.getvalue()
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def test_a_record_is_one_json_line_with_the_standard_fields(json_log) -> None:
    logger, stream = json_log
    logger.warning("forged\n2026 CRITICAL x %s", "value\u2028", extra={"code": "bad_json"})
    [record] = lines(stream)
    assert set(record) == {"time", "level", "logger", "message", "code"}
    assert record["level"] == "WARNING"
    assert record["logger"] == "tests.telemetry.json"
    assert record["message"] == "forged\n2026 CRITICAL x value\u2028"
    assert record["code"] == "bad_json"
    assert str(record["time"]).endswith("+00:00")
    assert "\u2028" not in stream.getvalue()  # escaped: a viewer cannot break the line there


def test_an_exception_is_text_inside_the_line(json_log) -> None:
    logger, stream = json_log
    try:
        raise ValueError("bad\nthing")
    except ValueError:
        logger.exception("failed")
    [record] = lines(stream)
    assert "ValueError: bad\nthing" in str(record["exception"])


def test_the_call_context_and_the_current_span_are_on_each_record(json_log) -> None:
    logger, stream = json_log
    provider = TracerProvider()
    tracer = provider.get_tracer("test")

    async def call() -> None:
        log_context_bind("5b0c7a52-aaaa", "00aa11bb22cc33dd")
        with tracer.start_as_current_span("session") as span:
            # A task the call creates afterwards inherits both.
            await asyncio.create_task(asyncio.to_thread(logger.info, "in a thread"))
            await asyncio.create_task(log_in_task())
            context = span.get_span_context()
            expected.update(
                trace_id=trace.format_trace_id(context.trace_id),
                span_id=trace.format_span_id(context.span_id),
            )

    async def log_in_task() -> None:
        logger.info("in a task")

    expected: dict[str, str] = {}
    contextvars.copy_context().run(asyncio.run, call())
    logger.info("outside")
    first, second, outside = lines(stream)
    for record in (second,):
        assert record["session_id"] == "5b0c7a52-aaaa"
        assert record["user"] == "00aa11bb22cc33dd"
        assert record["trace_id"] == expected["trace_id"]
        assert record["span_id"] == expected["span_id"]
    assert first["session_id"] == "5b0c7a52-aaaa"
    assert "session_id" not in outside
    assert "trace_id" not in outside
    provider.shutdown()


def test_the_user_pseudonym_is_keyed_stable_and_not_the_id(settings) -> None:
    assert user_pseudonym(42, b"k1") == user_pseudonym(42, b"k1")
    assert user_pseudonym(42, b"k1") != user_pseudonym(42, b"k2")
    assert user_pseudonym(42, b"k1") != user_pseudonym(43, b"k1")
    assert len(user_pseudonym(42, b"k1")) == 16
    settings.SECRET_KEY = "one-secret-key-for-this-test-0123456789"
    first = user_ref(42)
    assert first == user_ref(42)
    assert "42" not in first
    settings.SECRET_KEY = "another-secret-key-for-this-test-987654"
    assert user_ref(42) != first
