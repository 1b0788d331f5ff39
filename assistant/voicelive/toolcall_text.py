"""What a tool call looks like in words.

The outputs the model reads when a call does not run, the short summaries the page shows, and
a spoken (or typed) yes or no to an approval.
"""

from __future__ import annotations

import json
import re

#: Summaries shown on the page.
SUMMARY_CHARS = 120

TOO_MANY_ROUNDS = json.dumps(
    {"error": "too many tool calls in this turn: answer the user now without calling tools"}
)
CANCELLED = json.dumps({"error": "cancelled: the user interrupted before the tool finished"})
DECLINED = json.dumps({"error": "the user declined this call: do not run it, say so briefly"})
UNAVAILABLE = json.dumps({"error": "tools are not available in this session"})

_YES = re.compile(r"\b(yes|yeah|yep|sure|okay|ok|approve|approved|go ahead|do it)\b", re.I)
_NO = re.compile(r"\b(no|nope|don'?t|do not|cancel|decline|stop)\b", re.I)


def arguments_summary(arguments: str) -> str:
    """The call's arguments in a short line for the page (``query: refund policy``)."""
    try:
        parsed = json.loads(arguments or "{}")
    except ValueError:
        return "(arguments that are not JSON)"
    if not isinstance(parsed, dict):
        return "(arguments that are not an object)"
    parts = [
        f"{key}: {value if isinstance(value, str) else json.dumps(value)}"
        for key, value in parsed.items()
    ]
    return _clip(", ".join(parts))


def result_summary(output: str) -> str:
    """A tool's output in a short line for the page (its error, or its start)."""
    try:
        parsed = json.loads(output)
    except ValueError:
        return _clip(output)
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), str):
        return _clip(parsed["error"])
    return _clip(json.dumps(parsed, ensure_ascii=False, separators=(", ", ": ")))


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= SUMMARY_CHARS else text[: SUMMARY_CHARS - 1] + "…"


def spoken_answer(transcript: str) -> bool | None:
    """A spoken yes (True) or no (False) to an approval request; None if neither."""
    said_no = _NO.search(transcript) is not None
    said_yes = _YES.search(transcript) is not None
    if said_yes == said_no:
        return None
    return said_yes
