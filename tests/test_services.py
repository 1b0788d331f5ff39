"""Profile services: who may use which profile, what a session is configured with, notices."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.contrib.auth.models import AnonymousUser, Group, User

from assistant import metrics, services
from assistant.codes import ClientError, ErrorCode
from assistant.models import AssistantProfile


def failures(kind: str) -> float:
    return metrics.LAYER_SEND_FAILURES.labels(kind=kind)._value.get()


@pytest.fixture
def user(db: None) -> User:
    # The data migration's site default would otherwise be everyone's fallback.
    AssistantProfile.objects.filter(is_default=True).update(is_default=False)
    return User.objects.create_user("sam", password="pw-sam-12345")


def test_anonymous_users_get_no_profile(db: None) -> None:
    assert services.profiles_for_user(user=AnonymousUser()) == []


def test_a_user_without_a_profile_cannot_start_a_session(user: User) -> None:
    with pytest.raises(ClientError) as caught:
        services.profile_config_get(user=user, profile_id=None)
    assert caught.value.code == ErrorCode.PROFILE_UNAVAILABLE


def test_the_site_default_applies_only_without_an_assignment(user: User) -> None:
    default = AssistantProfile.objects.create(name="Default", is_default=True)
    assert services.profiles_for_user(user=user) == [default]
    mine = AssistantProfile.objects.create(name="Mine")
    mine.users.add(user)
    assert services.profiles_for_user(user=user) == [mine]


def test_direct_assignments_come_before_group_ones_each_once(user: User) -> None:
    team = Group.objects.create(name="team")
    user.groups.add(team)
    both = AssistantProfile.objects.create(name="Both")
    both.users.add(user)
    both.groups.add(team)
    AssistantProfile.objects.create(name="A team one").groups.add(team)
    AssistantProfile.objects.create(name="Zed").users.add(user)
    AssistantProfile.objects.create(name="Off", is_enabled=False).users.add(user)
    names = [p.name for p in services.profiles_for_user(user=user)]
    assert names == ["Both", "Zed", "A team one"]


def test_the_session_config_is_the_picked_profile_detached_from_the_orm(
    user: User, settings: Any
) -> None:
    settings.AZURE_VOICELIVE_MODEL = "server-default-model"
    first = AssistantProfile.objects.create(name="First", instructions="One.", voice="alloy")
    second = AssistantProfile.objects.create(
        name="Second", instructions="Two.", model="gpt-4o-realtime", voice="echo"
    )
    for profile in (first, second):
        profile.users.add(user)
    default = services.profile_config_get(user=user, profile_id=None)
    assert (default.profile_id, default.instructions) == (first.pk, "One.")
    assert default.model == "server-default-model"  # the profile leaves it empty
    picked = services.profile_config_get(user=user, profile_id=second.pk)
    assert (picked.profile_name, picked.model, picked.voice) == (
        "Second",
        "gpt-4o-realtime",
        "echo",
    )
    assert picked.profile_version == services.profile_version(second.updated_at)


def test_the_session_config_carries_turn_taking_and_vocabulary(user: User) -> None:
    profile = AssistantProfile.objects.create(
        name="Tuned",
        model="gpt-4.1",
        turn_detection="azure_semantic_vad_multilingual",
        vad_speech_duration_ms=120,
        vad_languages="en, fr",
        auto_truncate=True,
        eou_model="semantic_detection_v1_multilingual",
        eou_threshold_level="low",
        eou_timeout_ms=900,
        input_transcription_language="en, fr",
        phrase_list="Contoso\r\n  Rehaan Jessie \n",
    )
    profile.users.add(user)
    config = services.profile_config_get(user=user, profile_id=profile.pk)
    assert (config.turn_detection, config.vad_speech_duration_ms, config.vad_languages) == (
        "azure_semantic_vad_multilingual",
        120,
        ("en", "fr"),
    )
    assert config.auto_truncate
    assert (config.eou_model, config.eou_threshold_level, config.eou_timeout_ms) == (
        "semantic_detection_v1_multilingual",
        "low",
        900,
    )
    assert config.input_transcription_language == "en,fr"
    assert config.phrase_list == ("Contoso", "Rehaan Jessie")


def test_a_profile_not_assigned_is_forbidden(user: User) -> None:
    AssistantProfile.objects.create(name="Mine").users.add(user)
    other = AssistantProfile.objects.create(name="Theirs")
    with pytest.raises(ClientError) as caught:
        services.profile_config_get(user=user, profile_id=other.pk)
    assert caught.value.code == ErrorCode.PROFILE_FORBIDDEN


def test_reload_sees_the_saved_profile_and_nothing_once_disabled(db: None) -> None:
    profile = AssistantProfile.objects.create(name="Live", instructions="Before.")
    profile.instructions = "After."
    profile.save()
    reloaded = services.profile_config_reload(profile_id=profile.pk)
    assert reloaded is not None
    assert reloaded.instructions == "After."
    profile.is_enabled = False
    profile.save()
    assert services.profile_config_reload(profile_id=profile.pk) is None


def test_saving_a_default_unmarks_the_previous_one(
    db: None, django_capture_on_commit_callbacks: Any
) -> None:
    AssistantProfile.objects.filter(is_default=True).update(is_default=False)
    old = AssistantProfile.objects.create(name="Old", is_default=True)
    new = AssistantProfile(name="New", is_default=True)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.profile_save(profile=new)
    assert list(AssistantProfile.objects.filter(is_default=True)) == [new]
    old.refresh_from_db()
    assert not old.is_default
    assert len(callbacks) == 1  # the change notice goes out once the save is committed


@pytest.mark.django_db(transaction=True)
async def test_a_saved_profile_is_announced_to_its_sessions_group() -> None:
    layer = get_channel_layer()
    channel = await layer.new_channel()
    profile = await AssistantProfile.objects.acreate(name="Announced")
    await layer.group_add(services.profile_group(profile.pk), channel)
    profile.instructions = "New instructions."
    await database_sync_to_async(services.profile_save)(profile=profile)
    async with asyncio.timeout(2):
        message = await layer.receive(channel)
    assert message == {"type": "profile.changed", "profile_id": profile.pk}
    await layer.group_discard(services.profile_group(profile.pk), channel)


def test_a_notice_the_layer_refuses_is_counted_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    """The heartbeat is the slow path: a Redis outage must not fail the admin's save."""

    class BrokenLayer:
        async def group_send(self, group: str, message: dict[str, Any]) -> None:
            raise ConnectionError("redis is down")

    monkeypatch.setattr("assistant.live.layer.get_channel_layer", BrokenLayer)
    before = failures("profile.changed")
    assert services.profile_changed_notify(profile_id=1) is False
    assert failures("profile.changed") == before + 1
