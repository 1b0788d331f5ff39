"""Load and warm up the real models once per process (the heavy imports live here)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from localvoice.llms import registry
from localvoice.pipeline.base import ChatModel, ChatStats, Pipeline

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ModelOptions:
    """Which models to load.

    Attributes:
        llm: a bundled chat model by name (``localvoice/llms/registry.py``).
        stt: ``tiny.en`` or ``base``.
        llm_model: a chat GGUF instead of the bundled file (with ``llm``'s prompt format).
        llm_url: an OpenAI-compatible endpoint on this machine, used instead of llama.cpp.
        piper_voices: extra Piper voices, name -> ``.onnx`` path.
        threads: CPU threads per model.
        llm_threads: llama.cpp threads (default: ``threads``).
        first_chunk_words: cap on the first spoken chunk, in words (0: none).
        echo_mute: with echo cancellation, mute the VAD's input while a reply plays.
    """

    llm: str = registry.DEFAULT
    stt: str = "tiny.en"
    llm_model: Path | None = None
    llm_url: str | None = None
    piper_voices: dict[str, Path] = field(default_factory=dict)
    threads: int = 2
    llm_threads: int | None = None
    first_chunk_words: int = 0
    echo_mute: bool = False


def _timed(label: str, seconds: dict[str, float], started: float) -> None:
    seconds[label] = round(time.perf_counter() - started, 3)
    logger.info("loaded %s in %.2f s", label, seconds[label])


async def _warm_llm(llm: ChatModel) -> None:
    messages = [
        {"role": "system", "content": "You are a friendly voice assistant."},
        {"role": "user", "content": "Hello"},
    ]
    async for _ in llm.stream(
        messages, temperature=0.2, max_tokens=4, cancel=threading.Event(), stats=ChatStats()
    ):
        pass


def load_pipeline(options: ModelOptions) -> Pipeline:
    """Import, load and warm up VAD, STT, LLM and TTS.

    Args:
        options: model choices.

    Returns:
        The ready pipeline.
    """
    from localvoice.pipeline.denoise import SpeexNoise
    from localvoice.pipeline.echo import check_available
    from localvoice.pipeline.llm import LlamaChat, OpenAICompatibleChat
    from localvoice.pipeline.stt import WhisperStt
    from localvoice.pipeline.tts import PiperTts
    from localvoice.pipeline.vad import SileroVadModel
    from localvoice.pipeline.weights import resolve

    seconds: dict[str, float] = {}
    # Packaged weights first: a missing or damaged package fails before anything slow loads.
    chat_format = registry.get(options.llm)
    path = options.llm_model
    if path is None and not options.llm_url:
        assert chat_format.weights is not None
        started = time.perf_counter()
        path = resolve(chat_format.weights)
        _timed("llm_weights", seconds, started)

    started = time.perf_counter()
    vad = SileroVadModel()
    _timed("vad", seconds, started)

    started = time.perf_counter()
    # One thread: faster than two for the short cut windows (see docs/benchmarks.md).
    stt = WhisperStt(model=options.stt, cpu_threads=1)
    stt.transcribe(np.zeros(16000, dtype=np.float32))
    _timed("stt", seconds, started)

    started = time.perf_counter()
    llm: ChatModel
    if options.llm_url:
        llm = OpenAICompatibleChat(options.llm_url)
    else:
        assert path is not None
        llm = LlamaChat(
            path,
            chat_format,
            n_threads=options.llm_threads or options.threads,
            n_threads_batch=options.threads,
        )
        asyncio.run(_warm_llm(llm))
    _timed("llm", seconds, started)
    logger.info("chat model: %s", llm.name)

    started = time.perf_counter()
    tts = PiperTts(options.piper_voices, threads=options.threads)
    tts.synthesize("Hello there.", voice=tts.default_voice, length_scale=None)
    _timed("tts", seconds, started)
    # Loaded now, so a session that asks for echo cancellation never finds it missing.
    echo = check_available()
    logger.info("echo cancellation: %s; noise suppression: %s", echo, SpeexNoise.name)
    return Pipeline(
        vad=vad,
        stt=stt,
        llm=llm,
        tts=tts,
        load_seconds=seconds,
        input_cleanup={"echo_cancellation": echo, "noise_reduction": SpeexNoise.name},
        first_chunk_words=options.first_chunk_words,
        echo_mute=options.echo_mute,
    )
