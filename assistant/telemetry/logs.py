"""Log records that say which call they belong to, and an opt-in JSON-lines format for ops.

:class:`LogContextFilter` stamps every record with the call's session id, the user's pseudonym
and the current span's trace and span ids (empty outside a call, or with tracing off). A call
binds the first two once (:func:`log_context_bind`); they live in context variables, so every
task the call creates afterwards inherits them, as it inherits the current span.

:class:`JsonLinesFormatter` writes one JSON object per line (``VOICE_LOG_FORMAT=json``): what a
log pipeline (Loki, Azure Monitor, CloudWatch, journald + a shipper) parses without a grok rule.
The standard library's ``json`` is enough for it: no dependency.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
from contextvars import ContextVar
from typing import Any

from opentelemetry import trace

#: The live session a record was logged in ("" outside one).
SESSION_ID: ContextVar[str] = ContextVar("voice_session_id", default="")
#: The pseudonym of its user ("" outside a call).
USER_REF: ContextVar[str] = ContextVar("voice_user_ref", default="")

#: Hex digits of a pseudonym: 64 bits, unique enough to follow one user through the logs.
PSEUDONYM_HEX = 16

#: The record's own attributes, never copied into the JSON as extra fields.
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "session_id",
    "user_ref",
    "trace_id",
    "span_id",
}


def user_pseudonym(user_id: object, key: bytes) -> str:
    """A stable pseudonym of a user for logs and traces: a keyed HMAC of the id, never the name.

    Args:
        user_id: the user's primary key.
        key: a secret key (the caller derives it from ``SECRET_KEY``); without it, the
            pseudonym cannot be turned back into an id by trying every id.
    """
    digest = hmac.new(key, str(user_id).encode(), hashlib.sha256).hexdigest()
    return digest[:PSEUDONYM_HEX]


def log_context_bind(session_id: str, user_ref: str) -> None:
    """Mark everything the current task (and the tasks it creates) logs as this call's."""
    SESSION_ID.set(session_id)
    USER_REF.set(user_ref)


class LogContextFilter(logging.Filter):
    """Adds ``session_id``, ``user_ref``, ``trace_id`` and ``span_id`` to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Stamp the record (never drops it)."""
        record.session_id = SESSION_ID.get()
        record.user_ref = USER_REF.get()
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            record.trace_id = trace.format_trace_id(context.trace_id)
            record.span_id = trace.format_span_id(context.span_id)
        else:
            record.trace_id = record.span_id = ""
        return True


class JsonLinesFormatter(logging.Formatter):
    """One JSON object per record, on one line (newlines inside are escaped by JSON).

    Fields: ``time`` (UTC, ISO 8601, milliseconds), ``level``, ``logger``, ``message``, then
    ``session_id``, ``user``, ``trace_id``, ``span_id`` when known, ``exception`` (the
    traceback's text) when there is one, and whatever a call site passed in ``extra``.
    """

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        body: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field, key in (
            ("session_id", "session_id"),
            ("user_ref", "user"),
            ("trace_id", "trace_id"),
            ("span_id", "span_id"),
        ):
            value = getattr(record, field, "")
            if value:
                body[key] = value
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS and not key.startswith("_"):
                body[key] = value
        if record.exc_info:
            body["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            body["exception"] = record.exc_text
        if record.stack_info:
            body["stack"] = self.formatStack(record.stack_info)
        return json.dumps(body, ensure_ascii=True, default=str, separators=(",", ":"))
