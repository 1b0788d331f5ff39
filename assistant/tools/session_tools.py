"""A profile's tools as a live session carries them, and their changes reaching live sessions.

A session's :class:`~assistant.voicelive.config.SessionConfig` lists its tools (what
``session.update`` sends, plus approval, interim phrase and timeout per tool). When an admin
changes a tool or which profiles have it, the profiles concerned are marked as saved now and
their live sessions told, exactly like a profile edit: the layer message is the fast path,
the heartbeat's comparison of ``updated_at`` the slow one.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.db.models.signals import m2m_changed, post_save, pre_delete
from django.dispatch import receiver
from django.utils import timezone

from assistant import services
from assistant.models import AssistantProfile
from assistant.tools.models import Tool
from assistant.tools.specs import tools_for_profile
from assistant.voicelive.config import SessionTool


def session_tools(profile_id: int | None) -> tuple[SessionTool, ...]:
    """The enabled tools of a profile, detached (synchronous ORM: call off the event loop)."""
    return tuple(
        SessionTool(
            name=spec.name,
            definition=spec.session_tool(),
            requires_approval=spec.requires_approval,
            interim_phrase=spec.interim_phrase,
            timeout_seconds=spec.timeout_seconds,
        )
        for spec in tools_for_profile(profile_id)
    )


def profiles_touched(profile_ids: Iterable[int]) -> None:
    """Mark the profiles as changed now and tell their live sessions once committed."""
    ids = sorted(set(profile_ids))
    if not ids:
        return
    AssistantProfile.objects.filter(pk__in=ids).update(updated_at=timezone.now())
    for profile_id in ids:
        transaction.on_commit(
            functools.partial(services.profile_changed_notify, profile_id=profile_id)
        )


def _profile_ids(tool: Tool) -> list[int]:
    if tool.pk is None:
        return []
    return list(tool.profiles.values_list("pk", flat=True))


@receiver(post_save, sender=Tool, dispatch_uid="tools_saved_reach_sessions")
def tool_saved(sender: Any, instance: Tool, **kwargs: Any) -> None:
    """A tool edited: the sessions of its profiles reload their tools."""
    profiles_touched(_profile_ids(instance))


@receiver(pre_delete, sender=Tool, dispatch_uid="tools_deleted_reach_sessions")
def tool_deleted(sender: Any, instance: Tool, **kwargs: Any) -> None:
    """A tool deleted: its profiles are known only before the delete."""
    profiles_touched(_profile_ids(instance))


@receiver(m2m_changed, sender=Tool.profiles.through, dispatch_uid="tool_profiles_reach_sessions")
def tool_profiles_changed(
    sender: Any,
    instance: Any,
    action: str,
    reverse: bool,
    pk_set: set[int] | None,
    **kwargs: Any,
) -> None:
    """A tool given to or taken from profiles (from either side of the relation)."""
    if action not in {"post_add", "post_remove", "pre_clear"}:
        return
    if reverse:
        profiles_touched([instance.pk])  # instance is the profile
    elif action == "pre_clear":
        profiles_touched(_profile_ids(instance))
    else:
        profiles_touched(pk_set or ())
