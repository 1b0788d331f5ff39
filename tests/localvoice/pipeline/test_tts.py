"""Piper: speech Whisper understands, resampled by the stage to the response's rate."""

from __future__ import annotations

import numpy as np
import pytest
import soxr

from tests.support.audio import word_error_rate

pytestmark = pytest.mark.models


def test_piper_round_trip_is_intelligible(stt, tts):
    text = "The weather in Paris is mild and partly cloudy today."
    audio = tts.synthesize(text, voice="joe", length_scale=None)
    assert audio.dtype == np.int16
    assert audio.size > tts.sample_rate("joe")
    at24 = soxr.resample(audio, tts.sample_rate("joe"), 24000)
    assert at24.dtype == np.int16
    assert abs(at24.size / 24000 - audio.size / 22050) < 0.05
    heard = stt.transcribe(soxr.resample(audio, 22050, 16000).astype(np.float32) / 32768.0)
    wer = word_error_rate(text, heard)
    print(f"\npiper -> whisper: {heard!r} WER {wer:.2f}")
    assert wer <= 0.2


def test_piper_speaker_resamples_to_the_response_rate(tts):
    """The TTS stage resamples: two chunks at 24 kHz last as long as they do at 22.05 kHz."""
    native = [tts.synthesize(t, voice="joe", length_scale=None) for t in ("Hello.", "Goodbye.")]
    for rate in (24000, 16000, 8000):
        speaker = tts.speaker(voice="joe", length_scale=None, rate=rate)
        pcm = b"".join(speaker.speak(t) for t in ("Hello.", "Goodbye."))
        seconds = sum(a.size for a in native) / tts.sample_rate("joe")
        # Piper's durations vary a little from run to run, and the streaming resampler holds
        # back its filter delay (tens of ms).
        assert abs(len(pcm) / 2 / rate - seconds) < 0.15
