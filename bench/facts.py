"""The strict factual set (``bench/facts.json``): everyday questions and how a reply is scored.

Each question lists accepted answers (one must appear) and wrong claims (none may appear): "The
moon is about 384,400 km away" is right, "approximately 138.2 million kilometers" is wrong, and
so is a reply that names the right planet and then a wrong one as closest. A term is matched as
whole words in the lower-cased reply, with thousands separators removed ("384,400" reads
"384400"); a term starting with ``re:`` is a regular expression.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

FACTS_FILE = Path(__file__).with_name("facts.json")


@dataclass(frozen=True, slots=True)
class Fact:
    """One question, its accepted answers and the wrong claims a reply must not make."""

    question: str
    accept: tuple[str, ...]
    reject: tuple[str, ...]


def load(path: Path = FACTS_FILE) -> list[Fact]:
    """The questions of ``path``."""
    return [
        Fact(entry["question"], tuple(entry["accept"]), tuple(entry["reject"]))
        for entry in json.loads(path.read_text())
    ]


def normalise(text: str) -> str:
    """Lower case, thousands separators gone, typographic quotes and dashes made plain."""
    text = text.lower().replace("\u2019", "'").replace("\u2013", "-").replace("\u2014", "-")
    return re.sub(r"(?<=\d)[,\u202f\u00a0](?=\d{3}\b)", "", text)


def _found(term: str, text: str) -> bool:
    if term.startswith("re:"):
        return re.search(term[3:], text) is not None
    return re.search(rf"(?<![a-z0-9]){re.escape(term)}(?![a-z0-9])", text) is not None


def verdict(fact: Fact, reply: str) -> str:
    """``right``, ``missing`` (no accepted answer) or ``false: <claim>`` (a wrong claim made)."""
    text = normalise(reply)
    wrong = next((term for term in fact.reject if _found(term, text)), None)
    if wrong is not None:
        return f"false: {wrong}"
    return "right" if any(_found(term, text) for term in fact.accept) else "missing"
