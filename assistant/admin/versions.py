"""The profile admin's versions pages: the list, the differences between two, and rollback."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from assistant import services
from assistant.models import AssistantProfile, ProfileVersion
from assistant.models.versions import profile_snapshot, snapshot_diff

#: How the diff page names the draft (instead of a version number).
DRAFT = "draft"

if TYPE_CHECKING:
    _Base = admin.ModelAdmin[AssistantProfile]
else:
    _Base = object


class ProfileVersionsMixin(_Base):
    """Adds a profile's *Versions* pages to its admin (publish itself is the change form's)."""

    def get_urls(self) -> list[URLPattern]:
        """The versions pages, before the admin's own."""
        view = self.admin_site.admin_view
        extra = [
            path(
                "<int:profile_id>/versions/",
                view(self.versions_view),
                name="assistant_assistantprofile_versions",
            ),
            path(
                "<int:profile_id>/versions/diff/",
                view(self.diff_view),
                name="assistant_assistantprofile_diff",
            ),
            path(
                "<int:profile_id>/versions/<int:number>/rollback/",
                view(require_POST(self.rollback_view)),
                name="assistant_assistantprofile_rollback",
            ),
        ]
        return extra + super().get_urls()

    def _profile_for(self, request: HttpRequest, profile_id: int) -> AssistantProfile:
        profile = get_object_or_404(AssistantProfile, pk=profile_id)
        if not self.has_view_or_change_permission(request, profile):
            raise PermissionDenied
        return profile

    def versions_view(self, request: HttpRequest, profile_id: int) -> HttpResponse:
        """Every version of a profile, newest first, with compare and roll back."""
        profile = self._profile_for(request, profile_id)
        versions = list(profile.versions.select_related("author"))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Versions of %(name)s") % {"name": profile.name},
            "profile": profile,
            "versions": versions,
            "has_draft": profile.draft is not None,
            "can_publish": request.user.has_perm(services.PUBLISH_PERMISSION),
        }
        return TemplateResponse(request, "admin/assistant/assistantprofile/versions.html", context)

    def _side(self, profile: AssistantProfile, raw: str) -> tuple[str, dict[str, Any]]:
        """One side of a diff: the draft or a version number; Http404 for anything else."""
        if raw == DRAFT:
            return str(_("draft")), profile.draft or profile_snapshot(profile)
        try:
            number = int(raw)
        except ValueError as exc:
            raise Http404 from exc
        version = profile.versions.filter(number=number).first()
        if version is None:
            raise Http404
        return str(_("version %(number)d") % {"number": number}), version.snapshot

    def diff_view(self, request: HttpRequest, profile_id: int) -> HttpResponse:
        """What changed from version ``a`` to version ``b`` (or the draft), field by field."""
        profile = self._profile_for(request, profile_id)
        before_name, before = self._side(profile, request.GET.get("a", ""))
        after_name, after = self._side(profile, request.GET.get("b", ""))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("%(name)s: %(a)s → %(b)s")
            % {"name": profile.name, "a": before_name, "b": after_name},
            "profile": profile,
            "before_name": before_name,
            "after_name": after_name,
            "changes": snapshot_diff(before, after),
        }
        return TemplateResponse(request, "admin/assistant/assistantprofile/diff.html", context)

    def rollback_view(self, request: HttpRequest, profile_id: int, number: int) -> HttpResponse:
        """Publish an older version's settings again, as the next version number."""
        if not request.user.has_perm(services.PUBLISH_PERMISSION):
            raise PermissionDenied
        profile = self._profile_for(request, profile_id)
        older = get_object_or_404(ProfileVersion, profile=profile, number=number)
        note = request.POST.get("note", "").strip()[:1000] or str(
            _("Rollback to version %(number)d.") % {"number": number}
        )
        version = services.profile_publish(
            profile_id=profile.pk, author=request.user, note=note, restore=older
        )
        self.message_user(
            request,
            _("Version %(old)d published again as version %(new)d.")
            % {"old": number, "new": version.number},
            messages.SUCCESS,
        )
        return HttpResponseRedirect(
            reverse("admin:assistant_assistantprofile_versions", args=[profile.pk])
        )
