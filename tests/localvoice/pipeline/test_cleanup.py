"""Input clean-up: with noise suppression on, the VAD hears the denoised stream, speech
recognition the original, and the session learns whether the room is noisy."""

from __future__ import annotations

import numpy as np

from localvoice.pipeline.cleanup import InputCleanup
from tests.localvoice.pipeline.test_snr_gate import talk


def run(cleanup: InputCleanup, audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pieces = [cleanup.process(audio[i : i + 320], i) for i in range(0, audio.size, 320)]
    return np.concatenate([p[0] for p in pieces]), np.concatenate([p[1] for p in pieces])


def test_off_until_asked_then_vad_denoised_and_stt_untouched_in_a_quiet_room() -> None:
    quiet = talk(2.0, noise_rms=0.00003)
    cleanup = InputCleanup()
    assert not cleanup.active
    cleanup.configure({"input_audio_noise_reduction": {"type": "azure_deep_noise_suppression"}})
    assert cleanup.active
    for_vad, for_stt = run(cleanup, quiet)
    np.testing.assert_array_equal(for_stt, quiet[: for_stt.size])
    assert not np.array_equal(for_vad, quiet[: for_vad.size])  # Speex worked on the VAD's copy
    assert not cleanup.noisy()
    cleanup.configure({"input_audio_noise_reduction": None})
    assert not cleanup.active
    cleanup.close()


def test_in_a_room_about_25_db_below_the_voice_stt_hears_the_original_and_it_is_noisy() -> None:
    noisy = talk(3.0, noise_rms=0.006)
    cleanup = InputCleanup()
    cleanup.configure({"input_audio_noise_reduction": {"type": "near_field"}})
    assert not cleanup.noisy()  # nothing heard yet
    for_vad, for_stt = run(cleanup, noisy)
    np.testing.assert_array_equal(for_stt, noisy[: for_stt.size])
    assert not np.array_equal(for_vad, noisy[: for_vad.size])
    assert cleanup.noisy()
    cleanup.configure({"input_audio_noise_reduction": None})
    assert not cleanup.noisy()  # switched off: nothing to tell
    cleanup.close()


def test_a_cut_from_a_later_position_keeps_the_reference_playing_before_it() -> None:
    from localvoice.pipeline.echo import EchoReference

    reference = EchoReference()
    first, second = np.full(1600, 0.1, np.float32), np.full(1600, 0.2, np.float32)
    reference.play(first, now=0)
    reference.play(second, now=0)  # queued behind the first: samples 1600-3200
    reference.stop(1600, now=400)  # the second is cancelled before it plays
    kept = reference.take(400, 2800)
    assert np.all(kept[:1200] == np.float32(0.1))
    assert not kept[1200:].any()
    reference.stop(0, now=800)  # a barge-in: the cut is now, not in the past
    assert not reference.take(800, 800).any()
