"""Fake pipeline stages: instant, deterministic, no model loaded.

They follow the Protocols of ``localvoice/pipeline/stages.py`` and are put in place either
through ``localvoice/pipeline/registry.py`` (``fake_registry``) or by building a ``Pipeline``
from them (``fake_pipeline``).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from localvoice.config import ServerConfig
from localvoice.pipeline import registry
from localvoice.pipeline.llms.base import ChatFormat
from localvoice.pipeline.resample import ResampledSpeaker
from localvoice.pipeline.stages import ChatStats, Pipeline, SttOptions

WINDOW = 512
TTS_RATE = 16000

#: A function tool in the session's wire form, for the turn engine's tool tests.
WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "name": "get_weather",
    "description": "Get the current weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


class FakeVadStream:
    """Speech is any window whose mean level is above 0.05 (tests send a tone or zeros)."""

    window_samples = WINDOW

    def probability(self, window: npt.NDArray[np.float32]) -> float:
        return 0.9 if float(np.abs(window).mean()) > 0.05 else 0.0

    def reset(self) -> None:
        pass


class FakeVad:
    name = "fake vad"

    def __init__(self) -> None:
        self.acquired = 0
        self.released = 0

    def acquire(self) -> FakeVadStream:
        self.acquired += 1
        return FakeVadStream()

    def release(self, stream: Any) -> None:
        self.released += 1


class FakeStt:
    """Transcribes every utterance as ``text``; ``heard`` counts the calls (partials included).

    ``options`` keeps the options of each call (language, phrase list).
    """

    name = "fake stt"

    def __init__(self, text: str = "what time is it") -> None:
        self.text = text
        self.heard: list[int] = []
        self.options: list[SttOptions | None] = []

    def transcribe(self, audio: npt.NDArray[np.float32], options: SttOptions | None = None) -> str:
        self.heard.append(int(audio.size))
        self.options.append(options)
        return self.text if audio.size else ""


class FakeTurnModel:
    """P(complete) is ``complete`` (change it between calls); ``calls`` counts the checks."""

    name = "fake end of turn"

    def __init__(self, complete: float = 0.9) -> None:
        self.complete = complete
        self.calls = 0

    def probability(self, audio: npt.NDArray[np.float32]) -> float:
        self.calls += 1
        return self.complete


class FakeWordsModel:
    """P(finished) of the words is ``finished``; ``calls`` keeps each (words, context) asked."""

    name = "fake words end of turn"

    def __init__(self, finished: float = 0.01) -> None:
        self.finished = finished
        self.calls: list[tuple[str, str]] = []

    def probability(self, words: str, context: str = "") -> float:
        self.calls.append((words, context))
        return self.finished


class FakeChat:
    """Streams ``reply`` word by word; ``gate`` (when set) holds each token until it is opened."""

    name = "fake chat"

    def __init__(
        self, reply: str = "It is noon. Have a nice day.", chat_format: ChatFormat | None = None
    ) -> None:
        self.format = chat_format or ChatFormat()
        #: What each stream says; more than one: the next stream says the next one.
        self.replies = [reply]
        self.prompts: list[list[dict[str, str]]] = []
        self.temperatures: list[float] = []
        self.gate: threading.Event | None = None
        #: What each ``prefill`` was asked to prepare.
        self.prefills: list[list[dict[str, str]]] = []
        #: What ``starting`` says: another session's reply waits for its first tokens.
        self.replies_starting = False
        #: Whether each ``stream`` was told tools were offered.
        self.tools_offered: list[bool] = []
        #: Seconds between two words (a model slower than the voice speaks).
        self.word_gap_s = 0.0

    async def stream(
        self,
        messages: list[dict[str, str]],
        *,
        temperature: float,
        max_tokens: int,
        cancel: threading.Event,
        stats: ChatStats,
        tools_offered: bool = False,
    ) -> AsyncIterator[str]:
        self.prompts.append(messages)
        self.tools_offered.append(tools_offered)
        self.temperatures.append(temperature)
        stats.prompt_tokens = sum(len(m["content"].split()) for m in messages)
        stats.first_token_ms = 1.0
        reply = self.replies[min(len(self.prompts), len(self.replies)) - 1]
        for word in reply.split(" "):
            while self.gate is not None and not self.gate.is_set():
                await asyncio.sleep(0.005)
            if cancel.is_set():
                return
            stats.completion_tokens += 1
            yield word + " "
            if self.word_gap_s:
                await asyncio.sleep(self.word_gap_s)

    def prefill(self, messages: list[dict[str, str]]) -> None:
        self.prefills.append(messages)

    def starting(self) -> bool:
        return self.replies_starting


class FakeTts:
    """10 ms of a quiet tone per character, at 16 kHz."""

    voices = ["joe"]
    default_voice = "joe"

    def __init__(self) -> None:
        self.spoken: list[str] = []

    def speaker(self, *, voice: str, length_scale: float | None, rate: int) -> ResampledSpeaker:
        return ResampledSpeaker(
            lambda text: self.synthesize(text, voice=voice, length_scale=length_scale),
            TTS_RATE,
            rate,
        )

    def synthesize(
        self, text: str, *, voice: str, length_scale: float | None
    ) -> npt.NDArray[np.int16]:
        self.spoken.append(text)
        return np.full(len(text) * TTS_RATE // 100, 100, dtype=np.int16)


def fake_pipeline(**stages: Any) -> Pipeline:
    """A ``Pipeline`` of fake stages; pass ``stt=FakeStt("...")`` and so on to replace one."""
    parts: dict[str, Any] = {
        "vad": FakeVad(),
        "stt": FakeStt(),
        "llm": FakeChat(),
        "tts": FakeTts(),
        "end_of_turn": FakeTurnModel(),
        **stages,
    }
    return Pipeline(**parts)


def fake_registry(monkeypatch: pytest.MonkeyPatch, **stages: Any) -> ServerConfig:
    """Register the fake stages under ``fake`` and return a configuration that picks them."""
    pipeline = fake_pipeline(**stages)
    monkeypatch.setitem(registry.VAD, "fake", lambda config: pipeline.vad)
    monkeypatch.setitem(registry.STT, "fake", lambda config: pipeline.stt)
    monkeypatch.setitem(registry.TTS, "fake", lambda config: pipeline.tts)
    monkeypatch.setitem(registry.END_OF_TURN, "fake", lambda config: pipeline.end_of_turn)
    monkeypatch.setitem(registry.LLM, "llama.cpp", lambda config, fmt, path: pipeline.llm)
    return ServerConfig(
        vad="fake", stt="fake", tts="fake", end_of_turn="fake", llm_model=Path("fake.gguf")
    )
