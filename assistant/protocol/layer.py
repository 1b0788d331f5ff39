"""The channel layer's messages: worker <-> worker and admin -> worker.

Small control messages only, as TypedDicts built by their constructors. Pure: no Django, no
Channels.
"""

from __future__ import annotations

from typing import Final, TypedDict

from assistant.codes import Ending, MonitorEnding

SESSION_END: Final = "session.end"
PROFILE_CHANGED: Final = "profile.changed"
MONITOR_ATTACH: Final = "monitor.attach"
MONITOR_DETACH: Final = "monitor.detach"
MONITOR_TEXT: Final = "monitor.text"
MONITOR_AUDIO: Final = "monitor.audio"
MONITOR_ENDED: Final = "monitor.ended"


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


def session_end(reason: Ending) -> SessionEnd:
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


def monitor_ended(reason: MonitorEnding) -> MonitorEndedNotice:
    """A :class:`MonitorEndedNotice`."""
    return {"type": MONITOR_ENDED, "reason": str(reason)}
