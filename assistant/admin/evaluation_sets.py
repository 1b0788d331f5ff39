"""The evaluation admin's test sets: their user turns (text, and a recording), their checks.

Also the permission every evaluation page needs, and the mixin that checks it (the runs' admin,
``evaluation.py``, uses both). A recording is uploaded as a WAV file in the turns' inline,
converted on save (``assistant/evaluation/recordings.py``), and can be listened to.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from assistant.evaluation.models import Check, TestSet, TestTurn
from assistant.evaluation.recordings import (
    MAX_UPLOAD_BYTES,
    recording_as_wav,
    recording_from_wav,
    recording_seconds,
)

#: The permission every evaluation page needs.
EVALUATION_PERMISSION = "assistant.run_evaluation"


class EvaluationPermissionMixin:
    """Only staff with ``run_evaluation`` see, add, change or delete these."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(EVALUATION_PERMISSION)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm(EVALUATION_PERMISSION)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm(EVALUATION_PERMISSION)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm(EVALUATION_PERMISSION)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm(EVALUATION_PERMISSION)


class TestTurnForm(forms.ModelForm):
    """A user turn: its text, and a recording uploaded as a WAV file (converted on save)."""

    recording = forms.FileField(
        label=_("recording (WAV)"),
        required=False,
        widget=forms.ClearableFileInput(attrs={"accept": ".wav,audio/wav,audio/x-wav"}),
        help_text=_(
            "Optional: a 16-bit PCM WAV file, mono or stereo, 8 to 48 kHz, at most 30 s and "
            "6 MB. A turn with a recording is replayed as audio (so speech recognition is "
            "evaluated too); its text is the label the report shows."
        ),
    )
    remove_recording = forms.BooleanField(label=_("remove the recording"), required=False)

    class Meta:
        model = TestTurn
        fields = ("position", "text")
        widgets = {"text": forms.Textarea(attrs={"rows": 2, "cols": 40})}

    def clean_recording(self) -> bytes | None:
        """The upload converted to 24 kHz PCM16 mono; None when none was uploaded."""
        upload = self.cleaned_data.get("recording")
        if not upload:
            return None
        if upload.size > MAX_UPLOAD_BYTES:
            raise forms.ValidationError(_("The file is larger than 6 MB."), code="too_large")
        return recording_from_wav(upload.read())

    def save(self, commit: bool = True) -> TestTurn:
        turn = super().save(commit=False)
        recording = self.cleaned_data.get("recording")
        if recording:
            turn.audio = recording
        elif self.cleaned_data.get("remove_recording"):
            turn.audio = None
        if commit:
            turn.save()
        return turn


class TestTurnInline(EvaluationPermissionMixin, admin.TabularInline):
    model = TestTurn
    form = TestTurnForm
    extra = 3
    fields = ("position", "text", "recording_shown", "recording", "remove_recording")
    readonly_fields = ("recording_shown",)

    @admin.display(description=_("recorded"))
    def recording_shown(self, turn: TestTurn) -> str:
        """Its length, and a player to check what was uploaded."""
        seconds = recording_seconds(turn.audio) if turn.pk else 0.0
        if not seconds:
            return "—"
        url = reverse("admin:evaluation_testturn_recording", args=[turn.pk])
        return format_html(
            '{} <audio controls preload="none" src="{}"></audio>',
            _("%(seconds).1f s") % {"seconds": seconds},
            url,
        )


class CheckInline(EvaluationPermissionMixin, admin.TabularInline):
    model = Check
    extra = 2
    fields = ("kind", "value", "turn")


@admin.register(TestSet)
class TestSetAdmin(EvaluationPermissionMixin, admin.ModelAdmin):
    """A set of user turns and the checks their answers must pass."""

    list_display = ("name", "profile", "turn_count", "check_count", "created_at")
    search_fields = ("name", "description")
    inlines = (TestTurnInline, CheckInline)

    @admin.display(description=_("turns"))
    def turn_count(self, obj: TestSet) -> int:
        return obj.turns.count()

    def get_urls(self) -> list[URLPattern]:
        recording = path(
            "turn/<int:turn_id>/recording.wav",
            self.admin_site.admin_view(self.recording_view),
            name="evaluation_testturn_recording",
        )
        return [recording, *super().get_urls()]

    def recording_view(self, request: HttpRequest, turn_id: int) -> HttpResponse:
        """A turn's stored recording as a WAV file (24 kHz mono), to listen to it."""
        if not request.user.has_perm(EVALUATION_PERMISSION):
            raise PermissionDenied
        turn = get_object_or_404(TestTurn, pk=turn_id)
        if not turn.audio:
            raise Http404
        response = HttpResponse(recording_as_wav(bytes(turn.audio)), content_type="audio/wav")
        response["Content-Disposition"] = f'inline; filename="turn-{turn.pk}.wav"'
        return response

    @admin.display(description=_("checks"))
    def check_count(self, obj: TestSet) -> int:
        return obj.checks.count()
