"""The words' end of turn on the real default chat model (``pipeline/words_turn.py``).

The sentences here are not the turn-taking bench's (``bench/turn_taking.py``), which measures
the same thresholds end to end: this set is where they were chosen.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from localvoice.config import ServerConfig
from localvoice.pipeline.llm import LlamaChat
from localvoice.pipeline.llms import registry as chat_models
from localvoice.pipeline.weights import resolve
from localvoice.pipeline.words_turn import (
    FINISHED_FROM,
    UNFINISHED_BELOW,
    WordsEndOfTurn,
    is_finished,
    judgeable,
    normalised,
)


def test_the_words_are_judged_without_case_or_punctuation():
    assert normalised("Is it going to RAIN?!") == "is it going to rain"
    assert normalised("I'd like a well-done steak...") == "i'd like a well-done steak"
    assert normalised(" … ") == ""


def test_a_lone_word_after_a_finished_sentence_is_not_judged():
    assert not judgeable("Turn off the lights in the kitchen. Turn")
    assert judgeable("Turn off the lights in the kitchen.")
    assert judgeable("I need two things. First, the milk")
    assert not judgeable("...")


def test_the_verdict_has_three_answers():
    assert is_finished(UNFINISHED_BELOW / 2) is False
    assert is_finished((UNFINISHED_BELOW + FINISHED_FROM) / 2) is None
    assert is_finished(FINISHED_FROM) is True
    assert is_finished(float("nan")) is None


FRAGMENTS = [
    "Can you tell me how to get to",
    "I was wondering if you could help me with",
    "Could you find me a cheap flight to",
    "Remind me tomorrow to",
    "I'm looking for a restaurant that serves",
    "Can you play some music by",
    "Do you know anything about the history of",
    "Je voudrais réserver une table pour",
]
SENTENCES = [
    "Can you tell me how to get to the station?",
    "I was wondering if you could help me with my homework.",
    "Could you find me a cheap flight to Rome?",
    "Remind me tomorrow to water the plants.",
    "I'm looking for a restaurant that serves sushi.",
    "Can you play some music by the Beatles?",
    "Do you know anything about the history of Rome?",
    "Je voudrais réserver une table pour quatre personnes.",
]


@pytest.fixture(scope="module")
def words() -> Iterator[WordsEndOfTurn]:
    chat_format = chat_models.get(ServerConfig().llm)
    assert chat_format.weights is not None
    chat = LlamaChat(resolve(chat_format.weights), chat_format, slots=1)
    yield chat.words_end_of_turn()
    chat.close()


@pytest.mark.models
def test_fragments_are_unfinished_and_the_same_sentences_finished(words):
    fragments = {text: words.probability(text) for text in FRAGMENTS}
    sentences = {text: words.probability(text) for text in SENTENCES}
    assert all(p < UNFINISHED_BELOW for p in fragments.values()), fragments
    assert all(p >= UNFINISHED_BELOW for p in sentences.values()), sentences


@pytest.mark.models
def test_the_assistants_question_makes_a_short_answer_finished(words):
    alone = words.probability("my sister")
    answer = words.probability("my sister", "Who should I call?")
    assert alone < UNFINISHED_BELOW <= answer
    assert words.probability("my", "Who should I call?") < UNFINISHED_BELOW
