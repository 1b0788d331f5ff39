"""The pipeline's stages by name: a new VAD, STT, LLM engine or TTS is one module and one line here.

Each entry is a factory that takes the :class:`ServerConfig` and returns the stage loaded and
warmed up. The bundled entries name their factory as ``"module:function"`` and import it on
first use, so the command line and ``--echo`` never import a model library. Tests put their own
factories in these tables. Chat models (prompt format, sampling policy, weights) have their own
registry, ``pipeline/llms/registry.py``; the LLM engine here runs whichever one is chosen.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from localvoice.config import ServerConfig
    from localvoice.pipeline.llms.base import ChatFormat
    from localvoice.pipeline.stages import (
        ChatModel,
        EndOfTurnModel,
        SpeechToText,
        TextToSpeech,
        VadModel,
    )

VadFactory = Callable[["ServerConfig"], "VadModel"]
SttFactory = Callable[["ServerConfig"], "SpeechToText"]
#: Also given the chat model's format and its GGUF (``None`` for an endpoint).
LlmFactory = Callable[["ServerConfig", "ChatFormat", Path | None], "ChatModel"]
TtsFactory = Callable[["ServerConfig"], "TextToSpeech"]
EndOfTurnFactory = Callable[["ServerConfig"], "EndOfTurnModel"]
T = TypeVar("T")


def lazy(target: str) -> Any:
    """A factory that imports ``module:function`` when it is first called."""
    module, _, name = target.partition(":")

    def factory(*args: Any) -> Any:
        return getattr(importlib.import_module(module), name)(*args)

    factory.__qualname__ = target
    return factory


VAD: dict[str, VadFactory] = {
    "silero": lazy("localvoice.pipeline.vad:load"),
}
STT: dict[str, SttFactory] = {
    "tiny.en": lazy("localvoice.pipeline.stt:load"),
    "base": lazy("localvoice.pipeline.stt:load"),
}
LLM: dict[str, LlmFactory] = {
    "llama.cpp": lazy("localvoice.pipeline.llm:load_llama"),
    "openai-compatible": lazy("localvoice.pipeline.llm:load_openai_compatible"),
}
TTS: dict[str, TtsFactory] = {
    "piper": lazy("localvoice.pipeline.tts:load"),
}
END_OF_TURN: dict[str, EndOfTurnFactory] = {
    "smart-turn-v3.2": lazy("localvoice.pipeline.smart_turn:load"),
}


def llm_engine(config: ServerConfig) -> str:
    """The LLM engine a configuration asks for: an endpoint with ``--llm-url``, else llama.cpp."""
    return "openai-compatible" if config.llm_url else "llama.cpp"


def choose(table: dict[str, T], kind: str, name: str) -> T:
    """A registry entry by name.

    Raises:
        KeyError: unknown name (the message lists the known ones).
    """
    try:
        return table[name]
    except KeyError:
        msg = f"unknown {kind} {name!r}; choose one of {', '.join(table)}"
        raise KeyError(msg) from None
