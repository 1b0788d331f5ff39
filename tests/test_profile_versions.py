"""Profile versions and drafts: snapshots, publish, rollback, draft sessions, and the admin."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser, Permission, User
from django.test import Client
from django.urls import reverse

from assistant import services
from assistant.codes import ClientError, ErrorCode
from assistant.history.ledger import spent, spent_by_user
from assistant.history.models import Conversation, UsageRecord
from assistant.history.writer import write_batches
from assistant.models import AssistantProfile, ProfileVersion
from assistant.models.versions import (
    TOOLS_KEY,
    UNVERSIONED_FIELDS,
    profile_snapshot,
    snapshot_apply,
    snapshot_diff,
    versioned_field_names,
)
from assistant.tools.models import Tool
from tests.history.test_writer import new_recorder, talk
from tests.test_admin import VALID

pytestmark = pytest.mark.django_db

#: Every profile field a version holds. A new profile field fails this test until it is put
#: here (it shapes calls: versioned) or in UNVERSIONED_FIELDS (with the reason there).
EXPECTED_VERSIONED = {
    "instructions",
    "model",
    "voice",
    "temperature",
    "max_response_output_tokens",
    "turn_detection",
    "vad_threshold",
    "vad_prefix_padding_ms",
    "vad_silence_duration_ms",
    "vad_speech_duration_ms",
    "interrupt_response",
    "auto_truncate",
    "remove_filler_words",
    "vad_languages",
    "eou_model",
    "eou_threshold_level",
    "eou_timeout_ms",
    "backchannels",
    "backchannel_words",
    "input_transcription_model",
    "input_transcription_language",
    "phrase_list",
    "noise_suppression",
    "echo_cancellation",
    "turn_mode",
    "allow_turn_mode_switch",
    "greeting_mode",
    "greeting_text",
    "idle_check_in_seconds",
    "idle_end_seconds",
    "speakerphone_default",
}


def test_a_version_holds_every_call_shaping_field() -> None:
    model_fields = {f.name for f in AssistantProfile._meta.get_fields() if f.concrete}
    assert set(versioned_field_names()) == EXPECTED_VERSIONED
    assert model_fields - UNVERSIONED_FIELDS == EXPECTED_VERSIONED, (
        "a new profile field: version it (EXPECTED_VERSIONED) or say why not (UNVERSIONED_FIELDS)"
    )
    assert model_fields >= UNVERSIONED_FIELDS, "no stale names in UNVERSIONED_FIELDS"


def test_every_versioned_field_reaches_the_session_configuration() -> None:
    """Change each versioned field in a draft: the draft's configuration differs from users'."""
    profile = AssistantProfile.objects.create(name="P", vad_languages="en")
    published = services.profile_config_reload(profile_id=profile.pk)
    assert published is not None
    for name in EXPECTED_VERSIONED - {"backchannel_words"}:
        field = AssistantProfile._meta.get_field(name)
        value = getattr(profile, name)
        changed: Any
        if field.choices:
            changed = next(c for c, _ in field.choices if c != value)
        elif isinstance(value, bool):
            changed = not value
        elif isinstance(value, float):
            changed = value + 0.1
        elif isinstance(value, int) or value is None:
            changed = (value or 0) + 150
        elif name in {"vad_languages", "input_transcription_language"}:
            changed = "fr"
        else:
            changed = f"{value}x"
        draft = profile_snapshot(profile) | {name: changed}
        AssistantProfile.objects.filter(pk=profile.pk).update(draft=draft)
        tried = services.profile_config_reload(profile_id=profile.pk, draft=True)
        assert tried is not None
        assert tried.is_draft
        assert {k: v for k, v in _fields(tried).items() if k != "is_draft"} != _fields(published), (
            f"{name} does not reach the session"
        )


def _fields(config: Any) -> dict[str, Any]:
    return {name: getattr(config, name) for name in config.__slots__}


def test_snapshots_apply_and_diff() -> None:
    profile = AssistantProfile.objects.create(name="P", instructions="Be brief.\nBe kind.")
    tool = Tool.objects.create(name="clock", kind=Tool.Kind.BUILTIN, builtin="current_time")
    tool.profiles.add(profile)
    before = profile_snapshot(profile)
    assert before[TOOLS_KEY] == ["clock"]
    other = AssistantProfile.objects.create(name="Q", instructions="Ramble.", voice="alloy")
    snapshot_apply(other, before)
    assert (other.instructions, other.voice) == (profile.instructions, profile.voice)
    assert other.name == "Q", "the name is not part of a version"
    after = before | {"instructions": "Be brief.\nAnswer in French.", TOOLS_KEY: []}
    changes = {c.name: c for c in snapshot_diff(before, after)}
    assert set(changes) == {"instructions", TOOLS_KEY}
    assert changes["instructions"].lines[-2:] == ("-Be kind.", "+Answer in French.")
    assert (changes[TOOLS_KEY].before, changes[TOOLS_KEY].after) == ("clock", "")


def test_existing_profiles_start_at_version_one() -> None:
    default = AssistantProfile.objects.get(is_default=True)  # made by a data migration
    assert default.version == 1
    first = ProfileVersion.objects.get(profile=default, number=1)
    assert first.snapshot["instructions"] == default.instructions
    assert first.snapshot == profile_snapshot(default)


# ----------------------------------------------------------------------------- services


def test_a_draft_changes_nothing_users_get_until_published(
    admin_user: User, django_capture_on_commit_callbacks: Any
) -> None:
    profile = AssistantProfile.objects.get(is_default=True)
    old_instructions = profile.instructions
    profile.instructions = "Always answer in French."
    services.profile_draft_save(profile=profile)

    profile.refresh_from_db()
    assert profile.instructions == old_instructions
    assert profile.draft is not None
    assert profile.draft["instructions"] == "Always answer in French."
    users = services.profile_config_get(user=admin_user, profile_id=None)
    assert (users.instructions, users.version_number, users.is_draft) == (
        old_instructions,
        1,
        False,
    )
    tried = services.profile_config_get(user=admin_user, profile_id=profile.pk, draft=True)
    assert (tried.instructions, tried.is_draft) == ("Always answer in French.", True)

    with django_capture_on_commit_callbacks(execute=False) as notices:
        version = services.profile_publish(profile_id=profile.pk, author=admin_user, note="fr")
    assert notices, "live sessions are told of the publish"
    profile.refresh_from_db()
    assert (version.number, version.author, version.note) == (2, admin_user, "fr")
    assert (profile.version, profile.instructions, profile.draft) == (
        2,
        "Always answer in French.",
        None,
    )
    users = services.profile_config_get(user=admin_user, profile_id=None)
    assert (users.instructions, users.version_number) == ("Always answer in French.", 2)


def test_a_draft_equal_to_the_published_version_is_no_draft() -> None:
    profile = AssistantProfile.objects.get(is_default=True)
    profile.name = "Renamed"  # not versioned: applies at once
    services.profile_draft_save(profile=profile)
    profile.refresh_from_db()
    assert (profile.name, profile.draft) == ("Renamed", None)


def test_rollback_publishes_an_older_version_as_a_new_number(admin_user: User) -> None:
    profile = AssistantProfile.objects.create(name="R", instructions="Be brief.")
    services.profile_publish(profile_id=profile.pk, author=admin_user, note="created")
    tool = Tool.objects.create(name="clock", kind=Tool.Kind.BUILTIN, builtin="current_time")
    tool.profiles.add(profile)
    services.profile_publish(profile_id=profile.pk, author=admin_user, note="with the clock")
    original = profile.instructions
    profile.refresh_from_db()
    profile.instructions = "Worse."
    services.profile_draft_save(profile=profile)
    services.profile_publish(profile_id=profile.pk, author=admin_user)
    tool.profiles.remove(profile)

    restored = services.profile_publish(
        profile_id=profile.pk,
        author=admin_user,
        note="back",
        restore=profile.versions.get(number=2),
    )
    profile.refresh_from_db()
    assert (restored.number, restored.restored_from) == (4, 2)
    assert profile.instructions == original
    assert list(profile.tools.values_list("name", flat=True)) == ["clock"]
    assert restored.snapshot == profile.versions.get(number=2).snapshot
    assert list(profile.versions.values_list("number", flat=True)) == [4, 3, 2, 1]
    assert profile.versions.get(number=3).snapshot["instructions"] == "Worse.", "never rewritten"


def test_only_staff_who_may_edit_profiles_try_drafts(django_user_model: Any) -> None:
    profile = AssistantProfile.objects.get(is_default=True)
    user = django_user_model.objects.create_user("u", password="pw")
    staff = django_user_model.objects.create_user("s", password="pw", is_staff=True)
    for who in (AnonymousUser(), user, staff):
        with pytest.raises(ClientError) as refused:
            services.profile_config_get(user=who, profile_id=profile.pk, draft=True)
        assert refused.value.code == ErrorCode.DRAFT_FORBIDDEN
    staff.user_permissions.add(Permission.objects.get(codename="change_assistantprofile"))
    staff = django_user_model.objects.get(pk=staff.pk)  # the permission cache
    assert services.profile_config_get(user=staff, profile_id=profile.pk, draft=True).is_draft
    with pytest.raises(ClientError) as refused:
        services.profile_config_get(user=staff, profile_id=None, draft=True)
    assert refused.value.code == ErrorCode.DRAFT_FORBIDDEN


# ----------------------------------------------------------------------------- admin


def change_url(profile: AssistantProfile) -> str:
    return reverse("admin:assistant_assistantprofile_change", args=[profile.pk])


def form_data(profile: AssistantProfile, **overrides: Any) -> dict[str, Any]:
    return {**VALID, "name": profile.name, "is_default": "on", **overrides}


def test_the_change_form_saves_a_draft_and_shows_it(admin_client: Client) -> None:
    profile = AssistantProfile.objects.get(is_default=True)
    published = profile.instructions
    response = admin_client.post(change_url(profile), form_data(profile, instructions="Draft!"))
    assert response.status_code == HTTPStatus.FOUND
    profile.refresh_from_db()
    assert (profile.instructions, profile.version) == (published, 1)
    page = admin_client.get(change_url(profile)).content.decode()
    assert "Draft!" in page, "the form edits the draft"
    assert 'id="try-draft-link"' in page
    assert 'name="_publish"' in page
    assert "unpublished changes" in page


def test_publish_from_the_change_form_with_a_note(admin_client: Client, admin_user: User) -> None:
    profile = AssistantProfile.objects.get(is_default=True)
    response = admin_client.post(
        change_url(profile),
        form_data(profile, instructions="Published!", _publish="1", publish_note="Shorter."),
    )
    assert response.status_code == HTTPStatus.FOUND
    profile.refresh_from_db()
    assert (profile.instructions, profile.version, profile.draft) == ("Published!", 2, None)
    version = profile.versions.get(number=2)
    assert (version.author, version.note) == (admin_user, "Shorter.")


@pytest.fixture
def editor(django_user_model: Any) -> Client:
    """Staff who may edit profiles but not publish them."""
    user = django_user_model.objects.create_user("editor", password="pw", is_staff=True)
    for codename in ("view_assistantprofile", "change_assistantprofile"):
        user.user_permissions.add(Permission.objects.get(codename=codename))
    client = Client()
    client.force_login(user)
    return client


def test_publishing_needs_the_publish_permission(editor: Client) -> None:
    profile = AssistantProfile.objects.get(is_default=True)
    page = editor.get(change_url(profile)).content.decode()
    assert 'name="_publish"' not in page
    response = editor.post(change_url(profile), form_data(profile, instructions="X", _publish="1"))
    assert response.status_code == HTTPStatus.FORBIDDEN
    profile.refresh_from_db()
    assert (profile.version, profile.draft) == (1, None), "nothing saved"
    rollback = reverse("admin:assistant_assistantprofile_rollback", args=[profile.pk, 1])
    assert editor.post(rollback).status_code == HTTPStatus.FORBIDDEN
    # A draft they may save.
    assert editor.post(change_url(profile), form_data(profile, instructions="X")).status_code == (
        HTTPStatus.FOUND
    )
    profile.refresh_from_db()
    assert profile.draft is not None


def test_versions_page_diff_and_rollback(admin_client: Client) -> None:
    profile = AssistantProfile.objects.get(is_default=True)
    admin_client.post(
        change_url(profile),
        form_data(profile, instructions="Line one.\nAlways answer in French.", _publish="1"),
    )
    admin_client.post(change_url(profile), form_data(profile, instructions="Line one.\nDraft."))

    versions = reverse("admin:assistant_assistantprofile_versions", args=[profile.pk])
    page = admin_client.get(versions).content.decode()
    assert 'id="version-2"' in page
    assert 'id="version-1"' in page
    assert "Publish version 1 again" in page

    diff = reverse("admin:assistant_assistantprofile_diff", args=[profile.pk])
    page = admin_client.get(diff, {"a": "2", "b": "draft"}).content.decode()
    assert "-Always answer in French." in page
    assert "+Draft." in page
    assert admin_client.get(diff, {"a": "9", "b": "1"}).status_code == HTTPStatus.NOT_FOUND
    assert admin_client.get(diff, {"a": "x", "b": "1"}).status_code == HTTPStatus.NOT_FOUND

    rollback = reverse("admin:assistant_assistantprofile_rollback", args=[profile.pk, 1])
    response = admin_client.post(rollback, {"note": "French was a mistake"})
    assert response.status_code == HTTPStatus.FOUND
    profile.refresh_from_db()
    latest = profile.versions.get(number=3)
    assert (latest.note, latest.restored_from) == ("French was a mistake", 1)
    assert profile.instructions == profile.versions.get(number=1).snapshot["instructions"]
    assert profile.draft is None


def test_adding_a_profile_publishes_version_one(admin_client: Client) -> None:
    assert admin_client.post(
        reverse("admin:assistant_assistantprofile_add"), VALID
    ).status_code == (HTTPStatus.FOUND)
    profile = AssistantProfile.objects.get(name="Support")
    assert profile.version == 1
    assert profile.versions.get().snapshot["instructions"] == VALID["instructions"]


# ----------------------------------------------------------------------------- talk page


def test_the_talk_page_on_a_draft_is_marked_and_staff_only(
    admin_client: Client, client: Client, django_user_model: Any
) -> None:
    profile = AssistantProfile.objects.get(is_default=True)
    url = reverse("assistant:talk") + f"?profile={profile.pk}&draft=1"
    page = admin_client.get(url).content.decode()
    assert 'id="draft-marker"' in page
    assert 'data-draft="1"' in page
    assert 'id="draft-marker"' not in admin_client.get(reverse("assistant:talk")).content.decode()
    missing = reverse("assistant:talk") + "?profile=999999&draft=1"
    assert admin_client.get(missing).status_code == HTTPStatus.NOT_FOUND
    client.force_login(django_user_model.objects.create_user("u", password="pw"))
    assert client.get(url).status_code == HTTPStatus.FORBIDDEN


# ----------------------------------------------------------------------------- history, quotas


def _recorded(user: User, **start: Any) -> Any:
    recorder = new_recorder(user, **start)
    talk(recorder, "Bonjour ?", "Bonjour !", 1)
    assert write_batches([recorder.drain()]) == []
    return Conversation.objects.get(pk=recorder.conversation_id)


def test_conversations_and_usage_record_the_version_and_the_draft(admin_user: User) -> None:
    published = _recorded(admin_user, profile_version=3)
    tried = _recorded(admin_user, profile_version=3, is_draft=True)
    assert (published.profile_version, published.is_draft) == (3, False)
    assert (tried.profile_version, tried.is_draft) == (3, True)
    rows = UsageRecord.objects.filter(conversation=tried)
    assert rows.count() >= 1
    assert set(rows.values_list("profile_version", "is_draft")) == {(3, True)}
    assert set(
        UsageRecord.objects.filter(conversation=published).values_list(
            "profile_version", "is_draft"
        )
    ) == {(3, False)}


def test_drafts_count_against_no_quota(admin_user: User) -> None:
    _recorded(admin_user, profile_version=1, is_draft=True)
    assert spent(admin_user).minutes_this_month == 0.0
    assert spent_by_user([admin_user.pk]).get(admin_user.pk) is None
    _recorded(admin_user, profile_version=1)
    assert spent(admin_user).minutes_this_month > 0.0


def test_saving_only_a_draft_tells_no_live_session(
    django_capture_on_commit_callbacks: Any,
) -> None:
    profile = AssistantProfile.objects.get(is_default=True)
    saved_at = profile.updated_at
    profile.instructions = "A draft."
    with django_capture_on_commit_callbacks(execute=False) as notices:
        services.profile_draft_save(profile=profile)
    assert notices == []
    profile.refresh_from_db()
    assert (profile.updated_at, profile.draft["instructions"]) == (saved_at, "A draft.")
    snapshot_apply(profile, profile.draft)  # as the change form shows it
    profile.is_enabled = False  # who may use it: applies at once, live sessions are told
    profile.is_default = False
    with django_capture_on_commit_callbacks(execute=False) as notices:
        services.profile_draft_save(profile=profile)
    assert notices
    profile.refresh_from_db()
    assert (profile.is_enabled, profile.draft["instructions"]) == (False, "A draft.")
