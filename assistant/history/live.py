"""The history side of one live session: what the voice consumer's hooks tell its recorder.

The consumer calls these from its control path only (messages to the browser, typed text,
interruptions, ``response.done``, the end). The audio path pays nothing: the audio in and out
(and the typed text, as quotas count it) is read from the session's own counters when a
response's usage is recorded, on the heartbeat, on every drain of the history writer and at
the end, never per frame.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any, Protocol

from django.conf import settings

from assistant.history.recorder import ConversationRecorder, ConversationStart, TurnTimes
from assistant.history.resume import Resume
from assistant.history.usage import AUDIO_BYTES_PER_SECOND, Counters
from assistant.history.writer import history
from assistant.live.registry import worker_name
from assistant.protocol import ServerMessage
from assistant.voicelive.config import SessionConfig
from assistant.voicelive.turn_timing import TurnTiming

#: The browser messages the recorder learns turns and timings from; the rest are skipped.
RECORDED_TYPES = frozenset(
    {
        "speech.started",
        "speech.stopped",
        "transcript.user.done",
        "audio.start",
        "transcript.assistant.done",
        "tool.started",
        "tool.finished",
        "error",
        "quota.warning",
    }
)


class Seedable(Protocol):
    """A session that can start with earlier conversation items (``VoiceLiveSession``)."""

    def carry_over(self, items: list[tuple[str, str]]) -> None:
        """Seed the upstream with ``(role, text)`` items when it connects."""


class AudioCounters(Counters, Protocol):
    """What a live Voice Live session counts anyway (``VoiceLiveSession``)."""

    @property
    def upstream_session_id(self) -> str:
        """The current upstream connection's session id (a rollover changes it)."""


class SessionHistory:
    """One session's recorder, fed from the consumer's control path.

    Args:
        recorder: the session's recorder (already joined to the worker's writer).
        voice: the session's counters of audio and its upstream session id.
    """

    def __init__(self, recorder: ConversationRecorder, voice: AudioCounters) -> None:
        self.recorder = recorder
        self._voice = voice
        self._in_seen = 0
        self._out_seen = 0
        self._typed_seen = 0.0
        self._upstream_id = ""
        # (monotonic time, audio out bytes) at the running reply's first audio.
        self._reply_audio_start: tuple[float, int] | None = None

    @classmethod
    def begin(
        cls,
        *,
        session_id: uuid.UUID,
        user_id: int,
        config: SessionConfig,
        voice: AudioCounters,
        resumed_from: uuid.UUID | None = None,
    ) -> SessionHistory:
        """Start recording a session: its conversation is written from the next flush."""
        start = ConversationStart(
            user_id=user_id,
            profile_id=config.profile_id,
            profile_name=config.profile_name,
            model=config.model,
            started_at=time.time(),
            store_text=config.keep_transcripts,
            resumed_from=resumed_from,
            profile_version=config.version_number,
            is_draft=config.is_draft,
            worker=worker_name()[:120],
        )
        recorder = ConversationRecorder(session_id, start)
        session = cls(recorder, voice)
        # Each drain of the writer carries the usage up to then: a crash loses one flush.
        recorder.before_drain = session.sync
        history.join(recorder)
        return session

    def outgoing(self, message: ServerMessage) -> None:
        """A control message went to the browser."""
        kind = message.type
        if kind not in RECORDED_TYPES:
            return
        if kind == "audio.start":
            self._reply_audio_start = (time.monotonic(), self._voice.audio_out_bytes)
        self.recorder.outgoing(
            kind,
            {
                "item_id": getattr(message, "item_id", None),
                "response_id": getattr(message, "response_id", None),
                "transcript": getattr(message, "transcript", None),
                # Tool calls (tool.started / tool.finished) are turns too.
                "call_id": getattr(message, "call_id", None),
                "name": getattr(message, "name", None),
                "arguments": getattr(message, "arguments", None),
                "outcome": getattr(message, "outcome", None),
                "summary": getattr(message, "summary", None),
                # Errors and quota warnings: events of the session's timeline.
                "code": getattr(getattr(message, "code", None), "value", None),
                "limit": getattr(message, "limit", None),
                "percent": getattr(message, "percent", None),
            },
        )

    def turn_timed(self, timing: TurnTiming) -> None:
        """A turn is over: its timings go with the assistant turn of its reply."""
        self.recorder.timed(
            timing.response_id,
            TurnTimes(
                latency_ms=timing.turn_latency_ms,
                eot_ms=timing.eot_ms,
                transcription_ms=timing.transcription_ms,
                tool_ms=timing.tool_ms,
                first_audio_ms=timing.first_audio_ms,
                played_latency_ms=timing.played_latency_ms,
            ),
        )

    def typed(self, text: str) -> None:
        """The user typed ``text``."""
        self.recorder.typed(text)

    def interrupted(self, item_id: str, played_ms: int) -> None:
        """The user cut ``item_id`` off after hearing ``played_ms`` of it."""
        self.recorder.interrupted(item_id, played_ms)

    def response_usage(self, response_id: str, usage: Mapping[str, Any] | None) -> None:
        """A response ended with the upstream's ``usage``: it gets the audio relayed since."""
        self.sync()
        self.recorder.response_usage(response_id, usage)

    def sync(self) -> None:
        """Bring the audio counts and the upstream session id up to date (no I/O)."""
        if self.recorder.ended:
            return
        voice = self._voice
        upstream_id = voice.upstream_session_id
        if upstream_id and upstream_id != self._upstream_id:
            self._upstream_id = upstream_id
            self.recorder.upstream_session(upstream_id)
        in_bytes, out_bytes, typed = (
            voice.audio_in_bytes,
            voice.audio_out_bytes,
            voice.typed_seconds,
        )
        if in_bytes > self._in_seen:
            self.recorder.audio_in(in_bytes - self._in_seen)
            self._in_seen = in_bytes
        if out_bytes > self._out_seen:
            self.recorder.audio_out(out_bytes - self._out_seen)
            self._out_seen = out_bytes
        if typed > self._typed_seen:
            self.recorder.typed_time(typed - self._typed_seen)
            self._typed_seen = typed

    def end(self, reason: str) -> None:
        """The session ended (idempotent): the next flush writes its end."""
        self.sync()
        self.recorder.end(reason)
        # Written now, not at the next tick: quotas count an ended session by its written usage.
        history.flush_soon()

    def playout_remaining(self) -> float:
        """Seconds of the latest reply's audio the browser has probably not played yet.

        The relay sends a reply faster than real time; the browser plays it at 1x from its
        first audio on, so what is left is what was sent minus the time since it started.
        """
        if self._reply_audio_start is None:
            return 0.0
        started, out_before = self._reply_audio_start
        sent = (self._voice.audio_out_bytes - out_before) / AUDIO_BYTES_PER_SECOND
        return max(0.0, sent - (time.monotonic() - started))


class LiveVoice(AudioCounters, Seedable, Protocol):
    """What a live session's history needs of its Voice Live session."""


def session_history_start(
    session_id: uuid.UUID,
    user_id: int,
    config: SessionConfig,
    voice: LiveVoice,
    resume: Resume | None,
) -> SessionHistory | None:
    """Seed a continued conversation, and record the session (None: ``HISTORY_RECORDING`` off)."""
    if resume is not None:
        voice.carry_over(resume.items)
    if not settings.HISTORY_RECORDING:
        return None
    return SessionHistory.begin(
        session_id=session_id,
        user_id=user_id,
        config=config,
        voice=voice,
        resumed_from=resume.conversation_id if resume else None,
    )
