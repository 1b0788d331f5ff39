"""Secret values taken out of what a called service answered (no Django).

A service may echo the request's headers (a debugging endpoint, an error page, a hostile
service): the HTTP executor knows every secret value it sent, so it replaces each with
:data:`MARKER` before the result leaves it. Everything downstream — the model, the page, live
monitors, history, logs — then only ever sees the redacted text.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

MARKER = "[redacted]"
#: Whole values shorter than this are not redacted: they would hit ordinary text, and a value
#: that short protects nothing anyway.
MIN_VALUE_CHARS = 4
#: Parts of a value (``Bearer <token>`` -> the token) are redacted from this length up, so a
#: scheme word such as "Bearer" or "Basic" is left alone.
MIN_PART_CHARS = 8


def _candidates(values: Iterable[str]) -> set[str]:
    """Each value, and its whitespace-separated parts of a meaningful length."""
    found = set()
    for value in values:
        if len(value) >= MIN_VALUE_CHARS:
            found.add(value)
        found.update(part for part in value.split() if len(part) >= MIN_PART_CHARS)
    return found


def _json_escaped(text: str) -> set[str]:
    escaped = {json.dumps(text, ensure_ascii=ascii_only)[1:-1] for ascii_only in (True, False)}
    return escaped | {form.replace("/", "\\/") for form in escaped}  # some escape "/" too


def _forms(secret: str) -> set[str]:
    """The spellings a service may echo ``secret`` in: as is, JSON-, URL- and HTML-escaped."""
    forms = {secret}
    for _ in range(2):  # JSON-escaped once, or twice (a JSON text inside a JSON answer)
        forms |= {escaped for form in forms for escaped in _json_escaped(form)}
    forms |= {html.escape(secret), html.escape(secret, quote=False)}
    forms |= {quote(secret, safe=""), quote(secret), quote_plus(secret)}
    return forms


class Redactor:
    """Replaces the given secret values, in any of their usual spellings, with the marker.

    Args:
        values: the secret header values that were sent.
    """

    def __init__(self, values: Iterable[str]) -> None:
        forms = {form for secret in _candidates(values) for form in _forms(secret)}
        # Longest first: a whole value is replaced before its parts would split it.
        alternatives = sorted(forms, key=len, reverse=True)
        # Case-insensitive: percent-escapes come in both cases, and replacing a little more
        # than the exact secret costs nothing.
        self._pattern = (
            re.compile("|".join(map(re.escape, alternatives)), re.IGNORECASE)
            if alternatives
            else None
        )

    def __call__(self, text: str) -> str:
        """``text`` with every secret replaced."""
        if self._pattern is None:
            return text
        return self._pattern.sub(MARKER, text)
