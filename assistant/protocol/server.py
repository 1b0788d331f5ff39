"""Server -> browser: the control messages a page is sent.

Dataclasses encoded by :func:`encode`. Pure: no Django, no SDK; the codes they carry are in
``assistant/codes.py``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from typing import Any, ClassVar, TypedDict

from assistant.codes import ERROR_MESSAGES, ErrorCode, State


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
class PlaybackDuck(ServerMessage):
    """The user made a sound over the reply: lower its volume while the server decides."""

    type: ClassVar[str] = "playback.duck"
    item_id: str


@dataclass(frozen=True, slots=True)
class PlaybackHold(ServerMessage):
    """Still deciding and the sound goes on: pause the reply where it is (nothing dropped)."""

    type: ClassVar[str] = "playback.hold"
    item_id: str


@dataclass(frozen=True, slots=True)
class PlaybackResume(ServerMessage):
    """It was a backchannel ("mhm", a cough): the reply goes on at full volume."""

    type: ClassVar[str] = "playback.resume"
    item_id: str


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
