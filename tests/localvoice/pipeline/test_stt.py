"""Whisper on real test speech: word error rate, silence."""

from __future__ import annotations

import re

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


# Issue 24: tiny.en hears en-us's question as "What is the capital and friends?" every time;
# Whisper base hears "capital on France" here but "and friends" through the engine's 24 kHz path
# (bench.turn_latency) and "Unfranc" after a pause (test_conformance). Not met: strict xfail.
EN_US = pytest.param(
    "en-us", marks=pytest.mark.xfail(strict=True, reason="issue 24: heard as 'and friends'")
)


@pytest.mark.parametrize("voice", [EN_US, "en-gb", "en-us+f3", "en-gb-scotland", "en-029"])
def test_the_capital_of_france_is_heard_in_every_espeak_voice(stt, voice):
    """The question's words are heard: "What is the capital of France?" in espeak-ng voices.

    espeak-ng says "of France" as one cluster ("Vv fr'aans"): both Whisper models often write
    "on France", which the chat model still answers; the words that carry the question must
    be there.
    """
    question = speak("What is the capital of France?", 16000, voice=voice)
    heard = stt.transcribe(pcm_to_float(question))
    assert re.search(r"\bcapital (of|on) france\b", heard.lower()), heard


def test_silence_transcribes_to_nothing_much(stt):
    assert len(stt.transcribe(np.zeros(16000, dtype=np.float32)).split()) <= 2


def test_french_is_transcribed_in_french_when_the_session_says_so(stt):
    from localvoice.pipeline.stages import SttOptions

    french = pcm_to_float(speak("Quelle est la capitale de la France ?", 16000, voice="fr"))
    if stt.model == "tiny.en":
        assert "capitale" not in stt.transcribe(french).lower()  # tiny.en cannot do French
    for languages in (("fr",), ("en", "fr")):
        heard = stt.transcribe(french, SttOptions(languages=languages))
        assert "capitale de la france" in heard.lower(), (languages, heard)
    english = pcm_to_float(speak("What is the capital of France", 16000))
    heard = stt.transcribe(english, SttOptions(("en", "fr")))
    assert word_error_rate("What is the capital of France", heard) <= 0.2, heard


def test_the_phrase_list_gives_product_names_their_spelling(tts, stt):
    import soxr

    from localvoice.pipeline.stages import SttOptions

    names = ("Voxtrel", "Zyntra", "Klarvio")
    sentences = [f"I would like to order a {n} speaker." for n in names]
    with_list = 0
    without = 0
    for sentence, name in zip(sentences, names, strict=True):
        pcm = tts.synthesize(sentence, voice="joe", length_scale=None)
        audio = soxr.resample(pcm.astype(np.float32) / 32768.0, tts.sample_rate("joe"), 16000)
        without += name in stt.transcribe(audio)
        with_list += name in stt.transcribe(audio, SttOptions(phrases=names))
    print(f"product names spelled right: {without}/3 without the list, {with_list}/3 with it")
    assert with_list > without


def test_a_noisy_room_is_transcribed_by_whisper_base_loaded_in_the_background(stt):
    """``SttOptions(noisy=True)`` (the session's noise reduction found the room noisy): English
    goes to Whisper base, which loses fewer words in noise (docs/benchmarks.md)."""
    from localvoice.pipeline.stages import SttOptions

    rng = np.random.default_rng(7)
    clips = []
    for sentence in SENTENCES:
        clean = pcm_to_float(speak(sentence, 16000))
        noise = rng.standard_normal(clean.size).astype(np.float32)
        clips.append(clean + noise * np.sqrt(np.mean(clean**2) / 10))  # white noise, 10 dB SNR
    stt.transcribe(clips[0], SttOptions(noisy=True))  # starts loading base if it is not yet
    if stt._background is not None:
        stt._background.join(timeout=60)
    plain = sum(
        word_error_rate(s, stt.transcribe(c)) for s, c in zip(SENTENCES, clips, strict=True)
    )
    noisy = sum(
        word_error_rate(s, stt.transcribe(c, SttOptions(noisy=True)))
        for s, c in zip(SENTENCES, clips, strict=True)
    )
    print(f"WER at 10 dB: {plain / len(clips):.2f} as usual, {noisy / len(clips):.2f} as noisy")
    assert noisy < plain
