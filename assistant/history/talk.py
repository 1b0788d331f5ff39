"""What the talk page shows of the user's history and quota (rendered on load)."""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.utils.formats import number_format
from django.utils.translation import gettext as _

from assistant.history.models import Conversation
from assistant.history.quotas import quota_left
from assistant.history.resume import latest_conversation_id


def talk_history_context(user: AbstractBaseUser | AnonymousUser, raw_resume: str) -> dict[str, Any]:
    """What the talk page shows of the user's history and quota.

    The conversation ``?resume=`` asks to continue (the user's own only), the latest one to
    offer "Continue where I left off", and what is left of the user's quota.
    """
    if not user.is_authenticated:
        return {}
    resume: Conversation | None = None
    resume_refused = False
    if raw_resume:
        try:
            resume = Conversation.objects.filter(pk=uuid.UUID(raw_resume), user=user.pk).first()
        except ValueError:
            resume = None
        resume_refused = resume is None
    return {
        "resume": resume,
        "resume_refused": resume_refused,
        "latest_conversation_id": latest_conversation_id(user.pk),
        "quota_left": quota_lines(quota_left(user.pk)),
    }


def quota_lines(left: dict[str, Any] | None) -> list[str]:
    """What is left of each limit, as the page says it (empty when nothing limits the user)."""
    if not left:
        return []
    lines = []
    if "minutes_today" in left:
        minutes = number_format(left["minutes_today"], 1)
        lines.append(_("%(minutes)s minutes today") % {"minutes": minutes})
    if "minutes_this_month" in left:
        minutes = number_format(left["minutes_this_month"], 1)
        lines.append(_("%(minutes)s minutes this month") % {"minutes": minutes})
    if "cost_this_month" in left:
        cost = number_format(left["cost_this_month"], 2)
        lines.append(_("%(cost)s of this month's budget") % {"cost": cost})
    return lines
