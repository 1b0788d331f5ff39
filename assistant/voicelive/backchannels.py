"""Backchannels: whether a short sound over a reply ("mhm", "okay", a cough) should stop it.

With the profile's switch on, the upstream is told not to cancel a reply on speech start
(``interrupt_response: false``); the event router opens a :class:`Window` instead and asks it,
as the user's speech goes on, whether this is a backchannel or a real interruption:

* any word that is not in the profile's backchannel list → barge-in, at once;
* speech that lasted over ``BACKCHANNEL_MAX_MS`` after it started → barge-in: backchannels
  are short. Its end is read from the audio (``audio_end_ms``), not from when a busy upstream
  got round to saying so; with no ``speech_stopped`` the timer allows for that lag;
* speech that ended in time with only listed words, or none (a cough), in its final
  transcript → backchannel: the reply goes on, the user's item is deleted upstream.

Pure: no I/O, no clock of its own (the caller passes ``now``).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from assistant.voicelive.config import SessionConfig

#: Spoken backchannels last under this (espeak-ng's "mhm" is 720 ms, its "yeah" 440 ms; people
#: say them in 250-600 ms); longer speech is a real interruption. Generous, because the page is
#: already paused by then (HOLD_AFTER_MS): this bound only sets when a long one is cut.
BACKCHANNEL_MAX_MS = 1000
#: Pause the page's playback this long after speech started, while still deciding, so that a
#: real interruption is audibly stopped within 700 ms of its first sound (the VAD reports speech
#: 60-170 ms in); a backchannel resumes where it paused (no lost words).
HOLD_AFTER_MS = 450
#: After speech stopped, wait at most this long for its final transcript, then barge in.
TRANSCRIPT_WAIT_MS = 2500
#: With no ``speech_stopped`` yet, the timer waits this much past the bound: a busy upstream
#: reports the stop late (its ``audio_end_ms`` then shows the speech was short).
EVENT_LAG_SLACK_MS = 500

DEFAULT_BACKCHANNELS = (
    "en: mhm, mmhm, mhmm, mm-hmm, uh-huh, hmm, hm, mm, uh, um, yeah, yep, yup, yes, okay, ok, "
    "right, alright, all right, sure, i see, oh, ah, aha, cool, great, nice, wow, true, exactly, "
    "got it\n"
    "fr: mhm, hmm, mm, ouais, oui, ok, okay, d'accord, bien sûr, ah, oh, voilà, exactement, "
    "c'est ça, je vois"
)

_LINE_RE = re.compile(r"^\s*([a-z]{2,3})\s*:\s*(.*?)\s*$")
# Non-speech annotations a transcriber may write for a cough or a laugh: "[cough]", "(laughs)".
_ANNOTATION_RE = re.compile(r"\[[^\]]*\]|\([^)]*\)|\*[^*]*\*")
_NOT_WORD_RE = re.compile(r"[^\w\s']+")
_REPEATS_RE = re.compile(r"(\w)\1{2,}")
MAX_LIST_CHARS = 4000


class ListError(enum.StrEnum):
    """Why a backchannel list does not parse (stable codes for the admin form)."""

    TOO_LONG = "too_long"
    BAD_LINE = "bad_line"
    EMPTY_LIST = "empty_list"
    DUPLICATE_LANGUAGE = "duplicate_language"


class BackchannelListError(ValueError):
    """A backchannel list that does not parse; ``code`` is stable, ``line`` 1-based."""

    def __init__(self, code: ListError, line: int) -> None:
        super().__init__(f"{code} on line {line}")
        self.code = code
        self.line = line


def words(text: str) -> list[str]:
    """``text`` as the decision compares it: lowercase words, punctuation and annotations gone.

    "Mm-hmm." → ["mm", "hmm"]; "Uh huh!" → ["uh", "huh"]; "Mmmm" → ["mm"]; "[cough]" → [].
    """
    text = _ANNOTATION_RE.sub(" ", text.lower().replace("’", "'").replace("-", " "))
    tokens = (token.strip("'") for token in _NOT_WORD_RE.sub(" ", text).split())
    return [_REPEATS_RE.sub(r"\1\1", token) for token in tokens if token]


def _is_word(candidate: str) -> bool:
    """Whether a token is a word: transcribers spell a hum out as letters ("M.A.K.", "F-a-f")."""
    return len(candidate) > 1 or candidate == "i"


def parse_lists(text: str) -> dict[str, frozenset[str]]:
    """The per-language lists of a profile: ``"en: mhm, uh-huh, yeah"`` one language a line.

    Returns:
        The words of each language's phrases, by language code.

    Raises:
        BackchannelListError: ``too_long``, ``bad_line`` (not ``xx: a, b``), ``empty_list``
            or ``duplicate_language``.
    """
    if len(text) > MAX_LIST_CHARS:
        raise BackchannelListError(ListError.TOO_LONG, 1)
    lists: dict[str, frozenset[str]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        match = _LINE_RE.match(line)
        if match is None:
            raise BackchannelListError(ListError.BAD_LINE, number)
        language, phrases = match.groups()
        vocabulary = frozenset(w for phrase in phrases.split(",") for w in words(phrase))
        if not vocabulary:
            raise BackchannelListError(ListError.EMPTY_LIST, number)
        if language in lists:
            raise BackchannelListError(ListError.DUPLICATE_LANGUAGE, number)
        lists[language] = vocabulary
    return lists


def vocabulary_for(lists: Mapping[str, frozenset[str]], language: str) -> frozenset[str]:
    """The backchannel words for the transcription language (``en-US``, ``en,fr``, or ``""``).

    No language (the transcriber detects it) takes every list.
    """
    wanted = {part.split("-")[0] for part in language.split(",") if part.strip()}
    chosen: Iterable[frozenset[str]] = (
        [v for lang, v in lists.items() if lang in wanted] if wanted else lists.values()
    )
    return frozenset().union(*chosen)


def enabled(config: SessionConfig) -> bool:
    """Whether the session tells backchannels from interruptions.

    Only where there is barge-in to soften and a transcript to decide from, with voice
    activity turns (push-to-talk has no speech over a reply).
    """
    return (
        config.backchannels
        and config.interrupt_response
        and bool(config.input_transcription_model)
        and config.turn_mode != "push_to_talk"
    )


def session_vocabulary(config: SessionConfig) -> frozenset[str]:
    """The backchannel words of a session; a list that does not parse counts as the defaults."""
    try:
        lists = parse_lists(config.backchannel_words)
    except BackchannelListError:
        lists = parse_lists(DEFAULT_BACKCHANNELS)
    return vocabulary_for(lists, config.input_transcription_language)


class Verdict(enum.Enum):
    """What the user's speech over a reply is, so far."""

    UNDECIDED = "undecided"
    BACKCHANNEL = "backchannel"
    BARGE_IN = "barge_in"


@dataclass(slots=True)
class Window:
    """The decision about one user item spoken over a reply.

    Args:
        item_id: the user item the upstream opened on speech start.
        vocabulary: the backchannel words.
        started: when speech started (seconds, the caller's clock).
        silence_ms: the VAD's silence hang-over: ``speech_stopped`` comes this late.
    """

    item_id: str
    vocabulary: frozenset[str]
    started: float
    silence_ms: int
    stopped: float | None = None
    #: When the speech ended, by its audio (``stopped`` less the upstream's lag and silence).
    speech_end: float | None = None
    reason: str = ""
    heard: str = ""
    #: Messages for the page held back while deciding (its transcript lines, speech stopped).
    held: list[object] = field(default_factory=list)
    #: The final transcript, once it came (passed on if the speech turns out to be a turn).
    held_transcript: str | None = None
    #: The upstream's automatic reply to it was refused or cancelled while deciding.
    reply_dropped: bool = False

    def _words_verdict(self, heard: list[str]) -> Verdict:
        if any(_is_word(word) and word not in self.vocabulary for word in heard):
            self.reason = "words"
            return Verdict.BARGE_IN
        return Verdict.UNDECIDED

    def partial(self, delta: str) -> Verdict:
        """A live transcript delta: a complete word off the list decides at once.

        The last word of a partial transcript may be cut off mid-word: it waits for the next.
        """
        self.heard += delta
        return self._words_verdict(words(self.heard)[:-1])

    def speech_stopped(self, now: float, speech_end: float | None = None) -> Verdict:
        """The upstream ended the user's speech: short enough, or already too long.

        ``speech_end``: when the audio where the speech ended reached the service, from the
        event's ``audio_end_ms`` (the upstream may be slow to say so); None: ``now`` less the
        silence hang-over.
        """
        self.stopped = now
        heard_end = now - self.silence_ms / 1000
        self.speech_end = heard_end if speech_end is None else min(speech_end, heard_end)
        return self.expired(now)

    def transcript(self, text: str) -> Verdict:
        """The final transcript: only listed words, or none, is a backchannel."""
        if self._words_verdict(words(text)) is Verdict.BARGE_IN:
            return Verdict.BARGE_IN
        if self.stopped is None:
            return Verdict.UNDECIDED  # a transcript before speech_stopped: wait for the end
        self.reason = "listed" if words(text) else "no_words"
        return Verdict.BACKCHANNEL

    def expired(self, now: float) -> Verdict:
        """Whether a bound has passed at ``now``."""
        if self.stopped is None or self.speech_end is None:
            if now >= self.next_deadline():
                self.reason = "long"
                return Verdict.BARGE_IN
        elif self.speech_end > self.started + BACKCHANNEL_MAX_MS / 1000:
            self.reason = "long"
            return Verdict.BARGE_IN
        elif now >= self.stopped + TRANSCRIPT_WAIT_MS / 1000:
            self.reason = "no_transcript"
            return Verdict.BARGE_IN
        return Verdict.UNDECIDED

    def timeline(self, now: float) -> str:
        """The window's times from the speech's start, for the logs."""

        def since(moment: float | None) -> str:
            return "-" if moment is None else f"{(moment - self.started) * 1000:.0f} ms"

        return (
            f"speech ended at {since(self.speech_end)}, its stop came at {since(self.stopped)}, "
            f"decided at {since(now)}"
        )

    def next_deadline(self) -> float:
        """When :meth:`expired` may next change its answer."""
        if self.stopped is None:
            bound_ms = BACKCHANNEL_MAX_MS + self.silence_ms + EVENT_LAG_SLACK_MS
            return self.started + bound_ms / 1000
        return self.stopped + TRANSCRIPT_WAIT_MS / 1000
