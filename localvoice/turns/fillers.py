"""Filler words ("um", "uh", "erm"...) removed from transcripts (``remove_filler_words``).

Only hesitation sounds are removed: "mhm", "yeah" or "okay" carry meaning (a backchannel, an
answer) and stay.
"""

from __future__ import annotations

import re

FILLERS = ("um", "umm", "uh", "uhh", "uhm", "erm", "er", "err", "hmm", "mm", "ah", "ahh", "eh")
# The filler, the punctuation after it, and a comma before it ("like, uh, a" -> "like a").
_FILLER = re.compile(
    r",?\s*(?<![\w'])(?:" + "|".join(FILLERS) + r")(?![\w'])[,.…]*", flags=re.IGNORECASE
)


def strip_fillers(text: str) -> str:
    """``text`` without filler words; the first remaining letter is capitalised if it was."""
    stripped = re.sub(r"\s{2,}", " ", _FILLER.sub("", text)).strip(" ,")
    if not stripped.strip(" .,?!…"):
        return ""
    if text[:1].isupper() and stripped[:1].islower():
        stripped = stripped[0].upper() + stripped[1:]
    return stripped
