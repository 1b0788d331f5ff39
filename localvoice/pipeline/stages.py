"""Typed interfaces of the pipeline stages, so each one can be swapped (tests, other models)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from localvoice.pipeline.llms.base import ChatFormat

#: VAD, STT and the pipeline's internal audio all run at this rate.
PIPELINE_RATE = 16000

T = TypeVar("T")


class VadStream(Protocol):
    """Stateful speech probability over consecutive fixed-size windows of one audio stream."""

    window_samples: int

    def probability(self, window: npt.NDArray[np.float32]) -> float:
        """Speech probability of the next window (``window_samples`` floats at 16 kHz)."""
        ...

    def reset(self) -> None:
        """Forget the stream's state."""
        ...


class VadModel(Protocol):
    """Hands out per-session VAD streams."""

    name: str

    def acquire(self) -> VadStream:
        """A fresh stream for one session."""
        ...

    def release(self, stream: VadStream) -> None:
        """Return a stream when the session ends."""
        ...


@dataclass(frozen=True, slots=True)
class SttOptions:
    """What a session asks of transcription.

    Attributes:
        languages: ISO-639-1 codes the speech may be in (none: English); with several, the
            model picks among them.
        phrases: words and names to prefer (the session's ``phrase_list``).
        noisy: the session's noise reduction found the room noisy: English is transcribed by
            the model that copes with noise (``pipeline/stt.py``).
    """

    languages: tuple[str, ...] = ()
    phrases: tuple[str, ...] = ()
    noisy: bool = False


class SpeechToText(Protocol):
    """Batch transcription of one utterance."""

    name: str

    def transcribe(self, audio: npt.NDArray[np.float32], options: SttOptions | None = None) -> str:
        """Transcribe 16 kHz mono float32 audio; blocking, call it from a worker thread."""
        ...


class EndOfTurnModel(Protocol):
    """Semantic end of turn: whether what the user said so far sounds finished."""

    name: str

    def probability(self, audio: npt.NDArray[np.float32]) -> float:
        """Probability that the turn ending with ``audio`` (16 kHz mono) is complete; blocking."""
        ...


class WordsEndOfTurnModel(Protocol):
    """The words' half of semantic end of turn: whether the user's words are a finished message."""

    name: str

    def probability(self, words: str, context: str = "") -> float:
        """P(finished) of ``words`` after the assistant's ``context``; blocking."""
        ...


@dataclass(slots=True)
class CheckCost:
    """Calls of a turn-detection model and their CPU time (thread time), for ``/healthz``."""

    checks: int = 0
    cpu_ms: float = 0.0

    def measure(self, call: Callable[[], float]) -> float:
        """Run ``call`` (blocking) and count it."""
        started = time.thread_time()
        try:
            return call()
        finally:
            self.checks += 1
            self.cpu_ms += (time.thread_time() - started) * 1000


@dataclass(slots=True)
class ChatStats:
    """Token counts of one chat completion, filled in while it streams."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    first_token_ms: float | None = None


class ChatModel(Protocol):
    """A streaming chat model."""

    name: str
    format: ChatFormat

    def stream(
        self,
        messages: list[dict[str, str]],
        *,
        temperature: float,
        max_tokens: int,
        cancel: threading.Event,
        stats: ChatStats,
        tools_offered: bool = False,
    ) -> AsyncIterator[str]:
        """Stream the reply's text pieces; stops soon after ``cancel`` is set.

        ``tools_offered``: the prompt offers tools (the format's ``call_bias`` applies).
        """
        ...

    def prefill(self, messages: list[dict[str, str]]) -> None:
        """Prepare the prompt of a reply to come, whose user turn (the last message) is unfinished.

        Best effort and non-blocking: it must never delay a reply, and may do nothing.
        """
        ...

    def starting(self) -> bool:
        """Whether a reply is waiting for its prompt or first tokens on this machine's cores.

        Live transcripts wait meanwhile (``turns/audio_input.py``); any thread may ask.
        """
        ...


class Speaker(Protocol):
    """One response's voice: its chunks make one continuous stream at the client's rate."""

    def speak(self, text: str) -> bytes:
        """Speak one chunk as PCM16 little-endian at the response's rate; blocking."""
        ...


class TextToSpeech(Protocol):
    """Sentence-level speech synthesis at any output rate (the stage resamples its voices)."""

    voices: list[str]
    default_voice: str

    def speaker(self, *, voice: str, length_scale: float | None, rate: int) -> Speaker:
        """A speaker for one response, at ``rate`` Hz (``pipeline/resample.py`` helps)."""
        ...


@dataclass(slots=True)
class Pipeline:
    """The loaded stages and the thread pools their blocking calls run in.

    ``pipeline/loopback.py`` is the other stage set, the one of ``--echo``.
    """

    vad: VadModel
    stt: SpeechToText
    llm: ChatModel
    tts: TextToSpeech
    #: Semantic end of turn (Smart Turn); ``None``: semantic settings fall back to silence.
    end_of_turn: EndOfTurnModel | None = None
    #: The words' half of semantic end of turn (``pipeline/words_turn.py``); ``None``: off.
    words_end_of_turn: WordsEndOfTurnModel | None = None
    load_seconds: dict[str, float] = field(default_factory=dict)
    input_cleanup: dict[str, str] = field(default_factory=dict)
    first_chunk_words: int = 0  # cap on the first spoken chunk (0: sentence or comma only)
    echo_mute: bool = False  # with echo cancellation, mute the VAD's input while a reply plays
    speaks: bool = True  # False: replies are text whatever the modalities (``--echo``)
    echoes_input: bool = False  # True: a session's input audio comes straight back (``--echo``)
    vad_pool: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(2, thread_name_prefix="lv-vad")
    )
    stt_pool: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="lv-stt")
    )
    tts_pool: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="lv-tts")
    )
    # One worker: a pause's check never waits behind VAD windows or a transcription.
    turn_pool: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="lv-turn")
    )
    #: Smart Turn's and the words' checks, for ``/healthz`` and the bench.
    turn_cost: CheckCost = field(default_factory=CheckCost)
    words_cost: CheckCost = field(default_factory=CheckCost)

    stt_inflight: int = 0
    #: Transcriptions, syntheses and turn checks running now (set on the event loop, read by
    #: the chat engine's thread: a lone reply's first tokens get both threads only while the
    #: other core is free; ``llm_jobs.decode_threads``).
    work_in_flight: int = 0

    def busy(self) -> bool:
        """Whether a model other than the chat model is working now."""
        return self.work_in_flight > 0

    def _counted(self, pool: ThreadPoolExecutor, work: Callable[[], T]) -> asyncio.Future[T]:
        self.work_in_flight += 1
        future = asyncio.get_running_loop().run_in_executor(pool, work)

        def done(_: asyncio.Future[T]) -> None:
            self.work_in_flight -= 1

        future.add_done_callback(done)
        return future

    def transcribe(
        self, audio: npt.NDArray[np.float32], options: SttOptions | None = None
    ) -> asyncio.Future[str]:
        """Run STT in its worker thread; the future resolves to the text."""
        self.stt_inflight += 1
        future = self._counted(self.stt_pool, lambda: self.stt.transcribe(audio, options))

        def done(_: asyncio.Future[str]) -> None:
            self.stt_inflight -= 1

        future.add_done_callback(done)
        return future

    def synthesize(self, speaker: Speaker, text: str) -> asyncio.Future[bytes]:
        """Run TTS in its worker thread; the future resolves to the PCM."""
        return self._counted(self.tts_pool, lambda: speaker.speak(text))

    def turn_complete(self, audio: npt.NDArray[np.float32]) -> asyncio.Future[float]:
        """Run the end-of-turn model in its worker; the future resolves to P(complete)."""
        model = self.end_of_turn
        assert model is not None
        return self._counted(
            self.turn_pool, lambda: self.turn_cost.measure(lambda: model.probability(audio))
        )

    def words_finished(self, words: str, context: str) -> asyncio.Future[float]:
        """P(the user's words are a finished message), in the turn-detection worker."""
        model = self.words_end_of_turn
        assert model is not None
        return self._counted(
            self.turn_pool,
            lambda: self.words_cost.measure(lambda: model.probability(words, context)),
        )

    def describe(self) -> dict[str, Any]:
        """What is loaded, for ``/healthz`` (nothing with ``--echo``)."""
        if self.echoes_input:
            return {}
        return {
            "vad": self.vad.name,
            "stt": self.stt.name,
            "stt_noisy_room_transcriptions": getattr(self.stt, "noisy_transcriptions", 0),
            "llm": self.llm.name,
            "llm_model": self.llm.format.key,
            "tts": {"voices": self.tts.voices, "default": self.tts.default_voice},
            "end_of_turn": self.end_of_turn.name if self.end_of_turn else None,
            "end_of_turn_checks": self.turn_cost.checks,
            "end_of_turn_cpu_ms": round(self.turn_cost.cpu_ms, 1),
            "words_end_of_turn": self.words_end_of_turn.name if self.words_end_of_turn else None,
            "words_checks": self.words_cost.checks,
            "words_cpu_ms": round(self.words_cost.cpu_ms, 1),
            "load_seconds": self.load_seconds,
            "input_cleanup": self.input_cleanup,
        }

    def shutdown(self) -> None:
        """Stop the worker threads."""
        for pool in (self.vad_pool, self.stt_pool, self.tts_pool, self.turn_pool):
            pool.shutdown(wait=False, cancel_futures=True)
