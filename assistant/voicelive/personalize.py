"""The user's first name in a profile's instructions and greeting, substituted safely.

Only the literal placeholder ``{first_name}`` is replaced (``str.replace``, never
``str.format``): an admin's text with other braces stays as written, and a user's name cannot
reach anything but that one spot.
"""

from __future__ import annotations

import unicodedata

FIRST_NAME_PLACEHOLDER = "{first_name}"
# Long enough for any real first name; what goes into a prompt is bounded.
MAX_FIRST_NAME_CHARS = 40


def first_name_clean(name: str) -> str:
    """A first name fit for a prompt: one line, no control characters, bounded length."""
    kept = "".join(
        " " if unicodedata.category(char).startswith(("C", "Z")) else char for char in name
    )
    return " ".join(kept.split())[:MAX_FIRST_NAME_CHARS].strip()


def personalize(text: str, first_name: str) -> str:
    """``text`` with ``{first_name}`` replaced by the user's first name.

    Without a first name the placeholder and the space or comma before it go, so "Hello
    {first_name}!" reads "Hello!" rather than "Hello !".
    """
    if FIRST_NAME_PLACEHOLDER not in text:
        return text
    name = first_name_clean(first_name)
    if name:
        return text.replace(FIRST_NAME_PLACEHOLDER, name)
    for spaced in (", " + FIRST_NAME_PLACEHOLDER, " " + FIRST_NAME_PLACEHOLDER):
        text = text.replace(spaced, "")
    return text.replace(FIRST_NAME_PLACEHOLDER, "")
