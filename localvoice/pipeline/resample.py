"""Speech at the client's rate: a TTS stage's native output, resampled as one continuous stream."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import soxr


class ResampledSpeaker:
    """One response's speaker: each chunk synthesised natively, then resampled to ``rate``.

    One streaming resampler per response, so the joins between chunks stay seamless.

    Args:
        synthesize: speaks a text as int16 PCM at ``native`` Hz (blocking).
        native: the voice's own rate.
        rate: the rate the client asked for.
    """

    def __init__(
        self, synthesize: Callable[[str], npt.NDArray[np.int16]], native: int, rate: int
    ) -> None:
        self._synthesize = synthesize
        self._resampler = soxr.ResampleStream(native, rate, 1, "int16")

    def speak(self, text: str) -> bytes:
        """PCM16 little-endian at the client's rate; blocking, call it from a worker thread."""
        pcm = self._synthesize(text)
        return np.asarray(self._resampler.resample_chunk(pcm), dtype="<i2").tobytes()
