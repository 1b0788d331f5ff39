"""Transcripts that stop on a word needing a next one."""

from __future__ import annotations

import pytest

from localvoice.turns.unfinished import sounds_unfinished


@pytest.mark.parametrize(
    "text",
    [
        "I would like to book a table for.",
        "Send it to Peter and",
        "What is the",
        "Je voudrais une table pour",
    ],
)
def test_a_dangling_last_word_sounds_unfinished(text):
    assert sounds_unfinished(text)


@pytest.mark.parametrize(
    "text", ["Book a table for four.", "What time is it?", "Turn it on", "", "Merci beaucoup."]
)
def test_a_sentence_that_can_end_there_does_not(text):
    assert not sounds_unfinished(text)
