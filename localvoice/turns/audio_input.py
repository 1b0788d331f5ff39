"""The input audio buffer of one session: resampling, server VAD turn detection, and transcription.

Latency tricks (see docs/localvoice.md):

* while the user speaks, the growing segment is re-transcribed in the background about every
  ``PARTIAL_INTERVAL_MS`` (only when the STT worker is idle) and sent as transcription deltas;
* once a pause has lasted ``SPECULATE_AFTER_MS``, the utterance is transcribed *speculatively*,
  so the transcript is usually ready by the time the silence hang-over ends (and the session
  can prepare the reply meanwhile); speech that resumes discards the guess.

With semantic end of turn (``TurnDetection.semantic``), once a pause has lasted
``CHECK_AFTER_MS`` (or ``silence_duration_ms`` if shorter) the end-of-turn model judges the
turn's audio, and once the pause's speculative transcript is known the chat model judges its
words (``pipeline/words_turn.py``, after the assistant's last words). At ``silence_duration_ms``
of silence the turn ends unless the words are unfinished: an empty transcript, one stopping on
a word that needs a next one (``unfinished.py``) or words the chat model finds unfinished wait
(but speech over a reply heard as nothing, a hum, ends: the service decides about it with the
reply paused and expects its end within ``silence_duration_ms``); otherwise the turn ends if
the audio sounds complete (P(complete) >= the ``threshold_level``'s) or the words are clearly
finished. What waits ends at ``max(timeout_ms, silence_duration_ms)``.
Server VAD ends it at ``silence_duration_ms`` whatever was said.

Speech that starts while the reply is audible (the output sent, counted on the input clock) is
transcribed with the usual backchannels as Whisper's "previous text" (``BACKCHANNEL_PROMPT``),
English only: without it tiny.en writes a hummed "mhm" as words ("And, and"), and the service
cannot tell a listener's "mm-hmm" from an interruption.

With noise reduction on, a transcription asks for the model that copes with noise
(``SttOptions.noisy``) while the input clean-up finds the room noisy (``pipeline/cleanup.py``).

``AudioInput`` is the models' ``signals.SessionInput``; ``--echo`` has its own
(``echo_input.py``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import soxr

from localvoice.pipeline.cleanup import InputCleanup
from localvoice.pipeline.stages import PIPELINE_RATE, Pipeline, SttOptions
from localvoice.pipeline.words_turn import is_finished, judgeable
from localvoice.protocol.errors import ProtocolError
from localvoice.protocol.events import ErrorCode, new_id
from localvoice.protocol.transcription import stt_languages, stt_phrases
from localvoice.protocol.turn_detection import TurnDetection
from localvoice.turns.fillers import strip_fillers
from localvoice.turns.futures import log_failure, mapped, result_or_none
from localvoice.turns.signals import (
    Committed,
    Signal,
    SilenceStarted,
    SpeechResumed,
    SpeechStarted,
    SpeechStopped,
)
from localvoice.turns.unfinished import sounds_unfinished

logger = logging.getLogger(__name__)

SAMPLES_PER_MS = PIPELINE_RATE // 1000
PARTIAL_INTERVAL_MS = 800
MIN_SPEECH_WINDOWS = 2  # about 64 ms: a click or a cough does not open a turn
MAX_UTTERANCE_MS = 30_000  # Whisper's window; a longer monologue is committed in pieces
MAX_MANUAL_BUFFER_MS = 15 * 60_000
# The silence kept after the last speech window for transcription (Whisper dislikes hard cuts).
TAIL_MS = 64
# Speculate once a pause has lasted this long: shorter pauses are mostly gaps between words.
SPECULATE_AFTER_MS = 64
# Ask the end-of-turn model once a pause has lasted this long (Smart Turn is trained on audio
# that ends about 200 ms after the speech; pipecat runs it after a 200 ms VAD stop).
CHECK_AFTER_MS = 200
# Whisper's prompt for speech over the reply. Measured with tiny.en on espeak-ng's five English
# voices: hums ("mhm", "mm-hmm", "uh-huh") written as such 14 of 15 times (2 of 15 without);
# WER on 42 sentences in six voices 17.6 % (18.6 % without). It also turns pure noise into
# "Mm-h", so it is used only while a reply plays, where a hum is what a listener says.
BACKCHANNEL_PROMPT = ("Mhm.", "Mm-hmm.", "Uh-huh.")
# Speech starting this soon after the reply's audio ran out still answers the reply.
REPLY_GRACE_MS = 500


class AudioInput:
    """Input audio buffer and turn detector of one session (a ``signals.SessionInput``).

    Args:
        pipeline: models and thread pools; a VAD stream is taken from it until ``close``.
        on_partial: called with (item_id, text so far) when a background transcription finishes.
        assistant_said: the assistant's last words, which the words end-of-turn check reads.
    """

    def __init__(
        self,
        pipeline: Pipeline,
        on_partial: Callable[[str, str], Awaitable[None]],
        assistant_said: Callable[[], str] = lambda: "",
    ) -> None:
        self._pipeline = pipeline
        self._assistant_said = assistant_said
        self._vad = pipeline.vad.acquire()
        self._closed = False
        self._on_partial = on_partial
        self._rate = 24000
        self._resampler: soxr.ResampleStream | None = None
        self._carry = b""
        self._pending = np.zeros(0, dtype=np.float32)  # samples not yet in a VAD window
        self._pcm = np.zeros(0, dtype=np.float32)  # buffered audio at 16 kHz
        self._pcm_start = 0  # absolute sample index of _pcm[0]
        self._total = 0  # absolute samples received (16 kHz)
        self.cleanup = InputCleanup(pipeline.echo_mute)
        self.turn: TurnDetection | None = TurnDetection()
        self._stt_options = SttOptions()
        self._over_reply_options = SttOptions(phrases=BACKCHANNEL_PROMPT)
        self._segment_options = self._stt_options
        # The input sample where the output sent so far has played out (None: nothing played).
        self._reply_until: int | None = None
        self._reset_turn()

    def _reset_turn(self) -> None:
        self._speaking = False
        self._speech_run = 0
        self._item_id = ""
        self._segment_start = 0
        self._last_speech_end = 0
        self._silence_start: int | None = None
        self._speculative: tuple[int, asyncio.Future[str]] | None = None
        self._last_partial = 0
        self._partial_busy = False
        # The end-of-turn model's check of the current pause: (pause's last speech, future).
        self._check: tuple[int, asyncio.Future[float]] | None = None
        # The words' check of the pause's transcript: (that transcript, future of P(finished)).
        self._words: tuple[asyncio.Future[str], asyncio.Future[float]] | None = None
        self._segment_options = self._stt_options
        self._segment_over_reply = False

    def configure(self, rate: int, turn: TurnDetection | None, session: dict[str, Any]) -> None:
        """Follow the session's input rate, turn detection and input clean-up settings.

        A change between VAD and manual commits mid-turn resets the turn.
        """
        self.cleanup.configure(session)
        languages, phrases = stt_languages(session), stt_phrases(session)
        self._stt_options = SttOptions(languages, phrases)
        english = set(languages) <= {"en"}
        over_reply = (*BACKCHANNEL_PROMPT, *phrases) if english else phrases
        self._over_reply_options = SttOptions(languages, over_reply)
        if rate != self._rate:
            self._rate = rate
            self._resampler = None
            self._carry = b""
        if (turn is None) != (self.turn is None):
            self._reset_turn()
            self._vad.reset()
        self.turn = turn

    def _to_pipeline_rate(self, pcm: bytes) -> npt.NDArray[np.float32]:
        data = self._carry + pcm
        usable = len(data) - len(data) % 2
        self._carry = data[usable:]
        samples = np.frombuffer(data[:usable], dtype="<i2")
        if self._rate != PIPELINE_RATE:
            if self._resampler is None:
                self._resampler = soxr.ResampleStream(self._rate, PIPELINE_RATE, 1, dtype="int16")
            samples = self._resampler.resample_chunk(samples)
        return samples.astype(np.float32) / 32768.0

    def _ms(self, sample: int) -> int:
        return sample // SAMPLES_PER_MS

    def _audio(self, start: int, end: int) -> npt.NDArray[np.float32]:
        lo = max(0, start - self._pcm_start)
        hi = max(lo, end - self._pcm_start)
        return self._pcm[lo:hi].copy()

    def _trim(self) -> None:
        """Drop audio no turn can need any more (keeps the prefix padding)."""
        if self.turn is None:
            keep_from = self._total - MAX_MANUAL_BUFFER_MS * SAMPLES_PER_MS
        elif self._speaking:
            keep_from = self._segment_start
        else:
            keep_from = self._total - (self.turn.prefix_padding_ms + 1000) * SAMPLES_PER_MS
        drop = keep_from - self._pcm_start
        if drop > 16000:  # trim in big steps: copying the buffer every window is wasteful
            self._pcm = self._pcm[drop:]
            self._pcm_start += drop

    async def append(self, audio: str) -> list[Signal]:
        """Add client audio (base64 PCM16); returns the turn events it caused.

        Raises:
            ProtocolError: the audio is not base64.
        """
        try:
            pcm = base64.b64decode(audio, validate=True)
        except (binascii.Error, ValueError) as exc:
            msg = "audio must be base64-encoded PCM16."
            raise ProtocolError(ErrorCode.INVALID_AUDIO, msg, "audio") from exc
        samples = self._to_pipeline_rate(pcm)
        loop = asyncio.get_running_loop()
        for_vad = samples
        if self.cleanup.active and samples.size:
            for_vad, samples = await loop.run_in_executor(
                self._pipeline.vad_pool, self.cleanup.process, samples, self._total
            )
        self._pcm = np.concatenate([self._pcm, samples])
        self._total += samples.size
        if self.turn is None:
            self._trim()
            return []
        self._pending = np.concatenate([self._pending, for_vad])
        size = self._vad.window_samples
        count = self._pending.size // size
        if count == 0:
            return []
        windows = self._pending[: count * size].reshape(count, size)
        self._pending = self._pending[count * size :]
        first = self._total - self._pending.size - count * size
        probs = await loop.run_in_executor(
            self._pipeline.vad_pool, lambda: [self._vad.probability(w) for w in windows]
        )
        signals: list[Signal] = []
        for index, prob in enumerate(probs):
            signals.extend(self._step(prob, first + index * size, first + (index + 1) * size))
        self._trim()
        return signals

    def _step(self, prob: float, start: int, end: int) -> list[Signal]:
        turn = self.turn
        assert turn is not None
        negative = max(turn.threshold - 0.15, 0.01)
        if not self._speaking:
            if prob < turn.threshold:
                self._speech_run = 0
                return []
            self._speech_run += 1
            window_ms = self._vad.window_samples // SAMPLES_PER_MS
            needed = max(MIN_SPEECH_WINDOWS, -(-turn.speech_duration_ms // window_ms))
            if self._speech_run < needed:
                return []
            speech_start = start - (needed - 1) * self._vad.window_samples
            self._speaking = True
            self._item_id = new_id("item")
            self._segment_start = max(
                self._pcm_start, speech_start - turn.prefix_padding_ms * SAMPLES_PER_MS
            )
            self._last_speech_end = end
            self._last_partial = end
            grace = REPLY_GRACE_MS * SAMPLES_PER_MS
            over_reply = self._reply_until is not None and speech_start < self._reply_until + grace
            self._segment_options = self._over_reply_options if over_reply else self._stt_options
            self._segment_over_reply = over_reply
            return [SpeechStarted(self._item_id, self._ms(self._segment_start))]
        signals: list[Signal] = []
        if prob >= turn.threshold:
            self._last_speech_end = end
            self._silence_start = None
            self._check = None
            self._words = None
            if self._speculative is not None:
                self._speculative = None  # they kept talking: the guess is stale
                signals.append(SpeechResumed(self._item_id))
            self._maybe_partial(end)
        elif prob < negative and self._silence_start is None:
            self._silence_start = end
        if (
            self._silence_start is not None
            and self._speculative is None
            and end - self._last_speech_end >= SPECULATE_AFTER_MS * SAMPLES_PER_MS
        ):
            self._speculate()
            assert self._speculative is not None
            signals.append(SilenceStarted(self._item_id, self._speculative[1]))
        too_long = end - self._segment_start >= MAX_UTTERANCE_MS * SAMPLES_PER_MS
        # The hang-over counts from the last window that was speech, not from the first one
        # below the lower threshold: Silero's probability takes a window or two to fall.
        silent_for = end - self._last_speech_end if self._silence_start is not None else 0
        if too_long or self._turn_over(turn, silent_for // SAMPLES_PER_MS, end):
            return signals + self._endpoint(end)
        return signals

    def _turn_over(self, turn: TurnDetection, silent_ms: int, end: int) -> bool:
        """Whether a pause of ``silent_ms`` ends the turn (the rule in the module docstring)."""
        if self._silence_start is None:
            return False
        if not turn.semantic or self._pipeline.end_of_turn is None:
            return silent_ms >= turn.silence_duration_ms
        if self._check is None and silent_ms >= min(CHECK_AFTER_MS, turn.silence_duration_ms):
            check = self._pipeline.turn_complete(self._audio(self._segment_start, end))
            check.add_done_callback(log_failure)  # also read when the pause is over first
            self._check = (self._last_speech_end, check)
        heard = self._speculative[1] if self._speculative is not None else None
        self._check_words(heard)
        if silent_ms >= max(turn.eou_timeout_ms, turn.silence_duration_ms):
            return True
        if silent_ms < turn.silence_duration_ms or self._check is None:
            return False
        check = self._check[1]
        words = self._words[1] if self._words is not None and self._words[0] is heard else None
        if any(f is not None and not f.done() for f in (check, heard, words)):
            return False
        text = result_or_none(heard)
        if text == "" and self._segment_over_reply:
            # A sound over a reply that Whisper wrote as nothing, as it sometimes does "uh huh":
            # the service holds the reply paused until this speech ends, and takes a stop that
            # comes a timeout later for an interruption (assistant/voicelive/backchannels.py).
            logger.debug("end of turn: nothing heard over the reply; the pause ends it")
            return True
        if text == "":
            # Speech Whisper could not write down yet: nothing to answer if it stays so, and
            # often the first words of a sentence cut by the pause.
            logger.debug("end of turn: nothing heard in the speech so far")
            return False
        if text and sounds_unfinished(text):
            logger.debug("end of turn: %r sounds unfinished", text)
            return False
        p_words = result_or_none(words)
        finished = is_finished(p_words) if p_words is not None else None
        if finished is False:
            logger.debug("end of turn: %r unfinished by its words (P %.4f)", text, p_words)
            return False
        if check.cancelled() or check.exception() is not None:
            logger.warning("end-of-turn check failed: the pause ends the turn")
            return True
        probability = check.result()
        logger.debug(
            "end of turn: P(complete) %.2f, words %s, after %d ms", probability, p_words, silent_ms
        )
        return probability >= turn.eou_threshold or finished is True

    def _check_words(self, heard: asyncio.Future[str] | None) -> None:
        """Ask the words' detector about the pause's transcript once it is known."""
        model = self._pipeline.words_end_of_turn
        if model is None or heard is None or not heard.done():
            return
        if self._words is not None and self._words[0] is heard:
            return
        text = result_or_none(heard)
        if not text or not judgeable(text):
            return
        check = self._pipeline.words_finished(text, self._assistant_said())
        check.add_done_callback(log_failure)
        self._words = (heard, check)

    def _speech_audio(self) -> tuple[int, npt.NDArray[np.float32]]:
        end = min(self._total, self._last_speech_end + TAIL_MS * SAMPLES_PER_MS)
        return end, self._audio(self._segment_start, end)

    def _transcribe(self, audio: npt.NDArray[np.float32]) -> asyncio.Future[str]:
        options = self._segment_options
        if self.cleanup.noisy():
            options = dataclasses.replace(options, noisy=True)
        future = self._pipeline.transcribe(audio, options)
        if self.turn is None or not self.turn.remove_filler_words:
            return future
        return mapped(future, strip_fillers)

    def _speculate(self) -> None:
        _, audio = self._speech_audio()
        self._speculative = (self._last_speech_end, self._transcribe(audio))

    def _maybe_partial(self, end: int) -> None:
        if self._partial_busy or end - self._last_partial < PARTIAL_INTERVAL_MS * SAMPLES_PER_MS:
            return
        if self._pipeline.stt_inflight > 0:  # the worker is busy: final transcripts go first
            return
        # Another session's reply waits for its first chunk: a transcription now would take
        # the core its decode runs on (two llama.cpp threads beside it slow down 3-5x).
        if self._pipeline.llm.starting():
            return
        self._last_partial = end
        self._partial_busy = True
        item_id = self._item_id
        future = self._transcribe(self._audio(self._segment_start, end))

        def done(fut: asyncio.Future[str]) -> None:
            self._partial_busy = False
            if fut.cancelled() or fut.exception() is not None or not fut.result():
                return
            if self._speaking and self._item_id == item_id:
                task = asyncio.ensure_future(self._on_partial(item_id, fut.result()))
                _background.add(task)
                task.add_done_callback(_background.discard)

        future.add_done_callback(done)

    def _endpoint(self, end: int) -> list[Signal]:
        item_id = self._item_id
        speech_end, audio = self._speech_audio()
        if self._speculative is not None and self._speculative[0] == self._last_speech_end:
            transcript = self._speculative[1]
        else:
            transcript = self._transcribe(audio)
        audio_ms = self._ms(end - self._segment_start)
        self._pcm_start, self._pcm = end, self._pcm[end - self._pcm_start :]
        self._reset_turn()
        stopped = SpeechStopped(item_id, self._ms(end))
        if self._only_fillers(transcript):
            logger.debug("turn %s held only filler words: not committed", item_id)
            return [stopped]
        return [stopped, Committed(item_id, audio_ms, transcript, by_vad=True)]

    def _only_fillers(self, transcript: asyncio.Future[str]) -> bool:
        """With ``remove_filler_words``, a turn whose (known) transcript is empty is no turn."""
        return (
            self.turn is not None
            and self.turn.remove_filler_words
            and transcript.done()
            and not transcript.cancelled()
            and transcript.exception() is None
            and not transcript.result()
        )

    def commit(self) -> Committed | None:
        """Commit the buffer by hand; ``None`` when it holds no audio."""
        start = self._segment_start if self._speaking else self._pcm_start
        audio = self._audio(start, self._total)
        item_id = self._item_id or new_id("item")
        self._pcm_start, self._pcm = self._total, np.zeros(0, dtype=np.float32)
        self._reset_turn()
        if audio.size == 0:
            return None
        return Committed(item_id, self._ms(audio.size), self._transcribe(audio), by_vad=False)

    def played(self, pcm: bytes, rate: int) -> int:
        """Output audio went out: placed on the input clock as the echo canceller's reference.

        Returns:
            The input sample where it starts playing (after what is queued, or now).
        """
        self.cleanup.play(pcm, rate, self._total)
        start = max(self._reply_until or 0, self._total)
        self._reply_until = start + len(pcm) // 2 * PIPELINE_RATE // rate
        return start

    def playback_cut(self, since: int) -> None:
        """A response was cancelled: its unplayed audio leaves the echo reference and the reply.

        A discarded reply that was queued behind the one playing leaves that one alone: speech
        over it is still speech over a reply (and its echo is still cancelled).
        """
        cut = max(since, self._total)
        self.cleanup.stop(cut, self._total)
        if self._reply_until is not None:
            self._reply_until = min(self._reply_until, cut)

    def clear(self) -> None:
        """Drop buffered audio and any turn in progress."""
        self._pcm_start, self._pcm = self._total, np.zeros(0, dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)
        self._reset_turn()
        self._vad.reset()

    def close(self) -> None:
        """Free the echo canceller and denoiser and return the VAD stream."""
        self.cleanup.close()
        if not self._closed:
            self._closed = True
            self._pipeline.vad.release(self._vad)


# Keeps fire-and-forget partial-transcript tasks alive until they finish (RUF006).
_background: set[asyncio.Future[None]] = set()
