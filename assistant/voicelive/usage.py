"""What the relay counts of a session's use, in the units quotas bill (no Django).

The relay keeps the running totals; ``assistant/history/usage.py`` sums them into quota
minutes.
"""

from __future__ import annotations

#: A typed message counts the time it would take to say it: about 150 words a minute.
TYPED_CHARACTERS_PER_SECOND = 15.0
#: ...and at least this much, so no turn is free: each one makes the model read the
#: conversation again and answer, and a spoken turn has at least this much audio anyway.
MIN_TYPED_SECONDS = 1.0


def typed_seconds(text: str) -> float:
    """What one typed message counts, in seconds of conversation."""
    return max(MIN_TYPED_SECONDS, len(text) / TYPED_CHARACTERS_PER_SECOND)
