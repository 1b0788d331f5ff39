"""espeak-ng's French voice (piper-tts's libespeak-ng): French Whisper hears, beside Piper."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import soxr

from localvoice.pipeline.stages import SttOptions

pytestmark = pytest.mark.models

FRENCH = SttOptions(languages=("fr",))
QUESTION = "Bonjour, quelle est la capitale de la France ?"


@pytest.fixture(scope="module")
def espeak():
    from localvoice.pipeline.espeak_tts import EspeakTts

    return EspeakTts()


def heard(stt, pcm: np.ndarray, rate: int, options: SttOptions | None = None) -> str:
    audio = soxr.resample(pcm.astype(np.float32) / 32768.0, rate, 16000)
    padded = np.concatenate([np.zeros(4800, np.float32), audio, np.zeros(4800, np.float32)])
    return stt.transcribe(padded.astype(np.float32), options).lower()


def test_the_french_voice_speaks_french_that_whisper_hears_in_french(stt, espeak):
    assert espeak.voices == ["espeak-fr"]
    pcm = espeak.synthesize(QUESTION, voice="espeak-fr", length_scale=None)
    assert pcm.dtype == np.int16
    assert espeak.sample_rate("espeak-fr") == 22050
    assert 1.2 < pcm.size / 22050 < 5
    text = heard(stt, pcm, 22050, FRENCH)
    print(f"\nespeak-fr -> whisper base (fr): {text!r}")
    assert "capitale" in text, text
    assert "france" in text, text


def test_the_speaker_resamples_and_length_scale_slows_it_down(espeak):
    native = espeak.synthesize("Bonjour.", voice="espeak-fr", length_scale=None).size / 22050
    for rate in (24000, 16000, 8000):
        speaker = espeak.speaker(voice="espeak-fr", length_scale=None, rate=rate)
        seconds = len(b"".join(speaker.speak(t) for t in ("Bonjour.", "Au revoir."))) / 2 / rate
        assert native < seconds < 4 * native + 0.5
    slow = espeak.synthesize("Il fait beau aujourd'hui.", voice="espeak-fr", length_scale=1.6)
    normal = espeak.synthesize("Il fait beau aujourd'hui.", voice="espeak-fr", length_scale=None)
    assert slow.size > 1.3 * normal.size
    # An unknown name speaks with the default voice rather than failing mid-reply.
    assert espeak.synthesize("Oui.", voice="nobody", length_scale=None).size > 0


def test_an_unknown_espeak_voice_is_refused_at_load():
    from localvoice.pipeline.espeak_tts import EspeakError, EspeakTts

    with pytest.raises(EspeakError, match="no voice"):
        EspeakTts({"x": "xx-not-a-language"})


def test_piper_and_espeak_share_the_library_from_two_threads(stt, tts, espeak):
    """Piper phonemizes English with the same libespeak-ng: neither may disturb the other.

    Without the shared lock this fails: in each of three runs, 4-5 French sentences came out
    with another length and as many English phonemizations changed.
    """
    joe = tts._voices["joe"]  # the PiperVoice: its phonemizer is the part that uses espeak-ng
    english = "The weather is nice today, and tomorrow it will rain in Paris and London."
    french = "Bonjour, quelle est la capitale de la France ? Il fait beau aujourd'hui."
    alone_phonemes = joe.phonemize(english)
    alone_french = espeak.synthesize(french, voice="espeak-fr", length_scale=None).size
    changed: list[bool] = []
    spoken: list[np.ndarray] = []

    def phonemize_english() -> None:
        changed.extend(joe.phonemize(english) != alone_phonemes for _ in range(300))

    def speak_french() -> None:
        spoken.extend(
            espeak.synthesize(french, voice="espeak-fr", length_scale=None) for _ in range(20)
        )

    threads = [threading.Thread(target=phonemize_english), threading.Thread(target=speak_french)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (len(changed), sum(changed)) == (300, 0)
    # Each French sentence kept its voice and speed (it varies by a few samples call to call).
    assert [abs(a.size - alone_french) < 0.02 * alone_french for a in spoken] == [True] * 20
    assert "capitale" in heard(stt, spoken[-1], 22050, FRENCH)


def test_the_tts_stage_speaks_french_names_with_espeak_and_the_rest_with_piper(tts, espeak):
    from localvoice.pipeline.tts import VoiceSet

    stage = VoiceSet(tts, espeak)
    assert stage.voices == ["espeak-fr", "joe"]
    assert stage.default_voice == "joe"
    assert stage.sample_rate("espeak-fr") == 22050
    assert stage.sample_rate("anyone") == tts.sample_rate("joe")
    pcm = stage.speaker(voice="espeak-fr", length_scale=None, rate=24000).speak("Bonjour.")
    assert len(pcm) > 24000 * 2 // 5
