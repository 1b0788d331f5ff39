"""Load and warm up the stages named by the configuration, once per process.

The stages come from ``pipeline/registry.py`` and the chat model from ``pipeline/llms/registry.py``;
the heavy imports happen inside their factories.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from localvoice.pipeline import registry
from localvoice.pipeline.llms import registry as chat_models
from localvoice.pipeline.stages import Pipeline

if TYPE_CHECKING:
    from collections.abc import Callable

    from localvoice.config import ServerConfig

logger = logging.getLogger(__name__)

T = TypeVar("T")


def _timed(label: str, seconds: dict[str, float], load: Callable[[], T]) -> T:
    started = time.perf_counter()
    stage = load()
    seconds[label] = round(time.perf_counter() - started, 3)
    logger.info("loaded %s in %.2f s", label, seconds[label])
    return stage


def load_pipeline(config: ServerConfig) -> Pipeline:
    """Import, load and warm up VAD, STT, LLM, TTS and the end-of-turn model.

    Args:
        config: the server settings (``vad``, ``stt``, ``llm``, ``tts`` and their options).

    Returns:
        The ready pipeline.

    Raises:
        WeightsError: a model package is missing or damaged.
        KeyError: an unknown stage name.
    """
    from localvoice.pipeline.denoise import SpeexNoise
    from localvoice.pipeline.echo import check_available
    from localvoice.pipeline.llm import LlamaChat
    from localvoice.pipeline.weights import resolve

    seconds: dict[str, float] = {}
    chat_format = chat_models.get(config.llm)
    engine = registry.llm_engine(config)
    vad = registry.choose(registry.VAD, "VAD", config.vad)
    stt = registry.choose(registry.STT, "--stt", config.stt)
    llm = registry.choose(registry.LLM, "LLM engine", engine)
    tts = registry.choose(registry.TTS, "TTS", config.tts)
    end_of_turn = registry.choose(registry.END_OF_TURN, "end-of-turn model", config.end_of_turn)
    # Packaged weights first: a missing or damaged package fails before anything slow loads.
    path: Path | None = config.llm_model
    if path is None and not config.llm_url:
        weights = chat_format.weights
        assert weights is not None
        path = _timed("llm_weights", seconds, lambda: resolve(weights))
    vad_model = _timed("vad", seconds, lambda: vad(config))
    stt_model = _timed("stt", seconds, lambda: stt(config))
    chat_model = _timed("llm", seconds, lambda: llm(config, chat_format, path))
    logger.info("chat model: %s", chat_model.name)
    tts_model = _timed("tts", seconds, lambda: tts(config))
    turn_model = _timed("end_of_turn", seconds, lambda: end_of_turn(config))
    words_model = None
    if config.words_end_of_turn and isinstance(chat_model, LlamaChat):
        words_model = _timed("words_end_of_turn", seconds, chat_model.words_end_of_turn)
    # Loaded now, so a session that asks for echo cancellation never finds it missing.
    echo = check_available()
    logger.info("echo cancellation: %s; noise suppression: %s", echo, SpeexNoise.name)
    pipeline = Pipeline(
        vad=vad_model,
        stt=stt_model,
        llm=chat_model,
        tts=tts_model,
        end_of_turn=turn_model,
        words_end_of_turn=words_model,
        load_seconds=seconds,
        input_cleanup={"echo_cancellation": echo, "noise_reduction": SpeexNoise.name},
        first_chunk_words=config.first_chunk_words,
        echo_mute=config.echo_mute,
    )
    if isinstance(chat_model, LlamaChat):
        chat_model.engine.others_busy = pipeline.busy
    return pipeline
