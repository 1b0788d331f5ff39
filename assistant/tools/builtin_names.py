"""The built-in tools by name, with the label admins pick them by.

Below both the ``Tool`` model (its choices) and ``builtin/`` (the implementations, which use
the models): a new built-in tool adds its name here and its module there.
"""

from __future__ import annotations

from django.db import models


class BuiltinName(models.TextChoices):
    """The function name the model calls, and what admins see."""

    GET_CURRENT_TIME = "get_current_time", "Current date and time"
    SEARCH_KNOWLEDGE_BASE = "search_knowledge_base", "Knowledge base search"
    END_CONVERSATION = "end_conversation", "End the conversation"
    HAND_OVER = "hand_over", "Hand over to another profile"
