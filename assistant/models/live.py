"""The live-session registry: one row per call, and the monitors following it."""

from __future__ import annotations

import uuid
from typing import ClassVar

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from assistant.models.profile import AssistantProfile


class LiveSession(models.Model):
    """One live voice session, registered by the worker that holds its websocket.

    The row is the cross-worker registry: it survives a worker crash, and rows whose heartbeat
    stopped are treated as gone after a few heartbeat periods (deleted at the user's next claim).
    """

    id = models.UUIDField(_("id"), primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="live_sessions",
        verbose_name=_("user"),
    )
    profile = models.ForeignKey(
        AssistantProfile,
        on_delete=models.SET_NULL,
        null=True,
        related_name="live_sessions",
        verbose_name=_("profile"),
    )
    worker = models.CharField(_("worker"), max_length=120)
    channel_name = models.CharField(_("channel"), max_length=200)
    state = models.CharField(_("state"), max_length=30, default="connecting")
    started_at = models.DateTimeField(_("started"), auto_now_add=True)
    last_seen = models.DateTimeField(_("last heartbeat"), db_index=True)
    audio_in_seconds = models.FloatField(_("audio in (s)"), default=0.0)
    audio_out_seconds = models.FloatField(_("audio out (s)"), default=0.0)
    typed_seconds = models.FloatField(_("typed (s)"), default=0.0)
    # Set by terminate / takeover / logout; the holding worker reads it on its next heartbeat, so
    # an end request still lands when the channel-layer message was lost.
    end_reason = models.CharField(_("end requested"), max_length=20, blank=True)

    class Meta:
        verbose_name = _("live session")
        verbose_name_plural = _("live sessions")
        ordering: ClassVar = ["-started_at"]
        permissions: ClassVar = [
            ("terminate_livesession", _("Can terminate live sessions")),
            ("monitor_livesession", _("Can monitor live sessions")),
        ]

    def __str__(self) -> str:
        return f"{self.user} on {self.worker}"


class MonitorAttachment(models.Model):
    """A live monitor following a session: the registry's copy of its ``monitor.attach``.

    The session's worker reads these on every heartbeat, so a monitor attaches (and detaches)
    even when the channel-layer message was lost. Deleted with the session.
    """

    session = models.ForeignKey(
        LiveSession,
        on_delete=models.CASCADE,
        related_name="monitors",
        verbose_name=_("session"),
    )
    channel_name = models.CharField(_("monitor channel"), max_length=200, unique=True)
    audio = models.BooleanField(_("with audio"), default=False)
    created_at = models.DateTimeField(_("attached"), auto_now_add=True)

    class Meta:
        verbose_name = _("monitor attachment")
        verbose_name_plural = _("monitor attachments")

    def __str__(self) -> str:
        return f"monitor of {self.session_id}"
