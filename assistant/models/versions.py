"""Profile versions: every published state of a profile, numbered and never changed.

A profile's row holds what users get (its published version); an admin's edits wait in its
``draft`` (a snapshot) until someone publishes them. A snapshot is every field that shapes a
call plus the names of the profile's tools; the fields left out (``UNVERSIONED_FIELDS``) say who
may use the profile, or are policies that take effect at once (keeping transcripts).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, ClassVar

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from assistant.models.profile import AssistantProfile

#: The profile fields a version does not hold, and why: identity and who may use it (``id``,
#: ``name``, ``is_enabled``, ``is_default``, ``users``, ``groups``), a privacy policy that must
#: not wait for a publish (``keep_transcripts``), and the bookkeeping of versions themselves.
UNVERSIONED_FIELDS = frozenset(
    {
        "id",
        "name",
        "is_enabled",
        "is_default",
        "users",
        "groups",
        "keep_transcripts",
        "updated_at",
        "draft",
        "version",
    }
)

#: The snapshot's key for the profile's tools (the names of the tools assigned to it).
TOOLS_KEY = "tools"


def versioned_field_names() -> tuple[str, ...]:
    """The profile fields a snapshot holds, in the model's order."""
    return tuple(
        field.name
        for field in AssistantProfile._meta.get_fields()
        if field.concrete and not field.many_to_many and field.name not in UNVERSIONED_FIELDS
    )


def profile_snapshot(
    profile: AssistantProfile, *, tools: list[str] | None = None
) -> dict[str, Any]:
    """What ``profile`` is as a version: its versioned fields and its tools' names.

    Args:
        profile: the profile, as saved or as edited in memory.
        tools: the tools' names; None reads the profile's current assignment.
    """
    snapshot: dict[str, Any] = {name: getattr(profile, name) for name in versioned_field_names()}
    if tools is None:
        tools = list(profile.tools.order_by("name").values_list("name", flat=True))
    snapshot[TOOLS_KEY] = sorted(tools)
    return snapshot


def snapshot_apply(profile: AssistantProfile, snapshot: dict[str, Any]) -> None:
    """Set ``profile``'s versioned fields from ``snapshot`` (in memory; tools are not fields).

    A field the snapshot lacks (added to the model after the snapshot was taken) keeps its
    current value.
    """
    for name in versioned_field_names():
        if name in snapshot:
            setattr(profile, name, snapshot[name])


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One field that differs between two snapshots; ``lines`` is a line diff for long text."""

    name: str
    label: str
    before: Any
    after: Any
    lines: tuple[str, ...] = ()


def snapshot_diff(before: dict[str, Any], after: dict[str, Any]) -> list[FieldChange]:
    """The fields that differ from ``before`` to ``after``, in the model's order, then tools."""
    changes = []
    for name in (*versioned_field_names(), TOOLS_KEY):
        old, new = before.get(name), after.get(name)
        if old == new:
            continue
        if name == TOOLS_KEY:
            label = str(_("tools"))
        else:
            label = str(getattr(AssistantProfile._meta.get_field(name), "verbose_name", name))
        if name == TOOLS_KEY:
            old, new = ", ".join(old or ()), ", ".join(new or ())
        lines: tuple[str, ...] = ()
        if isinstance(old, str) and isinstance(new, str) and ("\n" in old or "\n" in new):
            lines = tuple(
                line.rstrip("\n")
                for line in difflib.unified_diff(
                    old.splitlines(), new.splitlines(), lineterm="", n=2
                )
            )[2:]  # drop the ---/+++ header: the page names both sides
        changes.append(FieldChange(name=name, label=label, before=old, after=new, lines=lines))
    return changes


class ProfileVersion(models.Model):
    """One published state of a profile: numbered from 1 per profile, never edited."""

    profile = models.ForeignKey(
        "assistant.AssistantProfile",
        on_delete=models.CASCADE,
        related_name="versions",
        verbose_name=_("profile"),
    )
    number = models.PositiveIntegerField(_("version"))
    snapshot = models.JSONField(_("settings"))
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("published by"),
    )
    created_at = models.DateTimeField(_("published"), auto_now_add=True)
    note = models.TextField(_("note"), blank=True, max_length=1000)
    #: The version this one restored, for a rollback.
    restored_from = models.PositiveIntegerField(_("restores version"), null=True, blank=True)

    class Meta:
        verbose_name = _("profile version")
        verbose_name_plural = _("profile versions")
        ordering: ClassVar = ["profile", "-number"]
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["profile", "number"], name="profile_version_unique")
        ]
        permissions: ClassVar = [
            ("publish_profile", _("Can publish assistant profile versions and roll back")),
            ("run_evaluation", _("Can run profile evaluations and read their reports")),
        ]

    def __str__(self) -> str:
        return f"{self.profile_id} v{self.number}"
