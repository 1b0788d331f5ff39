"""Pages: the talk page, the live monitor, and the ops endpoints."""

from __future__ import annotations

import hmac
import ipaddress
import uuid
from http import HTTPStatus

from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from assistant import services
from assistant.history.talk import talk_history_context
from assistant.live import health
from assistant.models import LiveSession


@login_required
@never_cache
def talk(request: HttpRequest) -> HttpResponse:
    """The talk page: Start/Stop, state, transcripts, profile picker.

    ``?profile=N&draft=1`` opens it on profile N's draft instead: staff who may edit profiles
    only (403 for anyone else; the websocket refuses them with ``draft_forbidden``).
    """
    if request.GET.get("draft") == "1":
        return _talk_draft(request)
    profiles = services.profile_choices_for_user(user=request.user)
    requested = request.GET.get("profile", "")
    selected = next((p.id for p in profiles if str(p.id) == requested), None)
    if selected is None and profiles:
        selected = profiles[0].id
    return render(
        request,
        "assistant/talk.html",
        {
            "profiles": profiles,
            "selected_profile_id": selected,
            **talk_history_context(request.user, request.GET.get("resume", "")),
        },
    )


def _talk_draft(request: HttpRequest) -> HttpResponse:
    """The talk page on one profile's draft, marked as such."""
    if not services.can_try_drafts(request.user):
        raise PermissionDenied
    try:
        choice = services.profile_draft_choice(profile_id=int(request.GET.get("profile", "")))
    except ValueError as exc:
        raise Http404 from exc
    if choice is None:
        raise Http404
    return render(
        request,
        "assistant/talk.html",
        {"profiles": [choice], "selected_profile_id": choice.id, "draft": True},
    )


@staff_member_required
@permission_required("assistant.monitor_livesession", raise_exception=True)
@never_cache
def monitor(request: HttpRequest, session_id: str) -> HttpResponse:
    """Follow a live session held by any worker."""
    try:
        key = uuid.UUID(session_id)
    except ValueError as exc:
        raise Http404 from exc
    if not LiveSession.objects.filter(pk=key).exists():
        raise Http404
    return render(
        request,
        "assistant/monitor.html",
        {"session_id": str(key), "monitor_audio": settings.VOICE_MONITOR_AUDIO},
    )


@require_GET
def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness: the process answers. Touches nothing else."""
    return JsonResponse({"status": "ok"})


@require_GET
async def readyz(request: HttpRequest) -> HttpResponse:
    """Readiness: database, Redis (when configured) and the upstream answer, and not draining."""
    checks = await health.readiness()
    ready = all(check["ok"] for check in checks.values())
    return JsonResponse(
        {"status": "ready" if ready else "unavailable", "checks": checks},
        status=HTTPStatus.OK if ready else HTTPStatus.SERVICE_UNAVAILABLE,
    )


def metrics_allowed(request: HttpRequest) -> bool:
    """A scraper with ``METRICS_TOKEN`` as its bearer token, or from an allowed network."""
    token = settings.METRICS_TOKEN
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if token and scheme.lower() == "bearer":
        return hmac.compare_digest(presented.strip().encode(), token.encode())
    try:
        client = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(client in network for network in settings.METRICS_ALLOWED_NETWORKS)


@require_GET
@never_cache
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus metrics of this worker process (tool names and counts: not for everyone)."""
    if not metrics_allowed(request):
        response = HttpResponse("Forbidden", status=HTTPStatus.FORBIDDEN, content_type="text/plain")
        if settings.METRICS_TOKEN:
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(generate_latest(), content_type=CONTENT_TYPE_LATEST)
