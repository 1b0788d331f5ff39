"""French through the real SDK and a real localvoice: heard in French, spoken in French.

The returned audio is checked by ear-proxy: Whisper base, told the language is French,
transcribes it, and the expected words must be there.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import numpy as np
import pytest
from azure.ai.voicelive.models import ResponseCreateParams

from tests.localvoice.pipeline.test_espeak_tts import heard
from tests.support.audio import silence, speak
from tests.support.localvoice import next_event, send_audio, voicelive_session

pytestmark = [pytest.mark.integration, pytest.mark.models]

QUESTION = "Quelle est la capitale de la France ?"
VAD = {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300, "silence_duration_ms": 500}


@functools.cache
def _whisper_base() -> Any:
    from localvoice.pipeline.stt import WhisperStt

    return WhisperStt(model="base", cpu_threads=2)


def espeak_seconds(text: str) -> float:
    """How long the French voice takes to say ``text``, rendered here by the same library."""
    from localvoice.pipeline.espeak_tts import EspeakTts

    return EspeakTts().synthesize(text, voice="espeak-fr", length_scale=None).size / 22050


def heard_in_french(pcm24: bytes) -> str:
    """What Whisper base hears, in French, in 24 kHz PCM16 (the response's audio)."""
    from localvoice.pipeline.stages import SttOptions

    pcm = np.frombuffer(pcm24, dtype="<i2")
    return heard(_whisper_base(), pcm, 24000, SttOptions(languages=("fr",)))


def said(text: str) -> ResponseCreateParams:
    """A response that speaks ``text`` word for word (no model)."""
    return ResponseCreateParams(
        pre_generated_assistant_message={
            "type": "message",
            "role": "assistant",
            "content": [{"type": "text", "text": text}],
        }
    )


async def spoken_reply(conn: Any) -> tuple[str, bytes, Any]:
    """The audio transcript, audio and ``response.done`` of the next response."""
    seen: list[Any] = []
    done = await next_event(conn, "response.done", timeout=120, seen=seen)
    audio = b"".join(e.delta for e in seen if e.type == "response.audio.delta")
    transcript = "".join(e.delta for e in seen if e.type == "response.audio_transcript.delta")
    return transcript, audio, done


@pytest.mark.parametrize(
    "voice",
    ["fr-FR-DeniseNeural", {"type": "azure-standard", "name": "fr-FR-HenriNeural"}],
    ids=["denise-string", "henri-object"],
)
async def test_a_french_voice_name_gets_french_audio(localvoice_models, voice):
    sentence = "Bonjour, la capitale de la France est Paris."
    async with voicelive_session(localvoice_models) as conn:
        await conn.session.update(session={"voice": voice})
        echoed = (await next_event(conn, "session.updated", timeout=10)).session["voice"]
        # Echoed as sent, not as the local voice that speaks it.
        if isinstance(voice, str):
            assert echoed == voice
        else:
            assert (echoed["type"], echoed["name"]) == (voice["type"], voice["name"])
        await conn.response.create(response=said(sentence))
        transcript, audio, done = await spoken_reply(conn)
    assert done.response.status == "completed"
    assert transcript.strip() == sentence
    # The French voice spoke it: as long as espeak-ng's own rendition (Piper's English voice
    # takes about 1.7 times as long), and Whisper, in French, hears the sentence.
    seconds = len(audio) / 2 / 24000
    assert abs(seconds - espeak_seconds(sentence)) < 0.15 * seconds, seconds
    text = heard_in_french(audio)
    print(f"\n{voice} -> {text!r}")
    assert "capitale" in text, text
    assert "france" in text, text


async def test_the_english_voice_is_not_the_french_one(localvoice_models):
    """The control: an English voice name reads the same French text with Piper's voice."""
    sentence = "Bonjour, la capitale de la France est Paris."
    async with voicelive_session(localvoice_models, {"voice": "alloy"}) as conn:
        await conn.response.create(response=said(sentence))
        _, audio, _ = await spoken_reply(conn)
    seconds = len(audio) / 2 / 24000
    print(f"\nalloy (joe): {seconds:.2f} s, espeak-ng {espeak_seconds(sentence):.2f} s")
    assert seconds > 1.3 * espeak_seconds(sentence)


async def test_french_speech_is_transcribed_in_french(localvoice_models):
    session = {
        "turn_detection": {**VAD, "create_response": False},
        "input_audio_transcription": {"model": "whisper-1", "language": "fr-FR"},
    }
    async with voicelive_session(localvoice_models, session) as conn:
        await send_audio(conn, silence(300) + speak(QUESTION, voice="fr") + silence(1200))
        done = await next_event(
            conn, "conversation.item.input_audio_transcription.completed", timeout=60
        )
    print(f"\nheard {done.transcript!r}")
    # Whisper base mishears espeak-ng's French often ("C'est le la capitale de la force."), so
    # the words that make it French and this question, not the whole sentence.
    heard = set(word_list(done.transcript))
    assert "capitale" in heard, done.transcript
    assert len(heard & set(word_list(QUESTION))) >= 4, done.transcript


@pytest.fixture
def french_profile_session(db: Any) -> dict[str, Any]:
    """The session the service sends for the migrations' French profile, unchanged."""
    from django.contrib.auth.models import Group, User

    from assistant.services import profile_config_get
    from assistant.voicelive.session_request import session_request_build

    user = User.objects.create_user("amelie", password="pw-amelie-123")
    user.groups.add(Group.objects.get(name="Français"))
    config = profile_config_get(user=user, profile_id=None)
    assert config.profile_name == "Assistant (français)"
    return session_request_build(config)


async def test_the_french_profile_talks_french_end_to_end(
    localvoice_models, french_profile_session
):
    """No admin change: French heard, a French answer from the French instructions, French voice."""
    async with voicelive_session(localvoice_models, french_profile_session) as conn:
        await send_audio(conn, silence(300) + speak(QUESTION, voice="fr") + silence(1500))
        heard = await next_event(
            conn, "conversation.item.input_audio_transcription.completed", timeout=60
        )
        transcript, audio, done = await spoken_reply(conn)
    print(f"\nheard {heard.transcript!r}; answered {transcript!r}")
    assert "capitale" in heard.transcript.lower(), heard.transcript
    assert done.response.status == "completed"
    words = set(word_list(transcript))
    assert "paris" in words, transcript
    assert words & {"la", "le", "est", "de", "capitale"}, transcript  # French, not English
    assert not words & {"the", "is", "of"}, transcript
    # The French voice said it: as long as espeak-ng's rendition of the answer (spoken in
    # chunks, with a pause or two more), and Whisper, in French, hears its words (not every
    # one: espeak-ng's "est Paris" came back as "épanue").
    seconds = len(audio) / 2 / 24000
    assert abs(seconds - espeak_seconds(transcript.strip())) < 0.2 * seconds, seconds
    spoken = heard_in_french(audio)
    print(f"its audio, heard in French: {spoken!r}")
    assert len(words & set(word_list(spoken))) >= min(3, len(words)), spoken


def word_list(text: str) -> list[str]:
    return re.sub(r"[^\w]+", " ", text.lower()).split()
