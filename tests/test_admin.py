"""Admin: profile editing with validation, and the live-sessions console."""

from __future__ import annotations

import uuid
from http import HTTPStatus
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from assistant.models import AssistantProfile, LiveSession

pytestmark = pytest.mark.django_db

VALID = {
    "name": "Support",
    "instructions": "Help with billing questions.",
    "is_enabled": "on",
    "voice": "en-US-Andrew:DragonHDLatestNeural",
    "model": "",
    "temperature": "0.8",
    "max_response_output_tokens": "",
    "turn_detection": "server_vad",
    "vad_threshold": "0.5",
    "vad_prefix_padding_ms": "300",
    "vad_silence_duration_ms": "500",
    "interrupt_response": "on",
    "input_transcription_model": "azure-speech",
    "input_transcription_language": "en-US",
    "noise_suppression": "on",
    "echo_cancellation": "on",
    "eou_threshold_level": "default",
    "turn_mode": "voice_activity",
    "greeting_mode": "none",
    "idle_check_in_seconds": "0",
    "idle_end_seconds": "30",
}


def add_profile(client: Client, **overrides: Any) -> Any:
    return client.post(reverse("admin:assistant_assistantprofile_add"), {**VALID, **overrides})


def test_profile_pages_render(admin_client: Client) -> None:
    profile = AssistantProfile.objects.create(name="P", instructions="x")
    for url in (
        reverse("admin:assistant_assistantprofile_changelist"),
        reverse("admin:assistant_assistantprofile_add"),
        reverse("admin:assistant_assistantprofile_change", args=[profile.pk]),
        reverse("admin:assistant_livesession_changelist"),
    ):
        assert admin_client.get(url).status_code == HTTPStatus.OK


def test_add_profile(admin_client: Client) -> None:
    response = add_profile(admin_client)
    assert response.status_code == HTTPStatus.FOUND, response.content
    profile = AssistantProfile.objects.get(name="Support")
    assert profile.voice == "en-US-Andrew:DragonHDLatestNeural"
    assert profile.max_response_output_tokens is None


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"voice": "robot voice!"}, "voice", "is not a voice name"),
        ({"temperature": "3"}, "temperature", "less than or equal to 1.2"),
        ({"vad_threshold": "1.5"}, "vad_threshold", "less than or equal to 1.0"),
        (
            {"vad_silence_duration_ms": "20"},
            "vad_silence_duration_ms",
            "greater than or equal to 100",
        ),
        (
            {"max_response_output_tokens": "9999"},
            "max_response_output_tokens",
            "less than or equal",
        ),
        ({"remove_filler_words": "on"}, "remove_filler_words", "semantic VAD"),
        ({"input_transcription_language": "English"}, "input_transcription_language", "locale"),
        ({"is_default": "on", "is_enabled": ""}, "is_enabled", "must stay enabled"),
        # Turn-taking, language and vocabulary (assistant/turn_taking.py).
        ({"vad_speech_duration_ms": "100"}, "vad_speech_duration_ms", "semantic VAD setting"),
        (
            {"turn_detection": "azure_semantic_vad_en", "vad_languages": "fr"},
            "vad_languages",
            "English one listens for English only",
        ),
        (
            {"turn_detection": "azure_semantic_vad", "vad_languages": "en,xx-YY"},
            "vad_languages",
            "ignores xx",
        ),
        ({"vad_languages": "French"}, "vad_languages", "language or locale codes"),
        (
            {
                "turn_detection": "azure_semantic_vad_multilingual",
                "eou_model": "semantic_detection_v1_en",
            },
            "eou_model",
            "different languages",
        ),
        (
            {"eou_model": "semantic_detection_v1"},
            "eou_model",
            "gpt-realtime does not support end-of-utterance detection",
        ),
        ({"eou_timeout_ms": "20"}, "eou_timeout_ms", "greater than or equal to 100"),
        ({"eou_threshold_level": "extreme"}, "eou_threshold_level", "Select a valid choice"),
        (
            {"model": "gpt-4.1", "phrase_list": "Contoso\n\nFabrikam"},
            "phrase_list",
            "Line 2 is empty",
        ),
        (
            {"model": "gpt-4.1", "phrase_list": "Contoso\n" + "x" * 101},
            "phrase_list",
            "Line 2 is 101 characters long",
        ),
        (
            {"model": "gpt-4.1", "phrase_list": "\n".join(f"t{n}" for n in range(501))},
            "phrase_list",
            "501 phrases: Voice Live takes at most 500",
        ),
        (
            {
                "model": "gpt-4.1",
                "phrase_list": "Contoso",
                "input_transcription_model": "whisper-1",
            },
            "phrase_list",
            "Only the azure-speech transcription model",
        ),
    ],
)
def test_validation_errors_are_shown(
    admin_client: Client, overrides: dict[str, str], field: str, message: str
) -> None:
    response = add_profile(admin_client, **overrides)
    assert response.status_code == HTTPStatus.OK
    errors = response.context["adminform"].form.errors
    assert field in errors
    assert message in " ".join(errors[field])
    assert not AssistantProfile.objects.filter(name="Support").exists()


def test_add_profile_with_every_turn_taking_setting(admin_client: Client) -> None:
    response = add_profile(
        admin_client,
        model="gpt-4.1",
        turn_detection="azure_semantic_vad",
        vad_speech_duration_ms="120",
        vad_languages="en, fr",
        remove_filler_words="on",
        auto_truncate="on",
        eou_model="semantic_detection_v1",
        eou_threshold_level="high",
        eou_timeout_ms="1500",
        input_transcription_language="en,fr",
        phrase_list="Contoso\r\nRehaan Jessie\r\n",
    )
    assert response.status_code == HTTPStatus.FOUND, response.content
    profile = AssistantProfile.objects.get(name="Support")
    assert (profile.eou_model, profile.eou_threshold_level, profile.eou_timeout_ms) == (
        "semantic_detection_v1",
        "high",
        1500,
    )
    assert profile.phrase_list.splitlines() == ["Contoso", "Rehaan Jessie"]
    assert profile.auto_truncate
    assert profile.vad_speech_duration_ms == 120


def test_the_change_form_refuses_bad_turn_taking_and_keeps_the_profile(
    admin_client: Client,
) -> None:
    profile = AssistantProfile.objects.create(name="Support", model="gpt-4.1")
    url = reverse("admin:assistant_assistantprofile_change", args=[profile.pk])
    response = admin_client.post(
        url,
        {
            **VALID,
            "model": "gpt-4.1",
            "turn_detection": "azure_semantic_vad_en",
            "vad_languages": "en,fr",
            "eou_model": "semantic_detection_v1_multilingual",
            "eou_timeout_ms": "99999",
            "phrase_list": "Contoso\n   \nContoso",
        },
    )
    assert response.status_code == HTTPStatus.OK
    errors = response.context["adminform"].form.errors
    assert {"vad_languages", "eou_model", "eou_timeout_ms", "phrase_list"} <= set(errors)
    assert "Line 2 is empty" in " ".join(errors["phrase_list"])
    assert "Line 3 repeats" in " ".join(errors["phrase_list"])
    profile.refresh_from_db()
    assert (profile.turn_detection, profile.eou_model, profile.phrase_list) == (
        "server_vad",
        "",
        "",
    )


def test_the_change_form_groups_turn_taking_and_vocabulary(admin_client: Client) -> None:
    profile = AssistantProfile.objects.create(name="P")
    page = admin_client.get(
        reverse("admin:assistant_assistantprofile_change", args=[profile.pk])
    ).content.decode()
    assert "Turn-taking" in page
    assert "Language and vocabulary" in page
    assert 'name="phrase_list"' in page
    assert "How long a pause ends the user" in page


def test_marking_a_default_unmarks_the_previous_one(admin_client: Client) -> None:
    old = AssistantProfile.objects.get(is_default=True)  # made by the data migration
    add_profile(admin_client, is_default="on")
    old.refresh_from_db()
    assert not old.is_default
    assert AssistantProfile.objects.get(name="Support").is_default


def _live_session(user: User) -> LiveSession:
    return LiveSession.objects.create(
        user=user, worker="w1", channel_name="specific.x!y", last_seen=timezone.now()
    )


def test_sessions_console_lists_live_sessions_only(admin_client: Client, admin_user: User) -> None:
    live = _live_session(admin_user)
    stale = _live_session(admin_user)
    LiveSession.objects.filter(pk=stale.pk).update(
        last_seen=timezone.now() - timezone.timedelta(hours=1)
    )
    page = admin_client.get(reverse("admin:assistant_livesession_changelist")).content.decode()
    assert str(live.pk) in page
    assert str(stale.pk) not in page


def test_terminate_marks_the_session(admin_client: Client, admin_user: User) -> None:
    row = _live_session(admin_user)
    response = admin_client.post(reverse("admin:assistant_livesession_terminate", args=[row.pk]))
    assert response.status_code == HTTPStatus.FOUND
    row.refresh_from_db()
    assert row.end_reason == "terminated"


def test_terminate_needs_the_permission(client: Client, admin_user: User) -> None:
    staff = User.objects.create_user("staff", password="pw-staff-123", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_livesession"))
    client.force_login(staff)
    row = _live_session(admin_user)
    url = reverse("admin:assistant_livesession_terminate", args=[row.pk])
    assert client.post(url).status_code == HTTPStatus.FORBIDDEN
    row.refresh_from_db()
    assert row.end_reason == ""
    assert client.get(url).status_code == HTTPStatus.METHOD_NOT_ALLOWED


def test_terminate_of_an_ended_session_says_so(admin_client: Client) -> None:
    url = reverse("admin:assistant_livesession_terminate", args=[uuid.uuid4()])
    response = admin_client.post(url, follow=True)
    assert "already ended" in response.content.decode()


def test_non_staff_cannot_reach_admin(client: Client) -> None:
    user = User.objects.create_user("bob", password="pw-bob-12345")
    client.force_login(user)
    response = client.get(reverse("admin:assistant_assistantprofile_changelist"))
    assert response.status_code == HTTPStatus.FOUND
