"""The profile settings of issue 14's talk modes: validation, the talk page, the French profile."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from assistant.models import AssistantProfile, validate_voice_name
from assistant.services import profile_config_get
from assistant.voicelive.session_request import session_request_build

pytestmark = pytest.mark.django_db


def test_the_french_profile_comes_with_the_migrations() -> None:
    french = AssistantProfile.objects.get(name="Assistant (français)")
    assert french.is_enabled
    assert not french.is_default
    assert french.voice == "fr-FR-DeniseNeural"
    validate_voice_name(french.voice)
    assert french.input_transcription_language == "fr-FR"
    assert "français" in french.instructions
    french.full_clean()
    # Whoever is in the group "Français" gets it.
    user = User.objects.create_user("amelie", password="pw-amelie-123")
    user.groups.add(french.groups.get(name="Français"))
    config = profile_config_get(user=user, profile_id=None)
    assert config.profile_name == "Assistant (français)"
    session = session_request_build(config)
    assert session["voice"] == {"type": "azure-standard", "name": "fr-FR-DeniseNeural"}
    assert session["input_audio_transcription"]["language"] == "fr-FR"


def test_a_fixed_greeting_needs_its_text() -> None:
    profile = AssistantProfile(name="Greets", greeting_mode="fixed", greeting_text="  ")
    with pytest.raises(ValidationError) as invalid:
        profile.full_clean()
    assert "greeting_text" in invalid.value.error_dict
    profile.greeting_text = "Hello {first_name}!"
    profile.full_clean()


def test_the_talk_page_carries_each_profiles_defaults(client: Client) -> None:
    user = User.objects.create_user("pat", password="pw-pat-123", first_name="Pat")
    profile = AssistantProfile.objects.create(
        name="Noisy room",
        turn_mode="push_to_talk",
        allow_turn_mode_switch=True,
        speakerphone_default=True,
    )
    profile.users.add(user)
    client.force_login(user)
    page = client.get(reverse("assistant:talk")).content.decode()
    assert 'data-turn-mode="push_to_talk"' in page
    assert 'data-turn-switch="on"' in page
    assert 'data-speakerphone="on"' in page
    assert 'id="talk-button"' in page
    config = profile_config_get(user=user, profile_id=profile.pk)
    assert (config.turn_mode, config.first_name) == ("push_to_talk", "Pat")
    assert session_request_build(config)["turn_detection"] is None
