"""How long each turn took, as the user felt it: from the end of their speech to the reply.

The end of the user's speech is where it ended *in the audio*, placed on the service's clock
by when that audio reached the upstream (:func:`speech_end_time`), not when the silence timer
fired. ``speech_stopped``'s ``audio_end_ms`` is where the turn was *detected*: Voice Live
documents that it includes the configured silence (``silence_duration_ms``), and localvoice
does the same (measured: 467 ms after the last sample of speech at p50 with 400 ms of
silence), so the speech ended that silence before it. A :class:`TurnTimer` follows one
turn at a time from there and hands its :class:`TurnTiming` to the call once, when the next
turn begins or the session ends: by then whether the reply was cut off, and when the page began
playing it, are known.

All times are ``time.monotonic()`` seconds. Nothing here runs per audio frame: the timer hears
of a turn's events (speech stopped, transcript, the first audio of an item, tool rounds, the
page's playback report), never of the frames between them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

#: Input audio is PCM16 mono at 24 kHz: this many bytes a millisecond.
AUDIO_BYTES_PER_MS = 48
#: The upstream may place the end of speech a little past the audio it has had from us (its
#: frames are rounded); beyond this it is a clock we cannot map, and the timing is left out.
MAPPING_SLACK_MS = 100


def speech_end_time(
    audio_end_ms: int,
    *,
    sent_bytes: int,
    base_bytes: int,
    sent_at: float,
    silence_ms: int = 0,
) -> float | None:
    """When the end of speech reached the service, from ``speech_stopped``; or None.

    Args:
        audio_end_ms: ``speech_stopped``'s position, in ms of this connection's input audio
            (each upstream connection counts from 0: a rollover starts a new count).
        sent_bytes: the microphone's audio sent upstream so far, over every connection.
        base_bytes: ``sent_bytes`` when this connection began.
        sent_at: when the last of ``sent_bytes`` was sent (monotonic seconds).
        silence_ms: the silence ``audio_end_ms`` includes (the profile's
            ``silence_duration_ms``): the speech ended that much before it.

    The audio after the end of speech was sent as the browser recorded it, in real time, so
    the end of speech was sent that much before the latest append.
    """
    if audio_end_ms < 0 or sent_at <= 0:
        return None
    sent_after = sent_bytes - base_bytes - audio_end_ms * AUDIO_BYTES_PER_MS
    if sent_after < -MAPPING_SLACK_MS * AUDIO_BYTES_PER_MS:
        return None  # the upstream counts audio we never sent it: not this connection's clock
    silence = min(max(0, silence_ms), audio_end_ms) * AUDIO_BYTES_PER_MS
    return sent_at - (max(0, sent_after) + silence) / (AUDIO_BYTES_PER_MS * 1000)


def epoch_ns(
    moment: float,
    *,
    wall: Callable[[], float] = time.time,
    monotonic: Callable[[], float] = time.monotonic,
) -> int:
    """A monotonic ``moment`` of a timing as Unix nanoseconds (a span's start or end time)."""
    return round((wall() - (monotonic() - moment)) * 1e9)


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else max(0, round(seconds * 1000))


@dataclass(slots=True)
class TurnTiming:
    """One turn's timings: the user's speech ended, the assistant's reply began.

    Times are monotonic seconds on the service's clock. The derived parts, in milliseconds:

    - ``turn_latency_ms``: end of speech → first assistant audio at the service (**the** turn
      latency);
    - ``eot_ms``: end of speech → ``speech_stopped`` (end-of-turn detection: the silence the
      upstream waits, and its end-of-turn model);
    - ``transcription_ms``: ``speech_stopped`` → the user's transcript, when it came before
      the first audio (None otherwise: then it was not on the way to the reply);
    - ``tool_ms``: tool rounds run before the first audio;
    - ``first_audio_ms``: the rest: the model and speech synthesis upstream, to their first
      audio; ``eot_ms + transcription_ms + tool_ms + first_audio_ms == turn_latency_ms``;
    - ``played_latency_ms``: end of speech → the page's report that playback began (a
      measurement the page makes: it includes the way to the browser and back);
    - ``heard_ms``: of an interrupted reply, how much the user heard.
    """

    item_id: str
    end_of_speech: float
    speech_stopped_at: float
    push_to_talk: bool = False
    transcribed_at: float | None = None
    first_audio_at: float | None = None
    response_id: str = ""
    audio_item_id: str = ""
    tool_seconds: float = 0.0
    played_at: float | None = None
    interrupted: bool = False
    heard_ms: int | None = None

    @property
    def turn_latency_ms(self) -> int | None:
        """End of speech → first assistant audio at the service."""
        if self.first_audio_at is None:
            return None
        return _ms(self.first_audio_at - self.end_of_speech)

    @property
    def eot_ms(self) -> int:
        """End of speech → end of turn detected (``speech_stopped``)."""
        return _ms(self.speech_stopped_at - self.end_of_speech) or 0

    @property
    def transcription_ms(self) -> int | None:
        """``speech_stopped`` → the user's transcript, if that came before the first audio."""
        if self.transcribed_at is None:
            return None
        if self.first_audio_at is not None and self.transcribed_at > self.first_audio_at:
            return None
        return _ms(self.transcribed_at - self.speech_stopped_at)

    @property
    def tool_ms(self) -> int:
        """Tool rounds before the first audio."""
        return _ms(self.tool_seconds) or 0

    @property
    def first_audio_ms(self) -> int | None:
        """The model and speech upstream: what is left of the latency after the other parts."""
        total = self.turn_latency_ms
        if total is None:
            return None
        return max(0, total - self.eot_ms - (self.transcription_ms or 0) - self.tool_ms)

    @property
    def played_latency_ms(self) -> int | None:
        """End of speech → the page said playback began."""
        if self.played_at is None:
            return None
        return _ms(self.played_at - self.end_of_speech)

    def attributes(self) -> dict[str, int | bool | str]:
        """The timings as flat ``voice.*`` attributes (OpenTelemetry span attributes, logs).

        Stable keys; a part that was not measured is left out:
        ``voice.turn_latency_ms``, ``voice.eot_ms``, ``voice.transcription_ms``,
        ``voice.tool_ms``, ``voice.first_audio_ms``, ``voice.played_latency_ms``,
        ``voice.interrupted``, ``voice.heard_ms``, ``voice.push_to_talk``,
        ``voice.item_id`` (the user's item), ``voice.response_id`` (the reply's).
        """
        values: dict[str, int | bool | str | None] = {
            "voice.turn_latency_ms": self.turn_latency_ms,
            "voice.eot_ms": self.eot_ms,
            "voice.transcription_ms": self.transcription_ms,
            "voice.tool_ms": self.tool_ms,
            "voice.first_audio_ms": self.first_audio_ms,
            "voice.played_latency_ms": self.played_latency_ms,
            "voice.interrupted": self.interrupted,
            "voice.heard_ms": self.heard_ms,
            "voice.push_to_talk": self.push_to_talk,
            "voice.item_id": self.item_id,
            "voice.response_id": self.response_id,
        }
        return {key: value for key, value in values.items() if value is not None}


class TurnTimer:
    """Follows one turn at a time and delivers its timing once, when it is over.

    Args:
        deliver: called once per turn that got a reply (the call's sink), never for a turn
            that got none (a filler, a reply cancelled before its first audio).
        tool_seconds: the session's tool rounds so far (a running total, read at the turn's
            start and at its first audio).
        clock: monotonic seconds (tests pass their own).
    """

    def __init__(
        self,
        deliver: Callable[[TurnTiming], None],
        *,
        tool_seconds: Callable[[], float] = lambda: 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._deliver = deliver
        self._tool_seconds = tool_seconds
        self._clock = clock
        self.current: TurnTiming | None = None
        self._tools_before = 0.0
        self._stale_response: str | None = None  # the reply the user spoke over: not theirs

    def speech_ended(
        self,
        item_id: str,
        end_of_speech: float | None,
        *,
        running_response: str | None = None,
        push_to_talk: bool = False,
    ) -> None:
        """The user's turn ended (``speech_stopped``, or a push-to-talk release).

        Args:
            item_id: the user's item.
            end_of_speech: where their speech ended on our clock (None: not known; the turn
                is then timed from now, the end-of-turn detection left at 0).
            running_response: a reply still running upstream, whose audio is not this turn's.
            push_to_talk: the end is the button's release.
        """
        self.finish()
        now = self._clock()
        end = now if end_of_speech is None else min(end_of_speech, now)
        self.current = TurnTiming(
            item_id=item_id, end_of_speech=end, speech_stopped_at=now, push_to_talk=push_to_talk
        )
        self._tools_before = self._tool_seconds()
        self._stale_response = running_response

    def transcribed(self, item_id: str) -> None:
        """The user's transcript of ``item_id`` is done."""
        turn = self.current
        if turn is None or turn.transcribed_at is not None:
            return
        if not turn.item_id:  # push-to-talk: the item is named only by its transcript
            turn.item_id = item_id
        if turn.item_id == item_id:
            turn.transcribed_at = self._clock()

    def audio_began(self, item_id: str | None, response_id: str | None) -> None:
        """An assistant audio item's first bytes reached the service (not every delta)."""
        turn = self.current
        if turn is None or turn.first_audio_at is not None:
            return
        if response_id is not None and response_id == self._stale_response:
            return  # the last of the reply the user spoke over
        turn.first_audio_at = self._clock()
        turn.response_id = response_id or ""
        turn.audio_item_id = item_id or ""
        turn.tool_seconds = max(0.0, self._tool_seconds() - self._tools_before)

    def playback_began(self, item_id: str) -> bool:
        """The page says it began playing ``item_id``; True when that timed the turn's reply."""
        turn = self.current
        if turn is None or turn.played_at is not None or not turn.audio_item_id:
            return False
        if item_id != turn.audio_item_id:
            return False
        turn.played_at = self._clock()
        return True

    def interrupted(self, heard_ms: int | None = None) -> None:
        """The user cut the reply off (barge-in, a typed message, Stop)."""
        turn = self.current
        if turn is None or turn.first_audio_at is None or turn.interrupted:
            return
        turn.interrupted = True
        if heard_ms is None:
            # Until the page says, what played since it began (or since the first audio).
            began = turn.played_at or turn.first_audio_at
            heard_ms = _ms(self._clock() - began)
        turn.heard_ms = heard_ms

    def heard(self, item_id: str, played_ms: int) -> None:
        """The page's own count of what was heard of an interrupted ``item_id``."""
        turn = self.current
        if turn is not None and turn.interrupted and turn.audio_item_id == item_id:
            turn.heard_ms = played_ms

    def finish(self) -> None:
        """The turn is over (the next began, or the session ends): deliver it once."""
        turn, self.current = self.current, None
        if turn is not None and turn.first_audio_at is not None:
            self._deliver(turn)
