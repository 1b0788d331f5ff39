"""Conversations, their turns, the usage ledger, prices and quotas.

The tables keep the names they had when these models belonged to the ``assistant`` app.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import ClassVar

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

#: Prices are per million tokens, as the providers publish them.
TOKENS_PER_PRICE_UNIT = 1_000_000


class Conversation(models.Model):
    """One talk session as the user saw it: from Start to its end, across rollovers."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="conversations",
        verbose_name=_("user"),
    )
    profile = models.ForeignKey(
        "assistant.AssistantProfile",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="conversations",
        verbose_name=_("profile"),
    )
    # A snapshot: the profile may be renamed or deleted later.
    profile_name = models.CharField(_("profile name"), max_length=200, blank=True)
    model = models.CharField(_("model"), max_length=100, blank=True)
    started_at = models.DateTimeField(_("started"), default=timezone.now)
    ended_at = models.DateTimeField(_("ended"), null=True, blank=True)
    end_reason = models.CharField(_("end reason"), max_length=64, blank=True)
    upstream_session_ids = models.JSONField(
        _("upstream session ids"),
        default=list,
        blank=True,
        help_text=_("One per upstream connection: a rollover adds one."),
    )
    transcript_stored = models.BooleanField(
        _("transcript stored"),
        default=True,
        help_text=_("Off when the profile keeps usage only: the turns then have no text."),
    )
    resumed_from = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="continuations",
        verbose_name=_("continues"),
    )
    # The profile version it ran on (assistant/models/versions.py), and whether it was staff
    # trying the profile's draft (then never counted against a quota).
    profile_version = models.PositiveIntegerField(_("profile version"), null=True, blank=True)
    is_draft = models.BooleanField(_("draft"), default=False)
    worker = models.CharField(
        _("worker"),
        max_length=120,
        blank=True,
        help_text=_("The worker process that held the call (VOICE_WORKER_NAME or host:pid)."),
    )

    class Meta:
        db_table = "assistant_conversation"
        ordering: ClassVar = ["-started_at"]
        indexes: ClassVar = [models.Index(fields=["user", "-started_at"])]
        verbose_name = _("conversation")
        verbose_name_plural = _("conversations")

    def __str__(self) -> str:
        return f"{self.profile_name or _('conversation')} · {self.started_at:%Y-%m-%d %H:%M}"

    @property
    def duration_seconds(self) -> float | None:
        """How long it lasted, or None while it is live."""
        if self.ended_at is None:
            return None
        return max(0.0, (self.ended_at - self.started_at).total_seconds())


class Turn(models.Model):
    """One utterance of a conversation, in order."""

    class Role(models.TextChoices):
        USER = "user", _("User (spoken)")
        TYPED = "typed", _("User (typed)")
        ASSISTANT = "assistant", _("Assistant")
        TOOL = "tool", _("Tool")

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="turns", verbose_name=_("conversation")
    )
    seq = models.PositiveIntegerField(_("order"))
    role = models.CharField(_("role"), max_length=16, choices=Role.choices)
    text = models.TextField(_("text"), blank=True)
    item_id = models.CharField(_("item id"), max_length=128, blank=True)
    response_id = models.CharField(_("response id"), max_length=128, blank=True)
    started_at = models.DateTimeField(_("started"))
    ended_at = models.DateTimeField(_("ended"), null=True, blank=True)
    interrupted = models.BooleanField(_("interrupted"), default=False)
    heard_ms = models.PositiveIntegerField(
        _("heard (ms)"),
        null=True,
        blank=True,
        help_text=_("For an interrupted reply: how much of it the user heard."),
    )
    latency_ms = models.PositiveIntegerField(
        _("latency (ms)"),
        null=True,
        blank=True,
        help_text=_(
            "End of the user's speech (where it ended in the audio) to the first audio of this "
            "reply at the service."
        ),
    )
    eot_ms = models.PositiveIntegerField(
        _("end of turn (ms)"),
        null=True,
        blank=True,
        help_text=_("End of speech to the end of the turn detected upstream."),
    )
    transcription_ms = models.PositiveIntegerField(
        _("transcription (ms)"),
        null=True,
        blank=True,
        help_text=_("End of turn to the user's transcript, when it came before the reply."),
    )
    tool_ms = models.PositiveIntegerField(
        _("tools (ms)"), null=True, blank=True, help_text=_("Tool calls before the reply.")
    )
    first_audio_ms = models.PositiveIntegerField(
        _("model to first audio (ms)"),
        null=True,
        blank=True,
        help_text=_("The rest of the latency: the model and speech synthesis upstream."),
    )
    played_latency_ms = models.PositiveIntegerField(
        _("played latency (ms)"),
        null=True,
        blank=True,
        help_text=_("End of speech to the page's report that the reply began playing."),
    )

    class Meta:
        db_table = "assistant_turn"
        ordering: ClassVar = ["conversation", "seq"]
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["conversation", "seq"], name="turn_order_unique")
        ]
        verbose_name = _("turn")
        verbose_name_plural = _("turns")

    def __str__(self) -> str:
        return f"{self.get_role_display()}: {self.text[:60]}"


class ConversationEvent(models.Model):
    """Something that happened in a conversation besides its turns: the session timeline's."""

    class Kind(models.TextChoices):
        TOOL = "tool", _("Tool call")
        ERROR = "error", _("Error")
        ROLLOVER = "rollover", _("Upstream rollover")
        QUOTA_WARNING = "quota_warning", _("Quota warning")

    conversation = models.ForeignKey(
        Conversation,
        on_delete=models.CASCADE,
        related_name="events",
        verbose_name=_("conversation"),
    )
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    at = models.DateTimeField(_("when"))
    detail = models.CharField(_("detail"), max_length=200, blank=True)
    duration_ms = models.PositiveIntegerField(_("duration (ms)"), null=True, blank=True)

    class Meta:
        ordering: ClassVar = ["conversation", "at"]
        verbose_name = _("conversation event")
        verbose_name_plural = _("conversation events")

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.detail}"


class UsageRecord(models.Model):
    """What a session used: the ledger behind reports, charts and quotas.

    One row per response (its tokens, cost, and the audio and typed text since the previous
    response) and one *accrued* row per session: what the session used since its last
    response, rewritten on every flush while it is live, so a worker that dies loses at most a
    flush interval of it. Every row counts once: totals are plain sums over all rows.

    Kept when the user deletes the conversation (billing needs it), so it carries its own
    user, session id and model rather than relying on the conversation row.
    """

    class Kind(models.TextChoices):
        RESPONSE = "response", _("Response")
        ACCRUED = "accrued", _("Accrued since the last response")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="usage_records",
        verbose_name=_("user"),
    )
    conversation = models.ForeignKey(
        Conversation,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="usage_records",
        verbose_name=_("conversation"),
    )
    session_id = models.UUIDField(_("session"), db_index=True)
    profile_name = models.CharField(_("profile name"), max_length=200, blank=True)
    model = models.CharField(_("model"), max_length=100)
    profile_version = models.PositiveIntegerField(_("profile version"), null=True, blank=True)
    is_draft = models.BooleanField(
        _("draft"), default=False, help_text=_("Staff trying a draft: not counted in quotas.")
    )
    kind = models.CharField(
        _("kind"),
        max_length=16,
        choices=Kind.choices,
        default=Kind.RESPONSE,
        help_text=_(
            "Accrued: what the session used since its last response, updated while it is "
            "live (dated by its latest update)."
        ),
    )
    response_id = models.CharField(_("response id"), max_length=128, blank=True)
    created_at = models.DateTimeField(_("when"), default=timezone.now, db_index=True)
    audio_in_seconds = models.FloatField(_("audio in (s)"), default=0.0)
    audio_out_seconds = models.FloatField(_("audio out (s)"), default=0.0)
    typed_seconds = models.FloatField(
        _("typed (s)"),
        default=0.0,
        help_text=_("Typed messages, at the time it takes to say them (at least 1 s each)."),
    )
    input_tokens = models.PositiveIntegerField(_("input tokens"), default=0)
    input_text_tokens = models.PositiveIntegerField(_("input text tokens"), default=0)
    input_audio_tokens = models.PositiveIntegerField(_("input audio tokens"), default=0)
    input_cached_tokens = models.PositiveIntegerField(_("cached input tokens"), default=0)
    output_tokens = models.PositiveIntegerField(_("output tokens"), default=0)
    output_text_tokens = models.PositiveIntegerField(_("output text tokens"), default=0)
    output_audio_tokens = models.PositiveIntegerField(_("output audio tokens"), default=0)
    estimated_cost = models.DecimalField(
        _("estimated cost"), max_digits=14, decimal_places=6, default=Decimal(0)
    )

    class Meta:
        db_table = "assistant_usagerecord"
        ordering: ClassVar = ["-created_at"]
        indexes: ClassVar = [models.Index(fields=["user", "created_at"])]
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["session_id"],
                condition=Q(kind="accrued"),
                name="one_accrued_usage_per_session",
            )
        ]
        verbose_name = _("usage record")
        verbose_name_plural = _("usage records")

    def __str__(self) -> str:
        return f"{self.model} · {self.input_tokens}+{self.output_tokens} tokens"


class ModelPrice(models.Model):
    """Prices of one model, per million tokens, for the cost estimates."""

    model = models.CharField(_("model"), max_length=100, unique=True)
    currency = models.CharField(_("currency"), max_length=3, default="USD")
    text_input = models.DecimalField(
        _("text input"), max_digits=10, decimal_places=4, default=Decimal(0)
    )
    audio_input = models.DecimalField(
        _("audio input"), max_digits=10, decimal_places=4, default=Decimal(0)
    )
    cached_input = models.DecimalField(
        _("cached input"), max_digits=10, decimal_places=4, default=Decimal(0)
    )
    text_output = models.DecimalField(
        _("text output"), max_digits=10, decimal_places=4, default=Decimal(0)
    )
    audio_output = models.DecimalField(
        _("audio output"), max_digits=10, decimal_places=4, default=Decimal(0)
    )

    class Meta:
        db_table = "assistant_modelprice"
        ordering: ClassVar = ["model"]
        verbose_name = _("model price")
        verbose_name_plural = _("model prices")

    def __str__(self) -> str:
        return f"{self.model} ({self.currency})"


#: What a quota minute is, for the admin (assistant/history/usage.py has the why).
MINUTES_HELP = _(
    "Minutes of conversation audio both ways: the user's microphone plus the assistant's "
    "spoken replies, and typed messages at the time it takes to say them (at least 1 s each). "
    "A hands-free conversation in which the assistant speaks a third of the time uses about "
    "1.3 minutes per minute. Empty: no limit."
)


class UsageQuota(models.Model):
    """A limit for one user or one group; unset fields do not limit."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="usage_quotas",
        verbose_name=_("user"),
    )
    group = models.ForeignKey(
        Group,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="usage_quotas",
        verbose_name=_("group"),
    )
    minutes_per_day = models.PositiveIntegerField(
        _("minutes per day"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text=MINUTES_HELP,
    )
    minutes_per_month = models.PositiveIntegerField(
        _("minutes per month"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text=MINUTES_HELP,
    )
    cost_per_month = models.DecimalField(
        _("estimated cost per month"),
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0.01"))],
    )

    class Meta:
        db_table = "assistant_usagequota"
        constraints: ClassVar = [
            models.CheckConstraint(
                condition=Q(user__isnull=False, group__isnull=True)
                | Q(user__isnull=True, group__isnull=False),
                name="quota_for_user_or_group",
            ),
            models.UniqueConstraint(fields=["user"], name="one_quota_per_user"),
            models.UniqueConstraint(fields=["group"], name="one_quota_per_group"),
        ]
        verbose_name = _("usage quota")
        verbose_name_plural = _("usage quotas")

    def __str__(self) -> str:
        return str(self.user or self.group)

    def clean(self) -> None:
        """One owner (a user or a group) and at least one limit."""
        if (self.user_id is None) == (self.group_id is None):
            raise ValidationError(_("A quota is for one user or for one group, not both."))
        limits = (self.minutes_per_day, self.minutes_per_month, self.cost_per_month)
        if all(limit is None for limit in limits):
            raise ValidationError(_("Set at least one limit (or delete the quota)."))
