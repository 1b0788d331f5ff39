"""A transcript that cannot be the end of a turn: it stops on a word that needs a next one.

"I'd like to book a table for" ends on a preposition; "send it to Peter and" on a conjunction.
Smart Turn hears prosody, and a synthetic or flat voice can sound finished anywhere, so the
semantic end of turn also asks the pause's (speculative) transcript. Only closed-class words
are listed (articles, prepositions, conjunctions, possessives): English and French.
"""

from __future__ import annotations

import re

# Words that can end a sentence too are left out: particles ("turn it on", "log in"),
# auxiliaries ("yes I can"), pronouns ("call her"), demonstratives ("I like that").
ENGLISH = (
    "a an the my your our their its every each very "
    "for to of from with at into onto than "
    "and or but because if "
    "i'd i'm i'll i've we'd we're you're"
)
FRENCH = (
    "le la les un une des du de d' l' au aux ce cet cette ces mon ma mes ton ta tes son sa ses "
    "notre nos votre vos leur leurs pour à avec dans sur sous par sans chez vers "
    "et ou mais donc car que qu' dont"
)
DANGLING = frozenset((ENGLISH + " " + FRENCH).split())
_WORD = re.compile(r"[\w']+")


def sounds_unfinished(transcript: str) -> bool:
    """Whether ``transcript`` ends on a word that needs another one after it."""
    words = _WORD.findall(transcript.lower().replace("’", "'"))
    return bool(words) and words[-1] in DANGLING
