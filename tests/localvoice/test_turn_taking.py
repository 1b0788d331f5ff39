"""Turn-taking settings through the real SDK against a real localvoice (Smart Turn, Whisper).

Every field of issue 21 is accepted, echoed as the SDK parses it, and behaves: a sentence with
a pause in the middle is one turn with semantic detection and two with server VAD at 500 ms,
also where only the words (the chat model) tell that the sentence goes on,
``timeout_ms`` bounds the wait, the language and the phrase list reach Whisper. The exact
rules, on fake stages: ``turns/test_audio_input.py``.
"""

from __future__ import annotations

import asyncio
import functools

import numpy as np
import pytest
from azure.ai.voicelive.models import (
    AudioInputTranscriptionOptions,
    AzureSemanticDetection,
    AzureSemanticVadMultilingual,
    RequestSession,
    ServerVad,
)

from tests.support.audio import silence, speak
from tests.support.localvoice import healthz, next_event, send_audio, voicelive_session

pytestmark = [pytest.mark.integration, pytest.mark.models]

RATE = 24000


@functools.cache
def piper(text: str) -> bytes:
    """The bundled Piper voice at 24 kHz, trimmed (Smart Turn judges prosody: not espeak's)."""
    import soxr

    tts = _tts()
    pcm = tts.synthesize(text, voice="joe", length_scale=None)
    audio = soxr.resample(pcm.astype(np.float32) / 32768.0, tts.sample_rate("joe"), RATE)
    loud = np.flatnonzero(np.abs(audio) > 0.01)
    return (audio[loud[0] : loud[-1]] * 32767).astype("<i2").tobytes()


@functools.cache
def _tts():
    from localvoice.pipeline.tts import PiperTts

    return PiperTts(threads=1)


def semantic(timeout_ms: int = 2000) -> dict:
    return {
        "type": "azure_semantic_vad",
        "silence_duration_ms": 500,
        "end_of_utterance_detection": {"model": "semantic_detection_v1", "timeout_ms": timeout_ms},
    }


async def commits_while_speaking(conn, audio: bytes, settle_s: float) -> list:
    """Stream ``audio`` in real time, then ``settle_s`` of silence; the committed events."""
    seen: list = []

    async def collect() -> None:
        while True:
            seen.append(await conn.recv())

    reader = asyncio.create_task(collect())
    await send_audio(conn, audio + silence(int(settle_s * 1000)), speed=1.0)
    reader.cancel()
    return [e for e in seen if e.type == "input_audio_buffer.committed"]


async def test_every_turn_taking_field_is_accepted_and_echoed(localvoice_models):
    session = RequestSession(
        turn_detection=AzureSemanticVadMultilingual(
            threshold=0.4,
            prefix_padding_ms=200,
            silence_duration_ms=300,
            speech_duration_ms=120,
            remove_filler_words=True,
            languages=["en-US", "fr-FR"],
            auto_truncate=True,
            create_response=False,
            interrupt_response=False,
            end_of_utterance_detection=AzureSemanticDetection(
                threshold_level="high", timeout_ms=900
            ),
        ),
        input_audio_transcription=AudioInputTranscriptionOptions(
            model="azure-speech", language="en,fr", phrase_list=["Contoso", "Voxtrel"]
        ),
    )
    async with voicelive_session(localvoice_models) as conn:
        await conn.session.update(session=session)
        td = (await next_event(conn, "session.updated")).session.turn_detection
        assert td.type == "azure_semantic_vad_multilingual"
        assert (td.threshold, td.prefix_padding_ms, td.silence_duration_ms) == (0.4, 200, 300)
        assert (td.speech_duration_ms, td.remove_filler_words, td.languages) == (
            120,
            True,
            ["en-US", "fr-FR"],
        )
        assert (td.auto_truncate, td.create_response, td.interrupt_response) == (True, False, False)
        eou = td.end_of_utterance_detection
        assert (eou.model, eou.threshold_level, eou.timeout_ms) == (
            "semantic_detection_v1",
            "high",
            900,
        )
        await conn.session.update(session=RequestSession(turn_detection=ServerVad()))
        updated = (await next_event(conn, "session.updated")).session
        assert updated.turn_detection.type == "server_vad"
        assert updated.turn_detection.auto_truncate is False  # defaults filled in
        transcription = updated.input_audio_transcription
        assert (transcription.language, transcription.phrase_list) == (
            "en,fr",
            ["Contoso", "Voxtrel"],
        )


@pytest.mark.parametrize(
    ("session", "param"),
    [
        (
            {"turn_detection": {"type": "azure_semantic_vad_en", "languages": ["en"]}},
            "session.turn_detection.languages",
        ),
        (
            {
                "turn_detection": {
                    "type": "server_vad",
                    "end_of_utterance_detection": {
                        "model": "semantic_detection_v1",
                        "threshold_level": "x",
                    },
                }
            },
            "session.turn_detection.end_of_utterance_detection.threshold_level",
        ),
        (
            {"input_audio_transcription": {"model": "whisper-1", "phrase_list": [3]}},
            "session.input_audio_transcription.phrase_list",
        ),
    ],
)
async def test_a_bad_field_gets_invalid_value_with_its_path(localvoice_models, session, param):
    async with voicelive_session(localvoice_models) as conn:
        await conn.session.update(session=session)
        error = (await next_event(conn, "error")).error
        assert (error.code, error.param) == ("invalid_value", param)


async def test_a_pause_mid_sentence_is_one_turn_with_semantic_detection_two_with_server_vad(
    localvoice_models,
):
    before = healthz(localvoice_models)["models"]["end_of_turn_checks"]
    audio = (
        silence(300) + piper("What is the weather like in") + silence(1000) + piper("Paris today?")
    )
    counts = {}
    for name, turn in (("semantic", semantic()), ("server_vad", {"type": "server_vad"})):
        session = {"turn_detection": {**turn, "create_response": False}}
        async with voicelive_session(localvoice_models, session) as conn:
            counts[name] = len(await commits_while_speaking(conn, audio, settle_s=2.5))
    assert counts == {"semantic": 1, "server_vad": 2}
    assert healthz(localvoice_models)["models"]["end_of_turn_checks"] >= before + 2


async def test_words_the_audio_finds_finished_still_hold_the_turn(localvoice_models):
    # Piper says "to call" like the end of a sentence: Smart Turn alone cut it 4 times of 4
    # (logbook); the chat model reads "can you remind me to call" as unfinished.
    before = healthz(localvoice_models)["models"]["words_checks"]
    audio = (
        silence(300)
        + piper("Can you remind me to call")
        + silence(1000)
        + piper("my sister at six.")
    )
    session = {"turn_detection": {**semantic(), "create_response": False}}
    async with voicelive_session(localvoice_models, session) as conn:
        assert len(await commits_while_speaking(conn, audio, settle_s=2.5)) == 1
    assert healthz(localvoice_models)["models"]["words_checks"] >= before + 2


async def test_timeout_ms_ends_a_turn_the_model_finds_unfinished(localvoice_models):
    fragment = piper("What is the weather like in")
    session = {"turn_detection": {**semantic(timeout_ms=900), "create_response": False}}
    async with voicelive_session(localvoice_models, session) as conn:
        await send_audio(conn, silence(300) + fragment + silence(2000), speed=1.0)
        stopped = await next_event(conn, "input_audio_buffer.speech_stopped", timeout=5)
    speech_end_ms = 300 + len(fragment) / 2 / RATE * 1000
    waited = stopped.audio_end_ms - speech_end_ms
    assert 800 <= waited <= 1200, waited


async def transcripts(endpoint: str, transcription: dict, clips: list[bytes]) -> list[str]:
    """Each clip committed by hand in one session; the transcripts."""
    session = {"turn_detection": None, "input_audio_transcription": transcription}
    heard = []
    async with voicelive_session(endpoint, session) as conn:
        for audio in clips:
            await send_audio(conn, silence(200) + audio + silence(300))
            await conn.input_audio_buffer.commit()
            done = await next_event(
                conn, "conversation.item.input_audio_transcription.completed", timeout=60
            )
            heard.append(done.transcript)
    return heard


async def test_the_session_language_reaches_whisper(localvoice_models):
    french = speak("Quelle est la capitale de la France ?", voice="fr")
    english = await transcripts(localvoice_models, {"model": "whisper-1"}, [french])
    heard = await transcripts(localvoice_models, {"model": "whisper-1", "language": "fr"}, [french])
    assert "capitale de la france" not in english[0].lower(), english
    assert "quelle est la capitale" in heard[0].lower(), heard


PRODUCTS = {
    "Zyntra": "Please call Zyntra support.",
    "Klarvio": "Add Klarvio to my list.",
    "Voxtrel": "I would like to order a Voxtrel speaker.",
    "Quorbin": "Open the Quorbin app.",
    "Fenlox": "Is Fenlox in stock?",
    "Trivana": "Book a room at the Trivana hotel.",
}


async def test_the_phrase_list_reaches_whisper(localvoice_models):
    names = list(PRODUCTS)
    clips = [piper(sentence) for sentence in PRODUCTS.values()]
    plain = await transcripts(localvoice_models, {"model": "whisper-1"}, clips)
    biased = await transcripts(
        localvoice_models, {"model": "whisper-1", "phrase_list": names}, clips
    )

    def spelled(heard: list[str]) -> int:
        return sum(name in text for name, text in zip(names, heard, strict=True))

    print(f"names spelled right: {spelled(plain)}/6 without the list, {spelled(biased)}/6 with it")
    assert spelled(biased) >= spelled(plain) + 2, (plain, biased)
