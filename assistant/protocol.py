"""Every message schema: browser -> server, server -> browser, and the channel layer's.

Audio travels as binary websocket frames both ways (PCM16 little-endian, mono, 24 kHz).
Everything else is a JSON text frame with a ``type`` field: the browser's are parsed against an
allowlist into dataclasses, the server's are dataclasses encoded by :func:`encode`. Messages
between workers over the channel layer are the TypedDicts at the end, built by their
constructors. No other module spells a message type. Pure: no Django, no Channels, no SDK. The
codes these messages carry are in ``assistant/codes.py``; docs/protocol.md is the prose version.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Any, ClassVar, Final, TypedDict

from assistant.codes import ERROR_MESSAGES, ClientError, ErrorCode, State

SAMPLE_RATE = 24_000
BYTES_PER_SAMPLE = 2
BYTES_PER_SECOND = SAMPLE_RATE * BYTES_PER_SAMPLE
MAX_TEXT_MESSAGE_CHARS = 2_000
# Browser messages are flat objects; anything nested deeper is refused before decoding.
MAX_JSON_DEPTH = 32


# ----------------------------------------------------------------------------
# Browser -> server
# ----------------------------------------------------------------------------


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


# ----------------------------------------------------------------------------
# Server -> browser
# ----------------------------------------------------------------------------


class ProfileRef(TypedDict):
    """The profile a session uses, as the page shows it."""

    id: int
    name: str


@dataclass(frozen=True, slots=True)
class ServerMessage:
    """A control message to the browser; its fields are the JSON object's, after ``type``."""

    type: ClassVar[str]


@dataclass(frozen=True, slots=True)
class Pong(ServerMessage):
    """The answer to ``ping``."""

    type: ClassVar[str] = "pong"


@dataclass(frozen=True, slots=True)
class StateChanged(ServerMessage):
    """The session's state changed."""

    type: ClassVar[str] = "state"
    state: State


@dataclass(frozen=True, slots=True)
class Error(ServerMessage):
    """An error with its stable code; build it with :func:`error` (the text goes with the code)."""

    type: ClassVar[str] = "error"
    code: ErrorCode
    message: str


def error(code: ErrorCode) -> Error:
    """The error message for ``code``, with its fixed text (never exception text)."""
    return Error(code=code, message=ERROR_MESSAGES[code])


@dataclass(frozen=True, slots=True)
class QuotaError(Error):
    """``quota_exceeded``, with when the binding limit resets (ISO 8601, the site's zone)."""

    resets_at: str | None


@dataclass(frozen=True, slots=True)
class QuotaWarning(ServerMessage):
    """The user has used ``percent`` of a quota (``day``, ``month`` or ``cost``); sent once."""

    type: ClassVar[str] = "quota.warning"
    percent: int
    limit: str
    resets_at: str | None


@dataclass(frozen=True, slots=True)
class ConversationResumed(ServerMessage):
    """The session continues an earlier conversation: ``messages`` of it were carried over."""

    type: ClassVar[str] = "conversation.resumed"
    conversation_id: str
    messages: int


@dataclass(frozen=True, slots=True)
class SessionReady(ServerMessage):
    """The upstream is configured: the user can talk."""

    type: ClassVar[str] = "session.ready"
    session_id: str
    profile: ProfileRef


@dataclass(frozen=True, slots=True)
class ProfileUpdated(ServerMessage):
    """An admin changed the session's profile; it applies from the next turn."""

    type: ClassVar[str] = "profile.updated"
    profile: ProfileRef


@dataclass(frozen=True, slots=True)
class TurnMode(ServerMessage):
    """How the user's turns end (after ``session.ready``, a switch or a profile change)."""

    type: ClassVar[str] = "turn_mode"
    mode: str
    can_switch: bool


@dataclass(frozen=True, slots=True)
class PlaybackClear(ServerMessage):
    """Drop the assistant audio not played yet (barge-in, Stop, typing over it)."""

    type: ClassVar[str] = "playback.clear"


@dataclass(frozen=True, slots=True)
class SpeechStarted(ServerMessage):
    """The user started speaking."""

    type: ClassVar[str] = "speech.started"
    item_id: str | None


@dataclass(frozen=True, slots=True)
class SpeechStopped(ServerMessage):
    """The user stopped speaking; a reply is being prepared."""

    type: ClassVar[str] = "speech.stopped"
    item_id: str | None


@dataclass(frozen=True, slots=True)
class UserTranscriptDelta(ServerMessage):
    """Part of the transcript of what the user said."""

    type: ClassVar[str] = "transcript.user.delta"
    item_id: str | None
    delta: str | None


@dataclass(frozen=True, slots=True)
class UserTranscriptDone(ServerMessage):
    """The whole transcript of what the user said."""

    type: ClassVar[str] = "transcript.user.done"
    item_id: str | None
    transcript: str


@dataclass(frozen=True, slots=True)
class AssistantTranscriptDelta(ServerMessage):
    """Part of the text of the assistant's reply."""

    type: ClassVar[str] = "transcript.assistant.delta"
    item_id: str | None
    response_id: str | None
    delta: str | None


@dataclass(frozen=True, slots=True)
class AssistantTranscriptDone(ServerMessage):
    """The whole text of the assistant's reply."""

    type: ClassVar[str] = "transcript.assistant.done"
    item_id: str | None
    response_id: str | None
    transcript: str


@dataclass(frozen=True, slots=True)
class AudioStart(ServerMessage):
    """The binary frames that follow belong to this assistant item."""

    type: ClassVar[str] = "audio.start"
    item_id: str | None
    response_id: str | None


@dataclass(frozen=True, slots=True)
class AudioDone(ServerMessage):
    """The assistant item's audio is complete."""

    type: ClassVar[str] = "audio.done"
    item_id: str | None


@dataclass(frozen=True, slots=True)
class ResponseDone(ServerMessage):
    """A reply ended (``completed``, ``cancelled``, ...)."""

    type: ClassVar[str] = "response.done"
    response_id: str | None
    status: str


@dataclass(frozen=True, slots=True)
class MonitorAttached(ServerMessage):
    """To a monitor: the session it now follows."""

    type: ClassVar[str] = "monitor.attached"
    session_id: str
    username: str
    profile: str
    state: State


class MonitorEndReason(StrEnum):
    """Why a monitor stops following its session (``monitor.ended``)."""

    ENDED = "ended"  # the session ended
    NOT_FOUND = "not_found"  # no such live session
    UNREACHABLE = "unreachable"  # the registry could not record the monitor
    LOGOUT = "logout"  # the monitoring admin logged out
    FORBIDDEN = "forbidden"  # the admin lost staff status or the monitor permission


@dataclass(frozen=True, slots=True)
class MonitorEnded(ServerMessage):
    """To a monitor: it stops following (the session ended, or the monitor may not go on)."""

    type: ClassVar[str] = "monitor.ended"
    reason: str


@dataclass(frozen=True, slots=True)
class ProfileHandover(ServerMessage):
    """The assistant handed the conversation over to another profile (context kept)."""

    type: ClassVar[str] = "profile.handover"
    profile: ProfileRef


@dataclass(frozen=True, slots=True)
class ToolCallStarted(ServerMessage):
    """The assistant called a tool: its name and a short summary of the arguments."""

    type: ClassVar[str] = "tool.started"
    call_id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class ToolCallFinished(ServerMessage):
    """A tool call ended: ``outcome`` (``ok``, ``error``, ``timeout``, ``declined``, ...)."""

    type: ClassVar[str] = "tool.finished"
    call_id: str
    name: str
    outcome: str
    summary: str


@dataclass(frozen=True, slots=True)
class ToolApprovalRequest(ServerMessage):
    """The user must approve this call (``tool.approval``, or a spoken yes / no) in time."""

    type: ClassVar[str] = "tool.approval.request"
    call_id: str
    name: str
    arguments: str
    timeout_s: int


class SessionEndingReason(StrEnum):
    """Why the server is about to end a session the user did not stop (``session.ending``)."""

    GOODBYE = "goodbye"  # the assistant ended the conversation (its end_conversation tool)


@dataclass(frozen=True, slots=True)
class SessionEnding(ServerMessage):
    """The session ends now, cleanly, for ``reason``; a normal close (1000) follows."""

    type: ClassVar[str] = "session.ending"
    reason: str


def encode(message: ServerMessage) -> str:
    """Encode one server -> browser control message as a JSON text frame."""
    body: dict[str, Any] = {"type": message.type}
    for field in fields(message):
        body[field.name] = getattr(message, field.name)
    return json.dumps(body, separators=(",", ":"))


# ----------------------------------------------------------------------------
# Channel layer (worker <-> worker, admin -> worker): small control messages only
# ----------------------------------------------------------------------------

SESSION_END: Final = "session.end"
PROFILE_CHANGED: Final = "profile.changed"
MONITOR_ATTACH: Final = "monitor.attach"
MONITOR_DETACH: Final = "monitor.detach"
MONITOR_TEXT: Final = "monitor.text"
MONITOR_AUDIO: Final = "monitor.audio"
MONITOR_ENDED: Final = "monitor.ended"


class EndReason(StrEnum):
    """Why a live session is asked to end (``session.end``, and the registry row's end_reason)."""

    REPLACED = "replaced"  # the same user started a session elsewhere (takeover)
    TERMINATED = "terminated"  # an admin's Terminate
    LOGOUT = "logout"  # the user logged out
    GONE = "gone"  # the registry row is gone (a newer claim swept it as stale)


#: The first byte of a monitor's binary frame: whose audio follows.
USER_AUDIO = 0x01
ASSISTANT_AUDIO = 0x02


# Each travels as a plain dict (msgpack on Redis), built only by the constructors below.
class SessionEnd(TypedDict):
    """End a live session (``terminated``, ``replaced``, ``logout``): to its channel or user."""

    type: str
    reason: str


class ProfileChanged(TypedDict):
    """A profile was saved: to the group of the sessions using it."""

    type: str
    profile_id: int


class MonitorAttach(TypedDict):
    """A monitor asks a session to copy itself to ``reply_channel`` (with audio or not)."""

    type: str
    reply_channel: str
    audio: bool


class MonitorDetach(TypedDict):
    """A monitor left."""

    type: str
    reply_channel: str


class MonitorText(TypedDict):
    """A copy, for a monitor, of one JSON text frame the session sent its browser."""

    type: str
    text: str


class MonitorAudio(TypedDict):
    """A copy of one audio frame; ``side`` is :data:`USER_AUDIO` or :data:`ASSISTANT_AUDIO`."""

    type: str
    side: int
    pcm: bytes


class MonitorEndedNotice(TypedDict):
    """The followed session ended: to its monitors (whose browsers get :class:`MonitorEnded`)."""

    type: str
    reason: str


LayerMessage = (
    SessionEnd
    | ProfileChanged
    | MonitorAttach
    | MonitorDetach
    | MonitorText
    | MonitorAudio
    | MonitorEndedNotice
)


def session_end(reason: EndReason) -> SessionEnd:
    """A :class:`SessionEnd` (the reason as a plain string: it crosses the layer as msgpack)."""
    return {"type": SESSION_END, "reason": str(reason)}


def profile_changed(profile_id: int) -> ProfileChanged:
    """A :class:`ProfileChanged`."""
    return {"type": PROFILE_CHANGED, "profile_id": profile_id}


def monitor_attach(reply_channel: str, *, audio: bool) -> MonitorAttach:
    """A :class:`MonitorAttach`."""
    return {"type": MONITOR_ATTACH, "reply_channel": reply_channel, "audio": audio}


def monitor_detach(reply_channel: str) -> MonitorDetach:
    """A :class:`MonitorDetach`."""
    return {"type": MONITOR_DETACH, "reply_channel": reply_channel}


def monitor_text(text: str) -> MonitorText:
    """A :class:`MonitorText`."""
    return {"type": MONITOR_TEXT, "text": text}


def monitor_audio(side: int, pcm: bytes) -> MonitorAudio:
    """A :class:`MonitorAudio`."""
    return {"type": MONITOR_AUDIO, "side": side, "pcm": pcm}


def monitor_ended(reason: MonitorEndReason) -> MonitorEndedNotice:
    """A :class:`MonitorEndedNotice`."""
    return {"type": MONITOR_ENDED, "reason": str(reason)}
