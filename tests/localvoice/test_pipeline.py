"""The real models on real test speech: word error rate, and assistant audio that decodes."""

from __future__ import annotations

import numpy as np
import pytest
import soxr

from tests.support.audio import speak, word_error_rate

pytestmark = pytest.mark.models

SENTENCES = [
    "What is the weather like in Paris today",
    "Can you recommend a good book about history",
    "Please set a timer for ten minutes",
    "How many people live in London",
    "Tell me a joke about computers",
]


@pytest.fixture(scope="module")
def stt():
    from localvoice.pipeline.stt import WhisperStt

    return WhisperStt(cpu_threads=2)


@pytest.fixture(scope="module")
def tts():
    from localvoice.pipeline.tts import PiperTts

    return PiperTts()


def _float(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0


def test_whisper_word_error_rate_on_espeak_speech(stt):
    errors = 0.0
    words = 0
    for sentence in SENTENCES:
        heard = stt.transcribe(_float(speak(sentence, 16000)))
        wer = word_error_rate(sentence, heard)
        n = len(sentence.split())
        errors += wer * n
        words += n
        print(f"\n  {sentence!r} -> {heard!r} (WER {wer:.2f})")
    total = errors / words
    print(f"espeak-ng set: WER {total:.1%} over {words} words")
    assert total <= 0.20


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


def test_silence_transcribes_to_nothing_much(stt):
    assert len(stt.transcribe(np.zeros(16000, dtype=np.float32)).split()) <= 2


def test_vad_finds_speech_only_in_speech():
    from localvoice.pipeline.vad import SileroVadModel

    model = SileroVadModel(preload=1)
    stream = model.acquire()
    speech = _float(speak("Hello there, how are you", 16000))
    quiet = np.zeros(16000, dtype=np.float32)
    n = stream.window_samples

    def probs(audio):
        return [stream.probability(audio[i : i + n]) for i in range(0, audio.size - n + 1, n)]

    assert max(probs(quiet)) < 0.3
    assert max(probs(speech)) > 0.8
    model.release(stream)


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
