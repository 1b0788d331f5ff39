"""Continuing an earlier conversation: which one, and what of it is carried over."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from urllib.parse import parse_qs

from channels.db import database_sync_to_async

from assistant.codes import ClientError, ErrorCode
from assistant.history.models import Conversation, Turn

#: At most this much text is carried over (the newest turns first); the rest is left out.
MAX_RESUME_CHARS = 8000
# Conversations continued from conversations: the chain is followed this far back.
_MAX_CHAIN = 5


@dataclass(frozen=True, slots=True)
class Resume:
    """What a resumed session starts with: the conversation and its last turns (oldest first)."""

    conversation_id: uuid.UUID
    items: list[tuple[str, str]]


def requested_resume(query_string: bytes) -> str:
    """The ``resume`` query parameter of the websocket URL ("" when absent)."""
    query = parse_qs(query_string.decode("latin-1"))
    return (query.get("resume") or [""])[0]


def resume_load(*, user_id: int, raw: str, max_items: int) -> Resume | None:
    """The user's own conversation ``raw`` and its last turns, bounded; None if none asked.

    Follows what it continued itself when it is short. Turns without text (a profile that
    keeps usage only) carry nothing over.

    Raises:
        ClientError: ``resume_not_found`` when it is not a conversation of this user.
    """
    if not raw:
        return None
    try:
        key = uuid.UUID(raw)
    except ValueError as exc:
        raise ClientError(ErrorCode.RESUME_NOT_FOUND) from exc
    conversation = Conversation.objects.filter(pk=key, user_id=user_id).first()
    if conversation is None:
        raise ClientError(ErrorCode.RESUME_NOT_FOUND)
    newest_first: list[tuple[str, str]] = []
    chars = 0
    current: Conversation | None = conversation
    for _ in range(_MAX_CHAIN):
        if current is None or len(newest_first) >= max_items:
            break
        turns = (
            current.turns.filter(role__in=[Turn.Role.USER, Turn.Role.TYPED, Turn.Role.ASSISTANT])
            .exclude(text="")
            .order_by("-seq")
            .values_list("role", "text")[: max_items - len(newest_first)]
        )
        for role, text in turns:
            chars += len(text)
            if chars > MAX_RESUME_CHARS:
                return Resume(key, newest_first[::-1])
            newest_first.append(("assistant" if role == Turn.Role.ASSISTANT else "user", text))
        previous = current.resumed_from_id
        current = (
            Conversation.objects.filter(pk=previous, user_id=user_id).first() if previous else None
        )
    return Resume(key, newest_first[::-1])


aresume_load = database_sync_to_async(resume_load)


def latest_conversation_id(user_id: int) -> uuid.UUID | None:
    """The user's newest conversation with something to carry over (the talk page's link)."""
    return (
        Conversation.objects.filter(user_id=user_id, transcript_stored=True, turns__isnull=False)
        .order_by("-started_at")
        .values_list("pk", flat=True)
        .first()
    )
