"""The SNR gate: the original in a quiet room, the denoised stream in a noisy one."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from localvoice.pipeline.cleanup import GATE_CURVE, NOISY_BELOW_DB, make_denoiser
from localvoice.pipeline.denoise import SpeexNoise
from localvoice.pipeline.snr_gate import FRAME, FrameDenoiser, SnrGate

RATE = 16000
# Denoised alone below 15 dB, the original alone from 30 dB.
RAMP = ((15.0, 1.0), (30.0, 0.0))


class Halver:
    """A stand-in denoiser whose output is easy to recognise: half the input."""

    closed = False

    def process(self, audio: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        return (audio * 0.5).astype(np.float32)

    def close(self) -> None:
        self.closed = True


def talk(seconds: float, noise_rms: float, seed: int = 0) -> npt.NDArray[np.float32]:
    """The room for 0.6 s, then bursts of a 'voice' (a 300 Hz tone at -20 dBFS, 400 ms on /
    200 ms off) over its noise."""
    t = np.arange(int(seconds * RATE)) / RATE
    voice = 0.14 * np.sin(2 * np.pi * 300 * t) * ((t % 0.6) < 0.4) * (t >= 0.6)
    noise = np.random.default_rng(seed).standard_normal(t.size) * noise_rms
    return (voice + noise).astype(np.float32)


def stream(
    gate: FrameDenoiser, audio: npt.NDArray[np.float32], piece: int
) -> npt.NDArray[np.float32]:
    return np.concatenate([gate.process(audio[i : i + piece]) for i in range(0, audio.size, piece)])


def test_a_quiet_room_passes_the_original_untouched() -> None:
    audio = talk(3.0, noise_rms=0.0003)  # a noise floor near -70 dBFS
    gate = SnrGate(Halver(), RAMP)
    out = stream(gate, audio, piece=320)
    assert gate.wet == 0.0
    np.testing.assert_array_equal(out, audio[: out.size])


def test_a_noisy_room_gets_the_denoised_stream() -> None:
    audio = talk(3.0, noise_rms=0.05)  # about 9 dB below the voice
    gate = SnrGate(Halver(), RAMP)
    out = stream(gate, audio, piece=320)
    assert gate.wet > 0.99
    tail = slice(out.size - RATE, out.size)
    np.testing.assert_allclose(out[tail], audio[tail] * 0.5, rtol=0.02, atol=1e-4)


def test_in_between_it_blends_by_the_estimated_snr() -> None:
    gate = SnrGate(Halver(), RAMP)
    stream(gate, talk(3.0, noise_rms=0.006), piece=320)  # about 27 dB below the voice
    assert 0.0 < gate.wet < 1.0
    assert 15 < gate.snr_db() < 30


@pytest.mark.parametrize("piece", [1, 159, 160, 161, 480, 7000])
def test_any_piece_size_keeps_the_stream_in_order(piece: int) -> None:
    audio = talk(1.0, noise_rms=0.0003)
    gate = SnrGate(Halver(), RAMP)
    out = stream(gate, audio, piece)
    assert out.size == audio.size // FRAME * FRAME
    np.testing.assert_array_equal(out, audio[: out.size])


@pytest.mark.parametrize(
    "curve",
    [(), ((30.0, 0.0), (15.0, 1.0)), ((15.0, 1.0), (30.0, 0.2)), ((15.0, 1.5), (30.0, 0.0))],
)
def test_a_curve_must_rise_in_snr_end_at_zero_and_stay_in_range(curve: Any) -> None:
    with pytest.raises(ValueError, match="curve|shares"):
        SnrGate(Halver(), curve)


def test_close_frees_the_denoiser() -> None:
    inner = Halver()
    SnrGate(inner, RAMP).close()
    assert inner.closed


def test_the_product_denoiser_is_speex_behind_a_closed_gate_that_estimates_the_room() -> None:
    denoiser = make_denoiser()
    assert isinstance(denoiser, SnrGate)
    assert isinstance(denoiser.inner, SpeexNoise)
    assert denoiser.curve == GATE_CURVE
    quiet = talk(2.0, noise_rms=0.00003)  # a floor 50 dB below even a quiet voice
    np.testing.assert_array_equal(stream(denoiser, quiet, 320), quiet[: quiet.size // 160 * 160])
    assert denoiser.estimate_db is not None
    assert denoiser.estimate_db > NOISY_BELOW_DB
    denoiser.close()
    denoiser = make_denoiser()  # a new session, in a room about 25 dB below the voice
    noisy = talk(3.0, noise_rms=0.006)
    wet, out = zip(
        *(denoiser.process_both(noisy[i : i + 320]) for i in range(0, noisy.size, 320)),
        strict=False,
    )
    out_audio = np.concatenate(out)
    np.testing.assert_array_equal(out_audio, noisy[: out_audio.size])  # STT: the original
    assert denoiser.estimate_db is not None
    assert denoiser.estimate_db < NOISY_BELOW_DB
    denoised = np.concatenate(wet)  # what the VAD hears
    gaps = [(t % 0.6) >= 0.45 for t in np.arange(denoised.size) / RATE]  # between the bursts
    quieter = np.std(denoised[gaps][-RATE // 4 :])
    assert quieter < 0.5 * np.std(noisy[: denoised.size][gaps][-RATE // 4 :])
    denoiser.close()
