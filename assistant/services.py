"""Assistant profiles: who may use which, what a session is configured with, change notices."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, PermissionsMixin
from django.db import transaction
from django.db.models import Max, QuerySet

from assistant import protocol
from assistant.codes import ClientError, ErrorCode
from assistant.live.layer import layer_send_sync
from assistant.models import AssistantProfile, ProfileVersion
from assistant.models.versions import (
    TOOLS_KEY,
    UNVERSIONED_FIELDS,
    profile_snapshot,
    snapshot_apply,
)
from assistant.voicelive.config import SessionConfig, SessionTool, profile_version
from assistant.voicelive.personalize import first_name_clean
from assistant.voicelive.turn_settings import language_codes, phrase_list_parse

logger = logging.getLogger(__name__)

#: Where a session's tools come from, given its profile id: the tools app registers its lookup
#: when ready (``session_tools_register``), so profiles need not know about tools.
SessionToolsLookup = Callable[[int], tuple[SessionTool, ...]]
_session_tools_lookups: list[SessionToolsLookup] = []


def session_tools_register(lookup: SessionToolsLookup) -> None:
    """Give every session configuration the tools ``lookup`` finds for its profile (once)."""
    if lookup not in _session_tools_lookups:
        _session_tools_lookups.append(lookup)


def _session_tools(profile_id: int) -> tuple[SessionTool, ...]:
    """The tools a session of the profile carries, from every registered lookup."""
    return tuple(tool for lookup in _session_tools_lookups for tool in lookup(profile_id))


def profile_group(profile_id: int) -> str:
    """The channel-layer group of every live session using a profile."""
    return f"profile.{profile_id}"


@dataclass(frozen=True, slots=True)
class ProfileChoice:
    """A profile as the profile picker shows it (and the talk page's defaults for it)."""

    id: int
    name: str
    turn_mode: str = "voice_activity"
    allow_turn_mode_switch: bool = False
    speakerphone_default: bool = False


#: The permission to publish a profile's draft and to roll back to an older version.
PUBLISH_PERMISSION = "assistant.publish_profile"
#: Who may try a draft on the talk page: staff who may edit profiles.
DRAFT_PERMISSION = "assistant.change_assistantprofile"


def _config_from_profile(
    profile: AssistantProfile, first_name: str = "", *, draft: bool = False
) -> SessionConfig:
    if draft and profile.draft is not None:
        snapshot_apply(profile, profile.draft)  # in memory only: the row stays as published
    return SessionConfig(
        profile_id=profile.pk,
        profile_name=profile.name,
        instructions=profile.instructions,
        model=profile.model or settings.AZURE_VOICELIVE_MODEL,
        voice=profile.voice,
        temperature=profile.temperature,
        max_response_output_tokens=profile.max_response_output_tokens,
        turn_detection=profile.turn_detection,
        vad_threshold=profile.vad_threshold,
        vad_prefix_padding_ms=profile.vad_prefix_padding_ms,
        vad_silence_duration_ms=profile.vad_silence_duration_ms,
        interrupt_response=profile.interrupt_response,
        remove_filler_words=profile.remove_filler_words,
        input_transcription_model=profile.input_transcription_model,
        input_transcription_language=",".join(language_codes(profile.input_transcription_language)),
        noise_suppression=profile.noise_suppression,
        echo_cancellation=profile.echo_cancellation,
        turn_mode=profile.turn_mode,
        allow_turn_mode_switch=profile.allow_turn_mode_switch,
        greeting_mode=profile.greeting_mode,
        greeting_text=profile.greeting_text,
        idle_check_in_seconds=profile.idle_check_in_seconds,
        idle_end_seconds=profile.idle_end_seconds,
        speakerphone_default=profile.speakerphone_default,
        first_name=first_name,
        profile_version=profile_version(profile.updated_at),
        keep_transcripts=profile.keep_transcripts,
        tools=_session_tools(profile.pk),
        vad_speech_duration_ms=profile.vad_speech_duration_ms,
        vad_languages=language_codes(profile.vad_languages),
        auto_truncate=profile.auto_truncate,
        eou_model=profile.eou_model,
        eou_threshold_level=profile.eou_threshold_level,
        eou_timeout_ms=profile.eou_timeout_ms,
        phrase_list=phrase_list_parse(profile.phrase_list),
        backchannels=profile.backchannels,
        backchannel_words=profile.backchannel_words,
        version_number=profile.version or None,
        is_draft=draft,
    )


def profiles_for_user(*, user: AbstractBaseUser | AnonymousUser) -> list[AssistantProfile]:
    """The enabled profiles a user may pick, best match first.

    Profiles assigned to the user come first, then those assigned through groups; a user with
    no assignment gets the site default.
    """
    if not user.is_authenticated:
        return []
    enabled: QuerySet[AssistantProfile] = AssistantProfile.objects.filter(is_enabled=True)
    direct = list(enabled.filter(users=user.pk).order_by("name"))
    seen = {profile.pk for profile in direct}
    via_groups = [
        profile
        for profile in enabled.filter(groups__user=user.pk).distinct().order_by("name")
        if profile.pk not in seen
    ]
    assigned = direct + via_groups
    if assigned:
        return assigned
    return list(enabled.filter(is_default=True))


def profile_choices_for_user(*, user: AbstractBaseUser | AnonymousUser) -> list[ProfileChoice]:
    """The profile picker's entries for a user."""
    return [
        ProfileChoice(
            id=p.pk,
            name=p.name,
            turn_mode=p.turn_mode,
            allow_turn_mode_switch=p.allow_turn_mode_switch,
            speakerphone_default=p.speakerphone_default,
        )
        for p in profiles_for_user(user=user)
    ]


def can_try_drafts(user: AbstractBaseUser | AnonymousUser) -> bool:
    """Staff who may edit profiles may talk to their drafts."""
    if not isinstance(user, PermissionsMixin):  # anonymous
        return False
    return bool(getattr(user, "is_staff", False)) and user.has_perm(DRAFT_PERMISSION)


def profile_draft_choice(*, profile_id: int) -> ProfileChoice | None:
    """A profile's draft as the talk page offers it (None: no such profile)."""
    profile = AssistantProfile.objects.filter(pk=profile_id).first()
    if profile is None:
        return None
    if profile.draft is not None:
        snapshot_apply(profile, profile.draft)
    return ProfileChoice(
        id=profile.pk,
        name=profile.name,
        turn_mode=profile.turn_mode,
        allow_turn_mode_switch=profile.allow_turn_mode_switch,
        speakerphone_default=profile.speakerphone_default,
    )


def profile_config_get(
    *, user: AbstractBaseUser | AnonymousUser, profile_id: int | None, draft: bool = False
) -> SessionConfig:
    """The configuration for a new session of ``user``.

    Args:
        user: the logged-in user.
        profile_id: the profile picked on the talk page, or None for the user's first choice.
        draft: talk to the profile's draft (its unpublished edits) instead of its published
            version; staff only, any profile.

    Returns:
        The detached configuration.

    Raises:
        ClientError: ``profile_forbidden`` when the profile is not assigned to the user (or
            disabled), ``profile_unavailable`` when the user has no profile at all,
            ``draft_forbidden`` when a user who may not try drafts asks for one (or names no
            profile).
    """
    first_name = first_name_clean(str(getattr(user, "first_name", "") or ""))
    if draft:
        if not user.is_authenticated or not can_try_drafts(user) or profile_id is None:
            raise ClientError(ErrorCode.DRAFT_FORBIDDEN)
        profile = AssistantProfile.objects.filter(pk=profile_id).first()
        if profile is None:
            raise ClientError(ErrorCode.PROFILE_UNAVAILABLE)
        return _config_from_profile(profile, first_name, draft=True)
    allowed = profiles_for_user(user=user)
    if profile_id is None:
        if not allowed:
            raise ClientError(ErrorCode.PROFILE_UNAVAILABLE)
        return _config_from_profile(allowed[0], first_name)
    for profile in allowed:
        if profile.pk == profile_id:
            return _config_from_profile(profile, first_name)
    raise ClientError(ErrorCode.PROFILE_FORBIDDEN)


aprofile_config_get = database_sync_to_async(profile_config_get)


def profile_config_of(
    *, profile_id: int, version: int | None, draft_snapshot: dict[str, Any] | None = None
) -> SessionConfig:
    """A profile's draft (``version`` None) or its version ``version``, as a session runs it.

    Nothing is saved: the version's settings are applied to the profile in memory. The tools
    are those assigned now. For replays (``evaluate_profile``, evaluation runs); a run passes
    the draft as it was when requested (``draft_snapshot``) instead of the draft of now.

    Raises:
        LookupError: no such profile, or no such version of it.
    """
    profile = AssistantProfile.objects.filter(pk=profile_id).first()
    if profile is None:
        msg = f"no profile {profile_id}"
        raise LookupError(msg)
    if version is None:
        if draft_snapshot is not None:
            profile.draft = draft_snapshot
        return _config_from_profile(profile, draft=True)
    found = ProfileVersion.objects.filter(profile=profile, number=version).first()
    if found is None:
        msg = f"profile {profile_id} has no version {version}"
        raise LookupError(msg)
    snapshot_apply(profile, found.snapshot)
    profile.version = found.number
    return _config_from_profile(profile)


def profile_config_reload(*, profile_id: int, draft: bool = False) -> SessionConfig | None:
    """Reload a profile after an admin changed it; None when it is gone or disabled.

    A session on the draft reloads the draft (it may be tried on a disabled profile too).
    """
    profiles = AssistantProfile.objects.filter(pk=profile_id)
    profile = (profiles if draft else profiles.filter(is_enabled=True)).first()
    return _config_from_profile(profile, draft=draft) if profile else None


aprofile_config_reload = database_sync_to_async(profile_config_reload)


def profile_save(*, profile: AssistantProfile) -> None:
    """Save a profile, keeping a single site default, then tell live sessions about it."""
    with transaction.atomic():
        if profile.is_default:
            AssistantProfile.objects.filter(is_default=True).exclude(pk=profile.pk).update(
                is_default=False
            )
        profile.save()
    profile_id = profile.pk
    transaction.on_commit(lambda: profile_changed_notify(profile_id=profile_id))


#: Profile fields that are neither versioned nor edited by admins.
_BOOKKEEPING_FIELDS = frozenset({"id", "updated_at", "draft", "version"})


def profile_draft_save(*, profile: AssistantProfile) -> None:
    """Save an admin's edit of a profile without changing what its users get.

    The fields a version holds go to the profile's draft (none when they equal the published
    ones); the others (name, who may use it, enabled, default, keeping transcripts) apply at
    once, as they did before versions.
    """
    saved = AssistantProfile.objects.get(pk=profile.pk)
    draft = profile_snapshot(profile)
    policies = [
        field.attname
        for field in AssistantProfile._meta.concrete_fields
        if field.name in UNVERSIONED_FIELDS and field.name not in _BOOKKEEPING_FIELDS
    ]
    changed = [name for name in policies if getattr(saved, name) != getattr(profile, name)]
    saved.draft = None if draft == profile_snapshot(saved) else draft
    if changed:
        for name in changed:
            setattr(saved, name, getattr(profile, name))
        profile_save(profile=saved)
    else:
        # Only the draft changed: live sessions have nothing to reload (updated_at stays).
        AssistantProfile.objects.filter(pk=saved.pk).update(draft=saved.draft)
    profile.draft, profile.version, profile.updated_at = (
        saved.draft,
        saved.version,
        saved.updated_at,
    )


def profile_publish(
    *,
    profile_id: int,
    author: AbstractBaseUser | AnonymousUser | None,
    note: str = "",
    restore: ProfileVersion | None = None,
) -> ProfileVersion:
    """Publish a profile's draft (or restore an older version) as its next version.

    The new version's settings become the profile's, for new sessions at once and for live
    ones as any profile change (``profile_changed_notify``). Nothing is rewritten: a rollback is
    a new number whose settings are the older version's, tools included (those since deleted
    are left out); a draft's publish records the tools assigned now (tools are assigned on the
    tools' admin page and apply at once). The draft is cleared either way.
    """
    with transaction.atomic():
        profile = AssistantProfile.objects.select_for_update().get(pk=profile_id)
        if restore is not None:
            snapshot = dict(restore.snapshot)
            tools_model = profile.tools.model
            profile.tools.set(tools_model.objects.filter(name__in=snapshot.get(TOOLS_KEY, [])))
        else:
            snapshot = profile.draft if profile.draft is not None else profile_snapshot(profile)
        snapshot_apply(profile, snapshot)
        latest = profile.versions.aggregate(latest=Max("number"))["latest"]
        profile.version = (latest or 0) + 1
        profile.draft = None
        profile_save(profile=profile)
        author_id = author.pk if author is not None and author.is_authenticated else None
        return ProfileVersion.objects.create(
            profile=profile,
            number=profile.version,
            snapshot=profile_snapshot(profile),
            author_id=author_id,
            note=note.strip(),
            restored_from=restore.number if restore is not None else None,
        )


def profile_changed_notify(*, profile_id: int) -> bool:
    """Tell every live session using the profile, on every worker, to reload it.

    Returns:
        False when the channel layer could not take the message (counted and logged); the
        sessions then pick the change up on their next heartbeat, from the database
        (``registry.sessions_tick``).
    """
    return layer_send_sync(
        profile_group(profile_id), protocol.profile_changed(profile_id), group=True
    )
