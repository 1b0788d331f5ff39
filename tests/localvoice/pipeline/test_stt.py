"""Whisper on real test speech: word error rate, silence."""

from __future__ import annotations

import numpy as np
import pytest

from tests.support.audio import speak, word_error_rate

pytestmark = pytest.mark.models


def pcm_to_float(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0


SENTENCES = [
    "What is the weather like in Paris today",
    "Can you recommend a good book about history",
    "Please set a timer for ten minutes",
    "How many people live in London",
    "Tell me a joke about computers",
]


def test_whisper_word_error_rate_on_espeak_speech(stt):
    errors = 0.0
    words = 0
    for sentence in SENTENCES:
        heard = stt.transcribe(pcm_to_float(speak(sentence, 16000)))
        wer = word_error_rate(sentence, heard)
        n = len(sentence.split())
        errors += wer * n
        words += n
        print(f"\n  {sentence!r} -> {heard!r} (WER {wer:.2f})")
    total = errors / words
    print(f"espeak-ng set: WER {total:.1%} over {words} words")
    assert total <= 0.20


def test_silence_transcribes_to_nothing_much(stt):
    assert len(stt.transcribe(np.zeros(16000, dtype=np.float32)).split()) <= 2
