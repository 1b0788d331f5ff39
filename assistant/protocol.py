"""The browser <-> server message schema: an allowlist, close codes, parse and encode.

Audio travels as binary websocket frames both ways (PCM16 little-endian, mono, 24 kHz).
Everything else is a JSON text frame with a ``type`` field. This module is pure: no Django,
no Channels, no SDK. See docs/protocol.md for the prose version.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Any

SAMPLE_RATE = 24_000
BYTES_PER_SAMPLE = 2
BYTES_PER_SECOND = SAMPLE_RATE * BYTES_PER_SAMPLE
MAX_TEXT_MESSAGE_CHARS = 2_000
# Browser messages are flat objects; anything nested deeper is refused before decoding.
MAX_JSON_DEPTH = 32


class CloseCode(IntEnum):
    """Websocket close codes the server uses; 4000-4999 is the application range."""

    NORMAL = 1000
    MESSAGE_TOO_BIG = 1009
    SERVER_DRAINING = 4001  # retryable: this worker is shutting down, reconnect elsewhere
    UNAUTHENTICATED = 4401
    FORBIDDEN = 4403
    IDLE_TIMEOUT = 4408
    CLIENT_TOO_SLOW = 4413  # the browser fell too far behind on the assistant's audio
    SESSION_REPLACED = 4409
    TERMINATED = 4410  # ended by an admin, by logout or by the maximum session duration
    TOO_MANY_SESSIONS = 4429
    PROTOCOL_VIOLATION = 4400
    UPSTREAM_UNAVAILABLE = 4502
    SERVER_BUSY = 4503  # retryable: this worker is at capacity


#: Close codes after which the browser reconnects by itself, with backoff.
RETRYABLE_CLOSE_CODES = frozenset({CloseCode.SERVER_DRAINING, CloseCode.SERVER_BUSY})


class State(StrEnum):
    """The session states the talk page shows."""

    IDLE = "idle"
    CONNECTING = "connecting"
    READY = "ready"
    LISTENING = "listening"
    PROCESSING = "processing"
    ASSISTANT_SPEAKING = "assistant_speaking"
    STOPPED = "stopped"
    ERROR = "error"


class ErrorCode(StrEnum):
    """Stable error codes sent to the browser; the message for each is fixed text."""

    BAD_JSON = "bad_json"
    BAD_MESSAGE = "bad_message"
    UNKNOWN_TYPE = "unknown_type"
    MESSAGE_TOO_LARGE = "message_too_large"
    BAD_AUDIO = "bad_audio"
    RATE_LIMITED = "rate_limited"
    AUDIO_TOO_FAST = "audio_too_fast"
    NOT_READY = "not_ready"
    PROFILE_FORBIDDEN = "profile_forbidden"
    PROFILE_UNAVAILABLE = "profile_unavailable"
    UPSTREAM_UNAVAILABLE = "upstream_unavailable"
    UPSTREAM_AUTH_FAILED = "upstream_auth_failed"
    UPSTREAM_LOST = "upstream_lost"
    UPSTREAM_ERROR = "upstream_error"
    TOO_MANY_SESSIONS = "too_many_sessions"
    SESSION_REPLACED = "session_replaced"
    TERMINATED = "terminated"
    IDLE_TIMEOUT = "idle_timeout"
    SESSION_EXPIRED = "session_expired"
    SERVER_BUSY = "server_busy"
    SERVER_DRAINING = "server_draining"
    CLIENT_TOO_SLOW = "client_too_slow"
    INTERNAL = "internal_error"


ERROR_MESSAGES: dict[ErrorCode, str] = {
    ErrorCode.BAD_JSON: "The message was not valid JSON.",
    ErrorCode.BAD_MESSAGE: "The message is missing a field or has a field of the wrong type.",
    ErrorCode.UNKNOWN_TYPE: "Unknown message type.",
    ErrorCode.MESSAGE_TOO_LARGE: "The message is too large.",
    ErrorCode.BAD_AUDIO: "Audio must be 16-bit PCM: an even, non-zero number of bytes.",
    ErrorCode.RATE_LIMITED: "Too many messages; slow down.",
    ErrorCode.AUDIO_TOO_FAST: "Audio is arriving faster than real time; some was dropped.",
    ErrorCode.NOT_READY: "The assistant is not connected yet.",
    ErrorCode.PROFILE_FORBIDDEN: "That assistant profile is not available to you.",
    ErrorCode.PROFILE_UNAVAILABLE: "No enabled assistant profile is configured for you.",
    ErrorCode.UPSTREAM_UNAVAILABLE: "The voice service is unavailable. Try again in a moment.",
    ErrorCode.UPSTREAM_AUTH_FAILED: (
        "The assistant could not sign in to the voice service. An administrator must check "
        "its credentials (the server log says what to check)."
    ),
    ErrorCode.UPSTREAM_LOST: "The connection to the voice service was lost.",
    ErrorCode.UPSTREAM_ERROR: "The voice service reported an error.",
    ErrorCode.TOO_MANY_SESSIONS: "You already have a live session open elsewhere.",
    ErrorCode.SESSION_REPLACED: "This session was replaced by a newer one in another tab.",
    ErrorCode.TERMINATED: "The session was ended.",
    ErrorCode.IDLE_TIMEOUT: "The session was idle for too long.",
    ErrorCode.SESSION_EXPIRED: "The session reached its maximum duration.",
    ErrorCode.SERVER_BUSY: "The server is busy. Reconnecting shortly.",
    ErrorCode.SERVER_DRAINING: "The server is restarting. Reconnecting.",
    ErrorCode.CLIENT_TOO_SLOW: "Your connection cannot keep up with the assistant's audio.",
    ErrorCode.INTERNAL: "Something went wrong on the server.",
}


class ClientError(Exception):
    """A problem with what the browser sent; reported as ``{"type": "error", "code": ...}``."""

    def __init__(self, code: ErrorCode) -> None:
        super().__init__(code.value)
        self.code = code


# ----------------------------------------------------------------------------
# Browser -> server
# ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ping:
    """Keep-alive probe; answered with ``pong``."""


@dataclass(frozen=True, slots=True)
class PlaybackInterrupted:
    """The player was cleared after barge-in; ``played_ms`` of ``item_id`` was heard."""

    item_id: str
    played_ms: int


@dataclass(frozen=True, slots=True)
class ResponseCancel:
    """The user asked the assistant to stop talking."""


@dataclass(frozen=True, slots=True)
class TextSend:
    """A typed user message, answered like a spoken one."""

    text: str


@dataclass(frozen=True, slots=True)
class AudioAck:
    """How many bytes of assistant audio the browser has received on this socket, in all."""

    received: int


@dataclass(frozen=True, slots=True)
class SessionStop:
    """The user pressed Stop; the server closes the session cleanly."""


BrowserMessage = Ping | PlaybackInterrupted | ResponseCancel | TextSend | AudioAck | SessionStop

ALLOWED_BROWSER_TYPES = frozenset(
    {"ping", "playback.interrupted", "response.cancel", "text.send", "audio.ack", "session.stop"}
)
# Largest exact integer a browser's JSON numbers carry.
MAX_SAFE_INTEGER = 2**53 - 1


def _require_str(data: dict[str, Any], key: str, *, max_len: int) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip() or len(value) > max_len:
        raise ClientError(ErrorCode.BAD_MESSAGE)
    return value


def _require_int(data: dict[str, Any], key: str, *, low: int, high: int) -> int:
    value = data.get(key)
    # bool is an int subclass; a JSON true is not a number of milliseconds.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ClientError(ErrorCode.BAD_MESSAGE)
    if isinstance(value, float) and not math.isfinite(value):
        raise ClientError(ErrorCode.BAD_MESSAGE)
    number = int(value)
    if not low <= number <= high:
        raise ClientError(ErrorCode.BAD_MESSAGE)
    return number


def _too_deep(text: str) -> bool:
    """True when arrays/objects nest deeper than any browser message can.

    Checked before ``json.loads``: the decoder's own limit depends on how deep the caller's
    stack already is, so the same frame could be refused in one place and accepted in another.
    """
    if text.count("[") + text.count("{") <= MAX_JSON_DEPTH:
        return False  # the common case: no scan needed
    depth = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return True
        elif char in "]}":
            depth -= 1
    return False


def parse_browser_message(text: str, *, max_chars: int) -> BrowserMessage:
    """Parse and validate one JSON text frame from the browser.

    Args:
        text: the raw frame.
        max_chars: the largest frame accepted.

    Returns:
        The typed message.

    Raises:
        ClientError: the frame is too large, not JSON, not an object, of an unknown type, or
            missing a field.
    """
    if len(text) > max_chars:
        raise ClientError(ErrorCode.MESSAGE_TOO_LARGE)
    if _too_deep(text):
        raise ClientError(ErrorCode.BAD_MESSAGE)
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ClientError(ErrorCode.BAD_JSON) from exc
    if not isinstance(data, dict):
        raise ClientError(ErrorCode.BAD_MESSAGE)
    kind = data.get("type")
    if not isinstance(kind, str):
        raise ClientError(ErrorCode.BAD_MESSAGE)
    if kind not in ALLOWED_BROWSER_TYPES:
        raise ClientError(ErrorCode.UNKNOWN_TYPE)
    if kind == "ping":
        return Ping()
    if kind == "playback.interrupted":
        return PlaybackInterrupted(
            item_id=_require_str(data, "item_id", max_len=128),
            played_ms=_require_int(data, "played_ms", low=0, high=24 * 3600 * 1000),
        )
    if kind == "response.cancel":
        return ResponseCancel()
    if kind == "text.send":
        return TextSend(text=_require_str(data, "text", max_len=MAX_TEXT_MESSAGE_CHARS).strip())
    if kind == "audio.ack":
        return AudioAck(received=_require_int(data, "bytes", low=0, high=MAX_SAFE_INTEGER))
    return SessionStop()


def validate_audio_frame(data: bytes, *, max_bytes: int) -> None:
    """Check one binary frame of browser audio.

    Raises:
        ClientError: the frame is empty, has an odd length or is too large.
    """
    if len(data) > max_bytes:
        raise ClientError(ErrorCode.MESSAGE_TOO_LARGE)
    if not data or len(data) % BYTES_PER_SAMPLE:
        raise ClientError(ErrorCode.BAD_AUDIO)


# ----------------------------------------------------------------------------
# Server -> browser
# ----------------------------------------------------------------------------


def encode(kind: str, **fields: Any) -> str:
    """Encode one server -> browser control message as a JSON text frame."""
    return json.dumps({"type": kind, **fields}, separators=(",", ":"))


def encode_state(state: State) -> str:
    """Encode a state change."""
    return encode("state", state=state.value)


def encode_error(code: ErrorCode) -> str:
    """Encode an error with its fixed, human-readable message (never exception text)."""
    return encode("error", code=code.value, message=ERROR_MESSAGES[code])
