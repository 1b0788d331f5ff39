"""The evaluation admin: runs and a run's report (test sets: ``evaluation_sets.py``).

Everything here needs ``assistant.run_evaluation``. A run is started from a profile's page
(*Evaluate*), executed by the runner process (``manage.py run_evaluations``), and its page
shows the progress (refreshed by ``admin-evaluation.js``), Cancel, and the report.
"""

from __future__ import annotations

import uuid
from typing import Any, cast

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from assistant.admin.evaluation_sets import (  # registers the test sets' pages
    EVALUATION_PERMISSION,
    EvaluationPermissionMixin,
)
from assistant.evaluation.models import (
    ACTIVE_STATUSES,
    EvaluationRun,
    RunError,
    RunStatus,
    TestSet,
)
from assistant.evaluation.replay import NOT_RUN
from assistant.evaluation.replay_tools import (
    DRY_RUN_DECLARED,
    RAN,
    RAN_WOULD_END,
    RAN_WOULD_HAND_OVER,
)
from assistant.evaluation.report import SIDES, run_report, tool_call_marks
from assistant.evaluation.runs import (
    MAX_CONVERSATIONS,
    RunBusy,
    run_cancel,
    run_request,
    runner_state,
)
from assistant.models import AssistantProfile


class RunRequestForm(forms.Form):
    """What to replay, and which two configurations of the profile to compare."""

    candidate = forms.ChoiceField(label=_("Candidate"))
    baseline = forms.ChoiceField(label=_("Against"))
    source = forms.ChoiceField(
        label=_("Replay"),
        choices=[("conversations", _("the last conversations")), ("test_set", _("a test set"))],
        widget=forms.RadioSelect,
        initial="conversations",
    )
    conversations = forms.IntegerField(
        label=_("Conversations"),
        min_value=1,
        max_value=MAX_CONVERSATIONS,
        initial=5,
        required=False,
        help_text=_("Only conversations that kept their transcripts are replayed."),
    )
    test_set = forms.ModelChoiceField(
        label=_("Test set"), queryset=TestSet.objects.all(), required=False
    )

    def __init__(self, *args: Any, profile: AssistantProfile, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        numbers = list(profile.versions.values_list("number", flat=True))
        versions = [(str(n), _("version %(number)d") % {"number": n}) for n in numbers]
        cast("forms.ChoiceField", self.fields["candidate"]).choices = [
            ("draft", _("the draft")),
            *versions,
        ]
        cast("forms.ChoiceField", self.fields["baseline"]).choices = versions
        self.fields["baseline"].initial = str(profile.version)
        cast("forms.ModelChoiceField", self.fields["test_set"]).queryset = TestSet.objects.filter(
            Q(profile=profile) | Q(profile__isnull=True)
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("source") == "test_set" and not data.get("test_set"):
            self.add_error("test_set", _("Choose a test set."))
        if data.get("source") == "conversations" and not data.get("conversations"):
            self.add_error("conversations", _("Say how many conversations."))
        return data


@admin.register(EvaluationRun)
class EvaluationRunAdmin(EvaluationPermissionMixin, admin.ModelAdmin):
    """Runs, newest first; a run's page is its progress and report."""

    list_display = (
        "created_at",
        "profile",
        "candidate",
        "baseline",
        "source_shown",
        "status",
        "progress",
    )
    list_filter = ("status", "profile")
    list_select_related = ("profile",)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # runs start from a profile's page (Evaluate)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description=_("candidate"))
    def candidate(self, obj: EvaluationRun) -> str:
        return obj.candidate_description

    @admin.display(description=_("against"))
    def baseline(self, obj: EvaluationRun) -> str:
        return obj.baseline_description

    @admin.display(description=_("replays"))
    def source_shown(self, obj: EvaluationRun) -> str:
        return obj.source_description

    @admin.display(description=_("progress"))
    def progress(self, obj: EvaluationRun) -> str:
        return f"{obj.turns_done}/{obj.turns_total}"

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view
        extra = [
            path(
                "new/<int:profile_id>/",
                view(self.request_view),
                name="evaluation_evaluationrun_new",
            ),
            path(
                "<uuid:run_id>/progress/",
                view(self.progress_view),
                name="evaluation_evaluationrun_progress",
            ),
            path(
                "<uuid:run_id>/report.json",
                view(self.json_view),
                name="evaluation_evaluationrun_json",
            ),
            path(
                "<uuid:run_id>/cancel/",
                view(require_POST(self.cancel_view)),
                name="evaluation_evaluationrun_cancel",
            ),
        ]
        return extra + super().get_urls()

    def _check(self, request: HttpRequest) -> None:
        if not request.user.has_perm(EVALUATION_PERMISSION):
            raise PermissionDenied

    def request_view(self, request: HttpRequest, profile_id: int) -> HttpResponse:
        """The Evaluate form of a profile; a valid POST queues the run and shows its page."""
        self._check(request)
        profile = get_object_or_404(AssistantProfile, pk=profile_id)
        form = RunRequestForm(request.POST or None, profile=profile)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            by_set = data["source"] == "test_set"
            try:
                run = run_request(
                    profile=profile,
                    candidate_version=(
                        None if data["candidate"] == "draft" else int(data["candidate"])
                    ),
                    baseline_version=int(data["baseline"]),
                    conversations=None if by_set else data["conversations"],
                    test_set=data["test_set"] if by_set else None,
                    requested_by=request.user,
                )
            except RunBusy:
                active = EvaluationRun.objects.filter(
                    profile=profile, status__in=ACTIVE_STATUSES
                ).first()
                form.add_error(
                    None,
                    _(
                        "This profile already has an evaluation queued or running: wait for "
                        "it to finish, or cancel it."
                    ),
                )
                context = self._request_context(request, profile, form, active)
                return TemplateResponse(
                    request, "admin/evaluation/evaluationrun/new.html", context, status=409
                )
            except LookupError as exc:
                form.add_error(None, str(exc))
            else:
                return HttpResponseRedirect(
                    reverse("admin:evaluation_evaluationrun_change", args=[run.pk])
                )
        context = self._request_context(request, profile, form, None)
        return TemplateResponse(request, "admin/evaluation/evaluationrun/new.html", context)

    def _request_context(
        self,
        request: HttpRequest,
        profile: AssistantProfile,
        form: RunRequestForm,
        active: EvaluationRun | None,
    ) -> dict[str, Any]:
        return {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Evaluate %(name)s") % {"name": profile.name},
            "profile": profile,
            "form": form,
            "active": active,
        }

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        """A run's page: its progress while it runs, then its report."""
        self._check(request)
        try:
            run_id = uuid.UUID(object_id)
        except ValueError:
            return HttpResponseRedirect(reverse("admin:evaluation_evaluationrun_changelist"))
        run = get_object_or_404(EvaluationRun.objects.select_related("profile"), pk=run_id)
        data = run_report(run)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Evaluation of %(name)s: %(candidate)s against %(baseline)s")
            % {
                "name": run.profile.name,
                "candidate": run.candidate_description,
                "baseline": run.baseline_description,
            },
            "run": run,
            "report": data,
            "rows": _rows(data["turns"]),
            "summary": data["summary"],
            "checks": data["checks"],
            "error_text": RunError(run.error_code).label if run.error_code else "",
            "runner_state": runner_state(run),
            "progress_url": reverse("admin:evaluation_evaluationrun_progress", args=[run.pk]),
            "cancel_url": reverse("admin:evaluation_evaluationrun_cancel", args=[run.pk]),
            "json_url": reverse("admin:evaluation_evaluationrun_json", args=[run.pk]),
        }
        return TemplateResponse(request, "admin/evaluation/evaluationrun/report.html", context)

    def progress_view(self, request: HttpRequest, run_id: uuid.UUID) -> HttpResponse:
        """The run's progress, for the page's polling script."""
        self._check(request)
        run = get_object_or_404(EvaluationRun, pk=run_id)
        return JsonResponse(
            {
                "status": run.status,
                "status_text": str(run.get_status_display()),
                "active": run.is_active,
                "done": run.turns_done,
                "total": run.turns_total,
                "error_code": run.error_code,
                "runner_state": runner_state(run),
            }
        )

    def json_view(self, request: HttpRequest, run_id: uuid.UUID) -> HttpResponse:
        """The report as ``evaluate_profile`` prints it (docs/evaluation.md#json)."""
        self._check(request)
        run = get_object_or_404(EvaluationRun.objects.select_related("profile"), pk=run_id)
        return JsonResponse(run_report(run), json_dumps_params={"ensure_ascii": False})

    def cancel_view(self, request: HttpRequest, run_id: uuid.UUID) -> HttpResponse:
        self._check(request)
        get_object_or_404(EvaluationRun, pk=run_id)
        run = run_cancel(run_id)
        if run.status == RunStatus.CANCELLING:
            self.message_user(
                request, _("The run stops after the turn it is replaying."), messages.WARNING
            )
        elif run.status == RunStatus.CANCELLED:
            self.message_user(request, _("The run is cancelled."), messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:evaluation_evaluationrun_change", args=[run_id]))


#: How a replayed tool call was answered (``replay_tools.py``), as the report says it.
ANSWERED = {
    NOT_RUN: _("not run"),
    RAN: _("ran"),
    RAN_WOULD_END: _("ran; would end the conversation"),
    RAN_WOULD_HAND_OVER: _("ran; would hand over"),
    DRY_RUN_DECLARED: _("dry run declared by the tool"),
}


def _rows(turns: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each turn as the report's table shows it: tool calls marked where the sides differ."""
    rows = []
    for number, turn in enumerate(turns, 1):
        sides = {}
        for side, other in zip(SIDES, reversed(SIDES), strict=True):
            sides[side] = turn[side] | {
                "heard": turn[side].get("heard"),  # None: a text turn
                "marked_calls": [
                    {
                        "name": call["name"],
                        "arguments": call["arguments"],
                        "answered": ANSWERED.get(call.get("answered", ""), ""),
                        "differs": differs,
                    }
                    for call, differs in tool_call_marks(
                        turn[side]["tool_calls"], turn[other]["tool_calls"]
                    )
                ],
            }
        spoken = any("heard" in turn[side] for side in SIDES)
        rows.append({"number": number, "turn": turn, "spoken": spoken, **sides})
    return rows
