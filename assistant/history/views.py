"""My conversations: a user's own transcripts, searchable, exportable and deletable."""

from __future__ import annotations

import json
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import Count, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from assistant.history.models import Conversation, Turn

PAGE_SIZE = 20
MAX_QUERY_CHARS = 200
#: Words of a query the SQLite search matches (the rest are ignored).
MAX_QUERY_WORDS = 8


def own_conversations(request: HttpRequest) -> QuerySet[Conversation]:
    """The requesting user's conversations: the only ones any of these views can reach."""
    user = request.user
    if not user.is_authenticated:  # login_required ran: this only narrows the type
        return Conversation.objects.none()
    return Conversation.objects.filter(user=user)


def search(conversations: QuerySet[Conversation], query: str) -> QuerySet[Conversation]:
    """Conversations whose transcript matches ``query`` (full-text on PostgreSQL).

    Only the turns of ``conversations`` (the user's own) are searched: the text match never
    runs over other users' turns.
    """
    turns = Turn.objects.filter(conversation__in=conversations.values("pk"))
    if connection.vendor == "postgresql":
        from django.contrib.postgres.search import SearchQuery, SearchVector

        turns = turns.annotate(document=SearchVector("text")).filter(
            document=SearchQuery(query, search_type="websearch")
        )
    else:
        # SQLite: every word somewhere in one turn, case-insensitively; a bounded number of
        # distinct words, so a long query cannot build a long chain of LIKEs.
        for word in dict.fromkeys(query.split()[:MAX_QUERY_WORDS]):
            turns = turns.filter(text__icontains=word)
    return conversations.filter(pk__in=turns.values("conversation_id"))


@login_required
@never_cache
def conversation_list(request: HttpRequest) -> HttpResponse:
    """The user's conversations, newest first, paginated, optionally searched."""
    query = request.GET.get("q", "").strip()[:MAX_QUERY_CHARS]
    conversations = own_conversations(request)
    if query:
        conversations = search(conversations, query)
    conversations = conversations.annotate(turn_count=Count("turns")).order_by("-started_at")
    page = Paginator(conversations, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "history/list.html", {"page": page, "query": query})


@login_required
@never_cache
def conversation_detail(request: HttpRequest, conversation_id: str) -> HttpResponse:
    """One conversation's transcript, with times and who spoke."""
    conversation = get_object_or_404(own_conversations(request), pk=conversation_id)
    return render(
        request,
        "history/detail.html",
        {"conversation": conversation, "turns": conversation.turns.all()},
    )


@login_required
@require_POST
def conversation_delete(request: HttpRequest, conversation_id: str) -> HttpResponse:
    """Delete one conversation and its turns for good (its usage records stay)."""
    conversation = get_object_or_404(own_conversations(request), pk=conversation_id)
    conversation.delete()
    return redirect("history:list")


@login_required
@require_http_methods(["GET", "POST"])
@never_cache
def conversation_delete_all(request: HttpRequest) -> HttpResponse:
    """Ask, then delete every conversation of the user."""
    conversations = own_conversations(request)
    if request.method == "POST":
        conversations.delete()
        return redirect("history:list")
    return render(request, "history/delete_all.html", {"count": conversations.count()})


def conversation_data(conversation: Conversation) -> dict[str, Any]:
    """A conversation and its turns as plain JSON-able data (the export format)."""

    def when(value: Any) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "id": str(conversation.pk),
        "profile": conversation.profile_name,
        "model": conversation.model,
        "started_at": when(conversation.started_at),
        "ended_at": when(conversation.ended_at),
        "end_reason": conversation.end_reason,
        "turns": [
            {
                "role": turn.role,
                "text": turn.text,
                "started_at": when(turn.started_at),
                "ended_at": when(turn.ended_at),
                "interrupted": turn.interrupted,
                "heard_ms": turn.heard_ms,
                "latency_ms": turn.latency_ms,
            }
            for turn in conversation.turns.all()
        ],
    }


def conversation_text(conversation: Conversation) -> str:
    """A conversation as plain text: a header, then one line per turn with its time."""
    started = timezone.localtime(conversation.started_at)
    lines = [f"{conversation.profile_name or 'Conversation'} — {started:%Y-%m-%d %H:%M}", ""]
    for turn in conversation.turns.all():
        speaker = {"assistant": "Assistant", "tool": "Tool"}.get(turn.role, "You")
        mark = " [interrupted]" if turn.interrupted else ""
        lines.append(
            f"[{timezone.localtime(turn.started_at):%H:%M:%S}] {speaker}: {turn.text}{mark}"
        )
    return "\n".join(lines) + "\n"


def _attachment(body: str, filename: str, content_type: str) -> HttpResponse:
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@login_required
@never_cache
def conversation_export(request: HttpRequest, conversation_id: str, fmt: str) -> HttpResponse:
    """One conversation as a JSON or plain-text download."""
    if fmt not in {"json", "txt"}:
        raise Http404
    conversation = get_object_or_404(own_conversations(request), pk=conversation_id)
    name = f"conversation-{conversation.started_at:%Y%m%d-%H%M}"
    if fmt == "json":
        return _attachment(
            json.dumps(conversation_data(conversation), indent=2, ensure_ascii=False),
            f"{name}.json",
            "application/json",
        )
    return _attachment(conversation_text(conversation), f"{name}.txt", "text/plain; charset=utf-8")


@login_required
@never_cache
def export_all(request: HttpRequest) -> HttpResponse:
    """Every conversation of the user as one JSON download."""
    conversations = own_conversations(request).prefetch_related("turns")
    data = {"conversations": [conversation_data(c) for c in conversations]}
    response = JsonResponse(data, json_dumps_params={"indent": 2, "ensure_ascii": False})
    response["Content-Disposition"] = 'attachment; filename="conversations.json"'
    return response
