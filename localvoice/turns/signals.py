"""What a session's input audio reports, and the interface of that input.

``audio_input.AudioInput`` (VAD, STT) and ``echo_input.EchoInput`` (``--echo``) implement
:class:`SessionInput`; the session reacts to the signals they return.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from localvoice.protocol.turn_detection import TurnDetection


@dataclass(slots=True)
class SpeechStarted:
    """VAD opened a turn."""

    item_id: str
    audio_start_ms: int


@dataclass(slots=True)
class SpeechStopped:
    """VAD closed a turn (after the silence hang-over)."""

    item_id: str
    audio_end_ms: int


@dataclass(slots=True)
class Committed:
    """Audio committed as a user item; ``transcript`` resolves to its text."""

    item_id: str
    audio_ms: int
    transcript: asyncio.Future[str]
    by_vad: bool
    committed_at: float = field(default_factory=time.perf_counter)


@dataclass(slots=True)
class SilenceStarted:
    """The VAD dropped mid-turn; ``transcript`` is the speculative transcription so far."""

    item_id: str
    transcript: asyncio.Future[str]


@dataclass(slots=True)
class SpeechResumed:
    """Speech came back before the hang-over ended: speculation on this turn is stale."""

    item_id: str


@dataclass(slots=True)
class Echoed:
    """The appended audio, to be sent straight back as an audio delta (``--echo``)."""

    response_id: str
    item_id: str
    audio: str


Signal = SpeechStarted | SpeechStopped | Committed | SilenceStarted | SpeechResumed | Echoed


class SessionInput(Protocol):
    """The input audio buffer of one session."""

    async def append(self, audio: str) -> list[Signal]:
        """Add base64 PCM16 from ``input_audio_buffer.append``; returns what it caused.

        Raises:
            ProtocolError: the audio is not base64.
        """
        ...

    def commit(self) -> Committed | None:
        """Commit the buffer by hand; ``None`` when it holds no audio."""
        ...

    def clear(self) -> None:
        """Drop buffered audio and any turn in progress."""
        ...

    def configure(self, rate: int, turn: TurnDetection | None, session: dict[str, Any]) -> None:
        """Follow the session: input rate, turn detection, echo cancellation, noise reduction."""
        ...

    def played(self, pcm: bytes, rate: int) -> int:
        """Output audio went out (PCM16 at ``rate``); returns where it plays on the input clock."""
        ...

    def playback_cut(self, since: int) -> None:
        """A response was cancelled: the client drops its audio not yet played.

        ``since`` is where that response's audio started (``played``'s first answer): a reply
        queued behind one still playing takes nothing of the one before it.
        """
        ...

    def close(self) -> None:
        """Free the session's stages (its VAD stream, the echo canceller)."""
        ...
