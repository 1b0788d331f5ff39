"""Silero VAD hears speech only in speech."""

from __future__ import annotations

import numpy as np
import pytest

from tests.support.audio import speak

pytestmark = pytest.mark.models


def pcm_to_float(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0


def test_vad_finds_speech_only_in_speech():
    from localvoice.pipeline.vad import SileroVadModel

    model = SileroVadModel(preload=1)
    stream = model.acquire()
    speech = pcm_to_float(speak("Hello there, how are you", 16000))
    quiet = np.zeros(16000, dtype=np.float32)
    n = stream.window_samples

    def probs(audio):
        return [stream.probability(audio[i : i + n]) for i in range(0, audio.size - n + 1, n)]

    assert max(probs(quiet)) < 0.3
    assert max(probs(speech)) > 0.8
    model.release(stream)
