"""Per-session input clean-up: echo cancellation and noise suppression before VAD and STT.

``input_audio_echo_cancellation`` subtracts the echo of the session's own output (played by
the client's loudspeaker and picked up by its microphone); ``input_audio_noise_reduction``
denoises what the voice activity detector hears and tells speech recognition when the room is
noisy (``noisy``), so that it transcribes with the model that copes with noise; recognition
itself hears the original, since no denoiser here made Whisper's words better (below). Both
are off until the session asks for them, as on Voice Live.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import soxr

from localvoice.pipeline.echo import EchoReference, SpeexEchoCanceller
from localvoice.pipeline.snr_gate import SnrGate
from localvoice.pipeline.stages import PIPELINE_RATE

# How much of Speex's output speech recognition gets, by the gate's SNR estimate: none. Measured
# with Whisper tiny.en on white, babble, fan and street noise at 20 and 10 dB (bench/stt_noise.py,
# docs/benchmarks.md), Speex mixed in around 20 dB cost more words than it saved in 6 of 8
# conditions; Whisper base on the original beat tiny.en in all 8.
GATE_CURVE: tuple[tuple[float, float], ...] = ((0.0, 0.0),)
# Below this estimated SNR (dB) the room is noisy. The gate's estimate reads 22-35 dB at 20 dB
# of white, babble, fan or street noise, 32-45 dB at 30 dB, and over 60 dB on clean speech
# (bench/stt_noise.py's clips).
NOISY_BELOW_DB = 36.0
# The SNR gate's mixing of Speex for speech recognition as it shipped until 2026-12-07 (it read
# the curve above as "Speex between 21 and 27 dB"); kept for the bench's comparison.
SPEEX_AROUND_20_DB: tuple[tuple[float, float], ...] = (
    (18.0, 0.0),
    (21.0, 1.0),
    (27.0, 1.0),
    (30.0, 0.0),
)


def make_denoiser(curve: tuple[tuple[float, float], ...] = GATE_CURVE) -> SnrGate:
    """Speex for the VAD, behind the SNR gate that estimates the room's noise.

    Speex is cheap and keeps noise from opening turns; the gate's ``curve`` says how much of it
    speech recognition hears (none, by default) and its estimate says whether the room is
    noisy (``snr_gate.py``).
    """
    from localvoice.pipeline.denoise import SpeexNoise

    return SnrGate(SpeexNoise(), curve)


class InputCleanup:
    """Echo canceller and denoiser of one session; ``process`` runs in a worker thread."""

    def __init__(self, echo_mute: bool = False) -> None:
        self.reference = EchoReference()
        self._echo_mute = echo_mute
        self._aec: SpeexEchoCanceller | None = None
        self._ns: SnrGate | None = None

    def noisy(self) -> bool:
        """Whether noise reduction is on and has found the room noisy (any thread may ask)."""
        estimate = self._ns.estimate_db if self._ns is not None else None
        return estimate is not None and estimate < NOISY_BELOW_DB

    @property
    def active(self) -> bool:
        """True when anything is switched on."""
        return self._aec is not None or self._ns is not None

    def configure(self, session: dict[str, Any]) -> None:
        """Follow the session's ``input_audio_echo_cancellation`` / ``_noise_reduction``."""
        if bool(session.get("input_audio_echo_cancellation")) != (self._aec is not None):
            if self._aec is not None:
                self._aec.close()
            self._aec = (
                SpeexEchoCanceller(self._echo_mute)
                if session.get("input_audio_echo_cancellation")
                else None
            )
        if bool(session.get("input_audio_noise_reduction")) != (self._ns is not None):
            if self._ns is not None:
                self._ns.close()
            self._ns = make_denoiser() if session.get("input_audio_noise_reduction") else None

    def play(self, pcm: bytes, rate: int, now: int) -> None:
        """The session sent output audio (PCM16 at ``rate``); ``now`` is the input position."""
        if self._aec is None:
            return
        audio = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
        if rate != PIPELINE_RATE:
            audio = np.asarray(soxr.resample(audio, rate, PIPELINE_RATE), dtype=np.float32)
        self.reference.play(audio, now)

    def stop(self, cut: int, now: int) -> None:
        """Playback was cut from input sample ``cut`` on (cancel, barge-in); input is at ``now``."""
        self.reference.stop(cut, now)

    def process(
        self, samples: npt.NDArray[np.float32], start: int
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """Clean input samples that start at input position ``start``; blocking.

        Returns:
            The audio for the VAD and the audio for STT (the same length).
        """
        for_vad = samples
        if self._aec is not None:
            far = self.reference.take(start, samples.size)
            for_vad, samples = self._aec.process(samples, far, self.reference.gate_power())
        if self._ns is not None:
            denoised, gated = self._ns.process_both(samples)
            # Both work in 10 ms frames, so the lengths agree; the VAD copes with noise itself.
            for_vad = for_vad[: denoised.size] if self._aec is not None else denoised
            samples = gated
        return for_vad, samples

    def close(self) -> None:
        """Free native state."""
        for part in (self._aec, self._ns):
            if part is not None:
                part.close()
        self._aec = self._ns = None
