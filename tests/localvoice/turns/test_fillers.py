"""Filler words removed from transcripts."""

from __future__ import annotations

import pytest

from localvoice.turns.fillers import strip_fillers


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Um, I would like, uh, a table.", "I would like a table."),
        ("Er, what time is it?", "What time is it?"),
        ("I need, um... four people", "I need four people"),
        ("Uh.", ""),
        ("um hmm", ""),
        ("The umbrella is under the summer errand", "The umbrella is under the summer errand"),
        ("Mhm, okay.", "Mhm, okay."),
    ],
)
def test_fillers_go_and_words_that_contain_them_stay(text, expected):
    assert strip_fillers(text) == expected
