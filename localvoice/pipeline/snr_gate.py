"""Noise suppression that never makes clean speech worse: denoise only as much as the room needs.

A denoiser trades distortion for noise. On clean speech it removes nothing useful and still
bends the words (tiny.en heard "Why is this guy blooring the day?" through Speex), and in a
very noisy room its own artefacts cost Whisper more words than the noise does. So the gate
estimates the signal-to-noise ratio as it goes and mixes the denoised and the original stream
by a curve of it, for speech recognition; the voice activity detector still gets the denoised
stream, where noise does the harm (``cleanup.py``). The curve is measured with
``bench/stt_noise.py`` (docs/benchmarks.md): no share of Speex helped Whisper, so the product's
curve is all zero, and its estimate (``estimate_db``) picks the recognition model instead.

The estimate uses the last few seconds of 10 ms frame levels: the noise floor is a low
percentile, the speech level a high one. Before anyone has spoken, a nominal speech level
stands in. The first half second passes untouched: the estimate needs that much of the room.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

FRAME = 160  # 10 ms at 16 kHz: the frame every denoiser here works in
WINDOW_FRAMES = 300  # 3 s of levels
SETTLE_FRAMES = 50  # the estimate means little before 0.5 s of the room is heard
ESTIMATE_EVERY = 10  # frames: two percentiles per 10 ms frame would cost 2 % of a core
NOMINAL_SPEECH_DB = -26.0  # dBFS of ordinary speech into a laptop microphone
FLOOR_DB = -100.0


class FrameDenoiser(Protocol):
    """A streaming denoiser of 16 kHz float32 audio that keeps the stream's timing."""

    def process(self, audio: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Denoise the next piece of the stream."""
        ...

    def close(self) -> None:
        """Free native state."""
        ...


class SnrGate:
    """Mix a denoiser's output with the original by the estimated SNR of the stream.

    Args:
        inner: the denoiser; fed whole 10 ms frames, it must return them one for one.
        curve: (estimated SNR in dB, share of the denoised stream) points, SNR ascending;
            the share is interpolated between them and held beyond the ends. The last point's
            share must be 0: a quiet room hears the original.
    """

    def __init__(self, inner: FrameDenoiser, curve: Sequence[tuple[float, float]]) -> None:
        snrs = [point[0] for point in curve]
        shares = [point[1] for point in curve]
        if not curve or snrs != sorted(snrs) or shares[-1] != 0.0:
            msg = "the curve needs ascending SNRs and must end with a share of 0"
            raise ValueError(msg)
        if not all(0.0 <= share <= 1.0 for share in shares):
            msg = "shares are between 0 and 1"
            raise ValueError(msg)
        self.inner = inner
        self.curve = tuple(curve)
        self._snrs = np.array(snrs, dtype=np.float64)
        self._shares = np.array(shares, dtype=np.float64)
        self._levels: deque[float] = deque(maxlen=WINDOW_FRAMES)
        self._pending = np.zeros(0, dtype=np.float32)
        #: The denoised stream's share of the output, 0.0-1.0 (smoothed over about 50 ms).
        self.wet = 0.0
        #: The latest SNR estimate in dB (None until the room has been heard for 0.5 s); a
        #: plain float, so another thread may read it while ``process`` runs.
        self.estimate_db: float | None = None
        self._target_share = 0.0
        self._frames = 0

    @property
    def name(self) -> str:
        """What the logs and the bench call it."""
        return f"{getattr(self.inner, 'name', 'denoiser')}, gated by SNR"

    def snr_db(self) -> float:
        """The current estimate: speech level minus noise floor, in dB."""
        levels = np.fromiter(self._levels, dtype=np.float64)
        noise_db = float(np.percentile(levels, 10))
        speech_db = max(float(np.percentile(levels, 95)), NOMINAL_SPEECH_DB)
        return speech_db - noise_db

    def _target(self) -> float:
        self.estimate_db = self.snr_db()
        return float(np.interp(self.estimate_db, self._snrs, self._shares))

    def process(self, audio: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """The next piece of the stream, gated; blocking (call it from a worker thread)."""
        return self.process_both(audio)[1]

    def process_both(
        self, audio: npt.NDArray[np.float32]
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """The next piece of the stream, denoised and gated (the same length); blocking."""
        data = np.concatenate([self._pending, audio])
        count = data.size // FRAME
        self._pending = data[count * FRAME :]
        if count == 0:
            empty = np.zeros(0, dtype=np.float32)
            return empty, empty
        dry = data[: count * FRAME]
        wet = self.inner.process(dry)
        frames = dry.reshape(count, FRAME)
        power = np.mean(frames.astype(np.float64) ** 2, axis=1)
        out = np.empty_like(dry)
        for index in range(count):
            self._levels.append(max(FLOOR_DB, 10 * float(np.log10(power[index] + 1e-12))))
            heard = len(self._levels)
            if heard >= SETTLE_FRAMES:
                if heard < WINDOW_FRAMES or self._frames % ESTIMATE_EVERY == 0:
                    self._target_share = self._target()
                step = (self._target_share - self.wet) * 0.2
                self.wet = self._target_share if abs(step) < 0.002 else self.wet + step
            self._frames += 1
            start, end = index * FRAME, (index + 1) * FRAME
            if self.wet == 0.0:
                out[start:end] = dry[start:end]
            else:
                out[start:end] = self.wet * wet[start:end] + (1 - self.wet) * dry[start:end]
        return wet, out

    def close(self) -> None:
        """Free the inner denoiser's native state."""
        self.inner.close()
