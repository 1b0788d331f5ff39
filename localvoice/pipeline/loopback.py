"""The ``--echo`` stage set: no models, and a session's input echoes its audio back.

Each ``input_audio_buffer.append`` is answered by a ``response.audio.delta`` with the **same
base64 text** (``turns/echo_input.py``); a ``response.create`` gets a text reply: its
``pre_generated_assistant_message``, or an empty one. Nothing here imports numpy or a model
library, so ``--echo`` starts in well under a second.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from localvoice.pipeline.llms.base import ChatFormat
from localvoice.pipeline.stages import ChatStats, Pipeline, SttOptions

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

VOICE = "joe"  # what the model pipeline's default voice is called, so voice names resolve alike


class SilentVad:
    """Never hears speech (an echoing input does not ask it)."""

    name = "none"
    window_samples = 512

    def acquire(self) -> SilentVad:
        """Itself: it has no state."""
        return self

    def release(self, stream: Any) -> None:
        """Nothing to return."""

    def probability(self, window: npt.NDArray[np.float32]) -> float:
        """Never speech."""
        return 0.0

    def reset(self) -> None:
        """No state."""


class NoStt:
    """Transcribes nothing."""

    name = "none"

    def transcribe(self, audio: npt.NDArray[np.float32], options: SttOptions | None = None) -> str:
        """Nothing."""
        return ""


class EmptyChat:
    """Replies with one empty piece (what a pre-generated empty message gives)."""

    name = "none"

    def __init__(self) -> None:
        self.format = ChatFormat()

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
        """One empty piece."""
        yield ""

    def prefill(self, messages: list[dict[str, str]]) -> None:
        """Nothing to prepare."""

    def starting(self) -> bool:
        """Never: there is no model."""
        return False


class Mute:
    """Has the default voice's name but never speaks (echo replies are text)."""

    voices = [VOICE]
    default_voice = VOICE

    def speaker(self, *, voice: str, length_scale: float | None, rate: int) -> Mute:
        """Itself: it has no state."""
        return self

    def speak(self, text: str) -> bytes:
        """No audio."""
        return b""


def echo_pipeline() -> Pipeline:
    """The ``--echo`` pipeline."""
    return Pipeline(
        vad=SilentVad(), stt=NoStt(), llm=EmptyChat(), tts=Mute(), speaks=False, echoes_input=True
    )
