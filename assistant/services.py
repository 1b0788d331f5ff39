"""Assistant profiles: who may use which, what a session is configured with, change notices."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import transaction
from django.db.models import QuerySet

from assistant import protocol
from assistant.codes import ClientError, ErrorCode
from assistant.live.layer import layer_send_sync
from assistant.models import AssistantProfile
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


def _config_from_profile(profile: AssistantProfile, first_name: str = "") -> SessionConfig:
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


def profile_config_get(
    *, user: AbstractBaseUser | AnonymousUser, profile_id: int | None
) -> SessionConfig:
    """The configuration for a new session of ``user``.

    Args:
        user: the logged-in user.
        profile_id: the profile picked on the talk page, or None for the user's first choice.

    Returns:
        The detached configuration.

    Raises:
        ClientError: ``profile_forbidden`` when the profile is not assigned to the user (or
            disabled), ``profile_unavailable`` when the user has no profile at all.
    """
    allowed = profiles_for_user(user=user)
    first_name = first_name_clean(str(getattr(user, "first_name", "") or ""))
    if profile_id is None:
        if not allowed:
            raise ClientError(ErrorCode.PROFILE_UNAVAILABLE)
        return _config_from_profile(allowed[0], first_name)
    for profile in allowed:
        if profile.pk == profile_id:
            return _config_from_profile(profile, first_name)
    raise ClientError(ErrorCode.PROFILE_FORBIDDEN)


aprofile_config_get = database_sync_to_async(profile_config_get)


def profile_config_reload(*, profile_id: int) -> SessionConfig | None:
    """Reload a profile after an admin changed it; None when it is gone or disabled."""
    profile = AssistantProfile.objects.filter(pk=profile_id, is_enabled=True).first()
    return _config_from_profile(profile) if profile else None


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
