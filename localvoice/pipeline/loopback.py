"""The ``--echo`` stage set: no models, appended audio comes straight back.

Each ``input_audio_buffer.append`` is answered by a ``response.audio.delta`` with the **same
base64 text** (byte-exact, for relay load tests). There is no VAD and nothing to commit; a
``response.create`` gets a text reply: its ``pre_generated_assistant_message``, or an empty one.
Nothing here imports numpy or a model library, so ``--echo`` starts in well under a second.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

from localvoice.events import new_id
from localvoice.llms.base import ChatFormat
from localvoice.pipeline.base import ChatStats, Pipeline
from localvoice.signals import Echoed, Signal

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from localvoice.session import TurnDetection
    from localvoice.signals import Committed, SessionInput

VOICE = "joe"  # what the model pipeline's default voice is called, so voice names resolve alike


class EchoInput:
    """A session input that sends every append back (one response and item id per session)."""

    def __init__(self) -> None:
        self._ids = (new_id("resp"), new_id("item"))

    async def append(self, audio: str) -> list[Signal]:
        """The same base64 text back, undecoded, so the client gets identical bytes."""
        return [Echoed(*self._ids, audio)]

    def commit(self) -> Committed | None:
        """Nothing is ever buffered."""
        return None

    def clear(self) -> None:
        """Nothing to drop."""

    def configure(self, rate: int, turn: TurnDetection | None, session: dict[str, Any]) -> None:
        """No VAD and no clean-up to configure."""

    def played(self, pcm: bytes, rate: int) -> None:
        """No echo canceller."""

    def playback_cut(self) -> None:
        """No echo canceller."""

    def close(self) -> None:
        """Nothing to free."""


class SilentVad:
    """Never hears speech (``EchoInput`` does not ask it)."""

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

    def transcribe(self, audio: npt.NDArray[np.float32]) -> str:
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
    ) -> AsyncIterator[str]:
        """One empty piece."""
        yield ""

    def prefill(self, messages: list[dict[str, str]]) -> None:
        """Nothing to prepare."""


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


class EchoPipeline(Pipeline):
    """The stages of ``--echo``: input echoed, text-only replies, nothing loaded."""

    def open_input(self, on_partial: Callable[[str, str], Awaitable[None]]) -> SessionInput:
        """An input that echoes every append."""
        return EchoInput()

    def describe(self) -> dict[str, Any]:
        """No models: ``/healthz`` shows an empty ``models``."""
        return {}


def echo_pipeline() -> EchoPipeline:
    """The ``--echo`` pipeline."""
    return EchoPipeline(vad=SilentVad(), stt=NoStt(), llm=EmptyChat(), tts=Mute(), speaks=False)
