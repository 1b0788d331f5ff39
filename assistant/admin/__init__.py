"""The assistant app's admin: profiles (a draft, publish, versions), live sessions, evaluations."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from assistant import services
from assistant.admin.evaluation import EVALUATION_PERMISSION  # registers the evaluation pages
from assistant.admin.versions import DRAFT, ProfileVersionsMixin
from assistant.codes import Ending
from assistant.live import registry
from assistant.models import CURATED_VOICES, AssistantProfile, LiveSession
from assistant.models.versions import snapshot_apply


class DatalistTextInput(forms.TextInput):
    """A text box with suggestions: curated values to pick, free text still allowed."""

    def __init__(self, suggestions: tuple[str, ...], attrs: dict[str, Any] | None = None) -> None:
        super().__init__(attrs)
        self.suggestions = suggestions

    def render(
        self, name: str, value: Any, attrs: dict[str, Any] | None = None, renderer: Any = None
    ) -> SafeString:
        list_id = f"{name}-suggestions"
        attrs = {**(attrs or {}), "list": list_id}
        box = super().render(name, value, attrs, renderer)
        options = format_html(
            "".join('<option value="{}">' for _ in self.suggestions), *self.suggestions
        )
        return format_html('{}<datalist id="{}">{}</datalist>', box, list_id, options)


class AssistantProfileForm(forms.ModelForm):
    class Meta:
        model = AssistantProfile
        fields = "__all__"  # noqa: DJ007 - every field is edited, in the fieldsets below
        widgets = {
            "voice": DatalistTextInput(CURATED_VOICES, attrs={"size": 40}),
            "instructions": forms.Textarea(attrs={"rows": 8, "cols": 80}),
            "phrase_list": forms.Textarea(attrs={"rows": 6, "cols": 40}),
        }


@admin.register(AssistantProfile)
class AssistantProfileAdmin(ProfileVersionsMixin, admin.ModelAdmin):
    """Profiles: the form edits the draft; Publish makes it the next version (with a note)."""

    form = AssistantProfileForm
    change_form_template = "admin/assistant/assistantprofile/change_form.html"
    list_display = (
        "name",
        "voice",
        "turn_mode",
        "turn_detection",
        "is_default",
        "is_enabled",
        "version",
        "has_draft",
        "updated_at",
    )
    list_filter = (
        "is_enabled",
        "is_default",
        "turn_detection",
        "eou_model",
        "input_transcription_model",
    )
    search_fields = ("name", "instructions", "voice", "users__username", "groups__name")
    filter_horizontal = ("users", "groups")
    readonly_fields = ("updated_at",)
    fieldsets = (
        (None, {"fields": ("name", "instructions", "is_enabled", "is_default")}),
        (
            _("Voice and model"),
            {"fields": ("voice", "model", "temperature", "max_response_output_tokens")},
        ),
        (
            _("Turn-taking"),
            {
                "fields": (
                    "turn_mode",
                    "allow_turn_mode_switch",
                    "turn_detection",
                    "vad_silence_duration_ms",
                    "eou_model",
                    "eou_threshold_level",
                    "eou_timeout_ms",
                    "vad_threshold",
                    "vad_prefix_padding_ms",
                    "vad_speech_duration_ms",
                    "vad_languages",
                    "interrupt_response",
                    "remove_filler_words",
                    "auto_truncate",
                    "backchannels",
                    "backchannel_words",
                ),
                "description": _(
                    "When the assistant decides the user has finished, and whether users may "
                    "interrupt it. A user's turn ends after a pause of the silence duration; "
                    "end-of-utterance detection lets people pause mid-thought without being cut "
                    "off. Changes apply to live sessions from their next turn. "
                    "docs/turn-taking.md says what each setting costs."
                ),
            },
        ),
        (
            _("Language and vocabulary"),
            {
                "fields": (
                    "input_transcription_model",
                    "input_transcription_language",
                    "phrase_list",
                ),
                "description": _(
                    "How what users say is written down: for the live transcript, the history "
                    "and, with models such as gpt-4.1, for the model itself. Naming the "
                    "language and listing unusual names makes the transcription more accurate."
                ),
            },
        ),
        (
            _("Greeting and silence"),
            {
                "fields": (
                    "greeting_mode",
                    "greeting_text",
                    "idle_check_in_seconds",
                    "idle_end_seconds",
                ),
                "description": _(
                    "Whether the assistant speaks first, and what it does when nobody speaks: "
                    "check in once, then end the session."
                ),
            },
        ),
        (
            _("Audio input"),
            {
                "classes": ("collapse",),
                "fields": (
                    "noise_suppression",
                    "echo_cancellation",
                    "speakerphone_default",
                ),
            },
        ),
        (
            _("Conversation history"),
            {
                "fields": ("keep_transcripts",),
                "description": _(
                    "Kept for HISTORY_RETENTION_DAYS, then purged; usage is always recorded."
                ),
            },
        ),
        (
            _("Who may use it"),
            {
                "fields": ("users", "groups"),
                "description": _(
                    "Users see the profiles assigned to them or their groups; users without any "
                    "assignment get the site default."
                ),
            },
        ),
        (_("History"), {"classes": ("collapse",), "fields": ("updated_at",)}),
    )

    @admin.display(description=_("unpublished changes"), boolean=True)
    def has_draft(self, obj: AssistantProfile) -> bool:
        return obj.draft is not None

    def get_object(
        self, request: HttpRequest, object_id: str, from_field: str | None = None
    ) -> AssistantProfile | None:
        """The profile as its draft: the form shows (and edits) the unpublished settings."""
        profile = super().get_object(request, object_id, from_field)
        if profile is not None and profile.draft is not None:
            snapshot_apply(profile, profile.draft)
        return profile

    def save_model(
        self, request: HttpRequest, obj: AssistantProfile, form: Any, change: bool
    ) -> None:
        """A new profile is published as version 1; an edit goes to the draft, or is published.

        Raises:
            PermissionDenied: Publish without the publish permission (nothing is saved).
        """
        if not change:
            services.profile_save(profile=obj)
            created = str(_("Created."))
            services.profile_publish(profile_id=obj.pk, author=request.user, note=created)
            obj.refresh_from_db()
            return
        publish = "_publish" in request.POST
        if publish and not request.user.has_perm(services.PUBLISH_PERMISSION):
            raise PermissionDenied
        services.profile_draft_save(profile=obj)
        if publish:
            version = services.profile_publish(
                profile_id=obj.pk,
                author=request.user,
                note=request.POST.get("publish_note", "")[:1000],
            )
            self.message_user(
                request,
                _("Version %(number)d published: new sessions use it, live ones switch to it.")
                % {"number": version.number},
                messages.SUCCESS,
            )
        elif obj.draft is not None:
            self.message_user(
                request,
                _("Draft saved. Users keep version %(number)d until the draft is published.")
                % {"number": obj.version},
                messages.WARNING,
            )

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: AssistantProfile | None = None,
    ) -> HttpResponse:
        if obj is not None and obj.pk is not None:
            context.update(
                can_publish=request.user.has_perm(services.PUBLISH_PERMISSION),
                can_try_draft=services.can_try_drafts(request.user),
                try_draft_url=reverse("assistant:talk")
                + "?"
                + urlencode({"profile": obj.pk, "draft": "1"}),
                versions_url=reverse("admin:assistant_assistantprofile_versions", args=[obj.pk]),
                evaluate_url=(
                    reverse("admin:evaluation_evaluationrun_new", args=[obj.pk])
                    if request.user.has_perm(EVALUATION_PERMISSION)
                    else ""
                ),
                draft_diff_url=reverse("admin:assistant_assistantprofile_diff", args=[obj.pk])
                + "?"
                + urlencode({"a": obj.version, "b": DRAFT}),
            )
        return super().render_change_form(request, context, add, change, form_url, obj)


@admin.register(LiveSession)
class LiveSessionAdmin(admin.ModelAdmin):
    """The live-sessions console: every worker's sessions, refreshed live, with Terminate."""

    list_display = (
        "user",
        "profile",
        "worker",
        "started_at",
        "state",
        "audio_in",
        "audio_out",
        "last_seen",
        "controls",
    )
    list_filter = ("worker", "state", "profile")
    search_fields = ("user__username", "worker")
    actions = ("terminate_selected",)
    list_select_related = ("user", "profile")

    class Media:
        js = ("assistant/admin-live-sessions.js",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[LiveSession]:
        """Only sessions whose worker is still heartbeating."""
        return super().get_queryset(request).filter(last_seen__gte=registry.stale_before())

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description=_("audio in"))
    def audio_in(self, obj: LiveSession) -> str:
        return f"{obj.audio_in_seconds:.1f} s"

    @admin.display(description=_("audio out"))
    def audio_out(self, obj: LiveSession) -> str:
        return f"{obj.audio_out_seconds:.1f} s"

    @admin.display(description=_("controls"))
    def controls(self, obj: LiveSession) -> str:
        terminate = reverse("admin:assistant_livesession_terminate", args=[obj.pk])
        monitor = reverse("assistant:monitor", args=[obj.pk])
        # The call's conversation has the live session's id (its history's timeline).
        timeline = reverse("admin:history_conversation_timeline", args=[obj.pk])
        return format_html(
            '<a class="button" href="{}" target="_blank" rel="noopener">{}</a> '
            '<a class="button" href="{}">{}</a> '
            '<button type="submit" class="button" formaction="{}" formmethod="post" '
            'name="terminate" value="{}">{}</button>',
            monitor,
            _("Monitor"),
            timeline,
            _("Timeline"),
            terminate,
            obj.pk,
            _("Terminate"),
        )

    def get_urls(self) -> list[URLPattern]:
        extra = [
            path(
                "<uuid:session_id>/terminate/",
                self.admin_site.admin_view(require_POST(self.terminate_view)),
                name="assistant_livesession_terminate",
            )
        ]
        return extra + super().get_urls()

    def _check_terminate(self, request: HttpRequest) -> None:
        if not request.user.has_perm("assistant.terminate_livesession"):
            raise PermissionDenied

    def terminate_view(self, request: HttpRequest, session_id: uuid.UUID) -> HttpResponse:
        """End one session on whichever worker holds it."""
        self._check_terminate(request)
        if registry.session_end_request(session_id=session_id, reason=Ending.TERMINATED):
            self.message_user(request, _("Session terminated."), messages.SUCCESS)
        else:
            self.message_user(request, _("That session had already ended."), messages.WARNING)
        return HttpResponseRedirect(reverse("admin:assistant_livesession_changelist"))

    @admin.action(description=_("Terminate selected sessions"))
    def terminate_selected(self, request: HttpRequest, queryset: QuerySet[LiveSession]) -> None:
        self._check_terminate(request)
        ended = sum(
            registry.session_end_request(session_id=row.pk, reason=Ending.TERMINATED)
            for row in queryset
        )
        self.message_user(
            request, _("%(n)d session(s) terminated.") % {"n": ended}, messages.SUCCESS
        )
