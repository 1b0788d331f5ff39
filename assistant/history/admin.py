"""Admin for history: transcripts, the usage ledger, model prices and quotas.

Transcripts need their own permission (``history.view_conversation``) and every opening is
logged; the ledger is read-only.
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _

from assistant.history import dashboard, timeline
from assistant.history.models import Conversation, ModelPrice, Turn, UsageQuota, UsageRecord
from assistant.history.records import TIMING_FIELDS

audit = logging.getLogger("assistant.audit")
DASHBOARD_DAYS = 30


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written by the service only: staff look, never edit."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:  # noqa: D102
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:  # noqa: D102
        return False


class TurnInline(admin.TabularInline):
    """A conversation's turns, in order, read-only."""

    model = Turn
    extra = 0
    can_delete = False
    fields = ("seq", "role", "text", "started_at", "interrupted", "heard_ms", *TIMING_FIELDS)
    readonly_fields = fields

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Whoever may read the conversation may read its turns."""
        return request.user.has_perm("history.view_conversation")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:  # noqa: D102
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:  # noqa: D102
        return False


@admin.register(Conversation)
class ConversationAdmin(ReadOnlyAdmin):
    """Transcripts: only staff with ``history.view_conversation``; each opening is logged."""

    list_display = (
        "started_at",
        "user",
        "profile_name",
        "profile_version",
        "is_draft",
        "model",
        "worker",
        "ended_at",
        "end_reason",
        "timeline_link",
    )
    list_filter = ("profile_name", "is_draft", "model", "end_reason")
    search_fields = ("user__username", "profile_name")
    date_hierarchy = "started_at"
    inlines = (TurnInline,)
    readonly_fields = (
        "user",
        "profile",
        "profile_name",
        "profile_version",
        "is_draft",
        "model",
        "started_at",
        "ended_at",
        "end_reason",
        "upstream_session_ids",
        "transcript_stored",
        "resumed_from",
        "worker",
        "timeline_link",
    )

    @admin.display(description=_("timeline"))
    def timeline_link(self, obj: Conversation) -> str:
        """The session timeline (turn timings, tool calls, errors, rollovers)."""
        url = reverse("admin:history_conversation_timeline", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, _("Timeline"))

    def get_urls(self) -> list[URLPattern]:  # noqa: D102
        return [
            path(
                "<uuid:conversation_id>/timeline/",
                self.admin_site.admin_view(self.timeline_view),
                name="history_conversation_timeline",
            ),
            *super().get_urls(),
        ]

    def timeline_view(self, request: HttpRequest, conversation_id: str) -> HttpResponse:
        """A session's timeline: staff who may read transcripts or the usage ledger.

        The turns' words are shown only to those who may read transcripts (and logged).
        """
        user = request.user
        show_text = user.has_perm("history.view_conversation")
        if not (show_text or user.has_perm("history.view_usagerecord")):
            raise PermissionDenied
        conversation = get_object_or_404(
            Conversation.objects.select_related("user"), pk=conversation_id
        )
        show_text = show_text and conversation.transcript_stored
        if show_text:
            audit.info(
                "timeline %s opened by %s (id %s)", conversation_id, user.get_username(), user.pk
            )
        context = {
            **self.admin_site.each_context(request),
            **timeline.timeline(conversation, show_text=show_text),
            "title": _("Session timeline"),
        }
        return TemplateResponse(request, "admin/history/timeline.html", context)

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        """The transcript, logged (who opened which) when shown."""
        response = super().change_view(request, object_id, form_url, extra_context)
        if response.status_code == 200:
            audit.info(
                "transcript %s opened by %s (id %s)",
                object_id,
                request.user.get_username(),
                request.user.pk,
            )
        return response


@admin.register(UsageRecord)
class UsageRecordAdmin(ReadOnlyAdmin):
    """The ledger: a row per response and one accrued row per session; the usage dashboard."""

    change_list_template = "admin/history/usagerecord/change_list.html"

    list_display = (
        "created_at",
        "user",
        "model",
        "kind",
        "audio_in_seconds",
        "audio_out_seconds",
        "typed_seconds",
        "input_tokens",
        "output_tokens",
        "estimated_cost",
    )
    list_filter = ("model", "kind")
    search_fields = ("user__username", "session_id", "response_id")
    date_hierarchy = "created_at"

    def get_urls(self) -> list[URLPattern]:  # noqa: D102
        dashboard_view = self.admin_site.admin_view(self.dashboard_view)
        return [
            path("dashboard/", dashboard_view, name="history_usage_dashboard"),
            *super().get_urls(),
        ]

    def dashboard_view(self, request: HttpRequest) -> HttpResponse:
        """Charts and tables of sessions, minutes and cost (needs ``view_usagerecord``)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        data = dashboard.dashboard(days=DASHBOARD_DAYS)
        tables = [
            (_("User"), _named(data["by_user"], "user__username")),
            (_("Profile"), _named(data["by_profile"], "profile_name")),
            (_("Model"), _named(data["by_model"], "model")),
        ]
        latency = data["latency"]
        latency_tables = [
            (_("Profile"), latency["by_profile"], "latency-by-profile"),
            (_("Worker"), latency["by_worker"], "latency-by-worker"),
            (_("Day"), [row for row in latency["per_day"] if row["turns"]], "latency-by-day"),
        ]
        context = {
            **self.admin_site.each_context(request),
            **data,
            "tables": tables,
            "latency_tables": latency_tables,
            "title": _("Usage dashboard"),
        }
        return TemplateResponse(request, "admin/history/usage_dashboard.html", context)


def _named(rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    return [{**row, "name": row[key]} for row in rows]


@admin.register(ModelPrice)
class ModelPriceAdmin(admin.ModelAdmin):
    """Prices per million tokens, behind every cost estimate."""

    list_display = (
        "model",
        "currency",
        "text_input",
        "audio_input",
        "cached_input",
        "text_output",
        "audio_output",
    )


@admin.register(UsageQuota)
class UsageQuotaAdmin(admin.ModelAdmin):
    """Limits per user or group; a user gets the most generous that applies."""

    list_display = ("__str__", "minutes_per_day", "minutes_per_month", "cost_per_month")
    autocomplete_fields = ("user", "group")
    search_fields = ("user__username", "group__name")
