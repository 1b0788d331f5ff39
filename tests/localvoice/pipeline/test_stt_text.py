"""Whisper's text clean-up (``pipeline/stt.py``), without the model: where it starts over."""

from __future__ import annotations

import pytest

from localvoice.pipeline.stt import _trim_repeat


@pytest.mark.parametrize(
    ("heard", "kept"),
    [
        ("What is the capital of France? What is", "What is the capital of France?"),
        # Seen on speculative transcripts of Piper speech, 64 ms into the pause.
        ("How many grams of flour do I need for? How", "How many grams of flour do I need for?"),
        (
            "Could you tell me the opening hours of the city museum? The city",
            "Could you tell me the opening hours of the city museum?",
        ),
        ("turn off the lights in the kitchen, turn", "turn off the lights in the kitchen,"),
        ("Turn off the lights in the kitchen. Turn", "Turn off the lights in the kitchen."),
    ],
)
def test_a_transcript_that_runs_on_into_a_repeat_is_cut(heard, kept):
    assert _trim_repeat(heard) == kept


@pytest.mark.parametrize(
    "heard",
    [
        "I need two things. First",  # a new word: the user may go on
        "Yes, yes",
        "Hello. Hello",  # too short to tell
        "I like tea, and you",
        "Please add milk and some eggs.",
    ],
)
def test_words_that_are_not_a_repeat_stay(heard):
    assert _trim_repeat(heard) == heard
