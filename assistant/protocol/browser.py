"""Browser -> server: the messages a page may send, parsed against an allowlist.

Audio travels as binary frames (PCM16 little-endian, mono, 24 kHz); everything else is a JSON
text frame with a ``type`` field, parsed here into dataclasses. Pure: no Django, no SDK.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, ClassVar

from assistant.codes import ClientError, ErrorCode

#: Where the pages open their websockets (assistant/routing.py serves them there); a monitor's
#: path goes on with the session's id and a slash.
VOICE_PATH = "/ws/voice/"
MONITOR_PATH = "/ws/monitor/"

SAMPLE_RATE = 24_000
BYTES_PER_SAMPLE = 2
BYTES_PER_SECOND = SAMPLE_RATE * BYTES_PER_SAMPLE
MAX_TEXT_MESSAGE_CHARS = 2_000
# Browser messages are flat objects; anything nested deeper is refused before decoding.
MAX_JSON_DEPTH = 32


@dataclass(frozen=True, slots=True)
class Ping:
    """Keep-alive probe; answered with ``pong``."""

    type: ClassVar[str] = "ping"


@dataclass(frozen=True, slots=True)
class PlaybackInterrupted:
    """The player was cleared after barge-in; ``played_ms`` of ``item_id`` was heard."""

    type: ClassVar[str] = "playback.interrupted"

    item_id: str
    played_ms: int


@dataclass(frozen=True, slots=True)
class PlaybackStarted:
    """The player began sounding ``item_id`` (after ``audio.start``): a turn-timing measurement.

    Only the turn's timings use it; an unknown or repeated item changes nothing.
    """

    type: ClassVar[str] = "playback.started"

    item_id: str


@dataclass(frozen=True, slots=True)
class ResponseCancel:
    """The user asked the assistant to stop talking."""

    type: ClassVar[str] = "response.cancel"


@dataclass(frozen=True, slots=True)
class TextSend:
    """A typed user message, answered like a spoken one."""

    type: ClassVar[str] = "text.send"

    text: str


@dataclass(frozen=True, slots=True)
class AudioAck:
    """How many bytes of assistant audio the browser has received on this socket, in all.

    On the wire the count is the ``bytes`` field.
    """

    type: ClassVar[str] = "audio.ack"

    received: int


@dataclass(frozen=True, slots=True)
class SessionStop:
    """The user pressed Stop; the server closes the session cleanly."""

    type: ClassVar[str] = "session.stop"


@dataclass(frozen=True, slots=True)
class InputPress:
    """Push-to-talk pressed: the user starts a turn (stops the assistant if it is speaking)."""

    type: ClassVar[str] = "input.press"


@dataclass(frozen=True, slots=True)
class InputRelease:
    """Push-to-talk released: the user's turn is over; the assistant answers it."""

    type: ClassVar[str] = "input.release"


#: The turn-taking modes of ``turn_mode.set`` and ``turn_mode``.
TURN_MODES = ("voice_activity", "push_to_talk")


@dataclass(frozen=True, slots=True)
class TurnModeSet:
    """The user switched turn-taking mode (where the profile allows it)."""

    type: ClassVar[str] = "turn_mode.set"

    mode: str


@dataclass(frozen=True, slots=True)
class ToolApproval:
    """The user's answer to a ``tool.approval.request``: run the call, or not."""

    type: ClassVar[str] = "tool.approval"

    call_id: str
    approved: bool


BrowserMessage = (
    Ping
    | PlaybackInterrupted
    | PlaybackStarted
    | ResponseCancel
    | TextSend
    | AudioAck
    | SessionStop
    | InputPress
    | InputRelease
    | TurnModeSet
    | ToolApproval
)

ALLOWED_BROWSER_TYPES = frozenset(
    kind.type
    for kind in (
        Ping,
        PlaybackInterrupted,
        PlaybackStarted,
        ResponseCancel,
        TextSend,
        AudioAck,
        SessionStop,
        InputPress,
        InputRelease,
        TurnModeSet,
        ToolApproval,
    )
)
MAX_CALL_ID_CHARS = 128
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
    if kind == Ping.type:
        return Ping()
    if kind == PlaybackInterrupted.type:
        return PlaybackInterrupted(
            item_id=_require_str(data, "item_id", max_len=128),
            played_ms=_require_int(data, "played_ms", low=0, high=24 * 3600 * 1000),
        )
    if kind == PlaybackStarted.type:
        return PlaybackStarted(item_id=_require_str(data, "item_id", max_len=128))
    if kind == ResponseCancel.type:
        return ResponseCancel()
    if kind == TextSend.type:
        return TextSend(text=_require_str(data, "text", max_len=MAX_TEXT_MESSAGE_CHARS).strip())
    if kind == AudioAck.type:
        return AudioAck(received=_require_int(data, "bytes", low=0, high=MAX_SAFE_INTEGER))
    if kind == InputPress.type:
        return InputPress()
    if kind == InputRelease.type:
        return InputRelease()
    if kind == TurnModeSet.type:
        mode = _require_str(data, "mode", max_len=32)
        if mode not in TURN_MODES:
            raise ClientError(ErrorCode.BAD_MESSAGE)
        return TurnModeSet(mode=mode)
    if kind == ToolApproval.type:
        approved = data.get("approved")
        if not isinstance(approved, bool):
            raise ClientError(ErrorCode.BAD_MESSAGE)
        call_id = _require_str(data, "call_id", max_len=MAX_CALL_ID_CHARS)
        return ToolApproval(call_id=call_id, approved=approved)
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
