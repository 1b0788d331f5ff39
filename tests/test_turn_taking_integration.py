"""A profile's turn-taking and vocabulary settings over the real path, as Voice Live echoes them.

The consumer in-process, the real ``azure-ai-voicelive`` SDK and localvoice (``--echo``, no
models needed for the configuration): the profile goes through the services, the session
request and the SDK to localvoice, whose ``session.updated`` echo is read back through the SDK's
own models. A live profile change then turns end-of-utterance detection and the phrase list off.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from azure.ai.voicelive.aio import VoiceLiveConnection
from azure.ai.voicelive.models import (
    AzureSemanticDetectionMultilingual,
    AzureSemanticVadMultilingual,
    ResponseSession,
    ServerEvent,
    ServerEventSessionUpdated,
)
from channels.db import database_sync_to_async
from django.contrib.auth.models import User

from assistant import services
from assistant.models import AssistantProfile
from tests.support.consumer import next_message, start_session

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

PHRASES = ["Contoso", "Rehaan Jessie", "AutoQuote Explorer"]


@pytest.fixture
def echoes(monkeypatch: pytest.MonkeyPatch) -> list[ResponseSession]:
    """Every ``session.updated`` the consumer's connections receive, parsed by the SDK.

    Recorded where the SDK reads frames (``recv_bytes``, under both ``recv`` and the relay's
    receive loop), so the consumer stays the connection's only reader.
    """
    seen: list[ResponseSession] = []
    original = VoiceLiveConnection.recv_bytes

    async def recording(self: VoiceLiveConnection) -> bytes:
        raw = await original(self)
        if raw and b'"session.updated"' in raw:
            event = ServerEvent._deserialize(json.loads(raw), [])
            assert isinstance(event, ServerEventSessionUpdated)
            seen.append(event.session)
        return raw

    monkeypatch.setattr(VoiceLiveConnection, "recv_bytes", recording)
    return seen


@pytest.fixture
def tuned(db: None, settings: Any, localvoice_echo: str) -> tuple[User, AssistantProfile]:
    """A user whose only profile uses every new setting, pointed at localvoice."""
    settings.AZURE_VOICELIVE_ENDPOINT = localvoice_echo
    settings.AZURE_VOICELIVE_API_KEY = "test-key"
    settings.VOICE_CONNECT_TIMEOUT = 5.0
    AssistantProfile.objects.filter(is_default=True).update(is_default=False)
    profile = AssistantProfile(
        name="Tuned",
        instructions="Be brief.",
        voice="alloy",
        model="gpt-4.1",
        turn_detection="azure_semantic_vad_multilingual",
        vad_threshold=0.45,
        vad_prefix_padding_ms=320,
        vad_silence_duration_ms=700,
        vad_speech_duration_ms=120,
        vad_languages="en,fr",
        remove_filler_words=True,
        auto_truncate=True,
        interrupt_response=True,
        eou_model="semantic_detection_v1_multilingual",
        eou_threshold_level="high",
        eou_timeout_ms=1500,
        input_transcription_model="azure-speech",
        input_transcription_language="en,fr",
        phrase_list="\n".join(PHRASES),
    )
    profile.full_clean()  # what the admin would accept
    profile.save()
    user = User.objects.create_user("tuner", password="pw-tuner-123")
    profile.users.add(user)
    return user, profile


async def wait_for(echoes: list[ResponseSession], count: int, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while len(echoes) < count:
            await asyncio.sleep(0.02)


async def test_the_echo_carries_every_setting_and_a_live_change_turns_them_off(
    tuned: tuple[User, AssistantProfile], echoes: list[ResponseSession]
) -> None:
    user, profile = tuned
    comm = await start_session(user, timeout=10)
    await wait_for(echoes, 1)

    session = echoes[0]
    detection = session.turn_detection
    assert isinstance(detection, AzureSemanticVadMultilingual)
    assert (detection.threshold, detection.prefix_padding_ms) == (0.45, 320)
    assert (detection.silence_duration_ms, detection.speech_duration_ms) == (700, 120)
    assert detection.languages == ["en", "fr"]
    assert detection.remove_filler_words is True
    assert detection.auto_truncate is True
    # Backchannels are on (the default): this service, not the upstream, decides what barges in.
    assert (detection.create_response, detection.interrupt_response) == (True, False)
    eou = detection.end_of_utterance_detection
    assert isinstance(eou, AzureSemanticDetectionMultilingual)
    assert (eou.threshold_level, eou.timeout_ms) == ("high", 1500)
    transcription = session.input_audio_transcription
    assert transcription is not None
    assert (transcription.model, transcription.language) == ("azure-speech", "en,fr")
    assert transcription.phrase_list == PHRASES

    # Live: the admin turns end-of-utterance detection and the phrase list off.
    profile.eou_model = "off"
    profile.eou_threshold_level = "default"
    profile.eou_timeout_ms = None
    profile.phrase_list = ""
    profile.auto_truncate = False
    await database_sync_to_async(profile.full_clean)()
    await database_sync_to_async(services.profile_save)(profile=profile)
    await next_message(comm, "profile.updated", timeout=5)
    await wait_for(echoes, 2)

    changed = echoes[1].turn_detection
    assert isinstance(changed, AzureSemanticVadMultilingual)
    assert changed.end_of_utterance_detection is None
    assert changed.auto_truncate is False
    assert changed.languages == ["en", "fr"]  # what did not change stays
    transcription = echoes[1].input_audio_transcription
    assert transcription is not None
    assert transcription.phrase_list is None
    assert transcription.language == "en,fr"
    await comm.disconnect()
