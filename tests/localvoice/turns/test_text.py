"""Sentence chunking for TTS."""

from __future__ import annotations

from localvoice.turns.text import SentenceChunker


def test_chunker_cuts_sentences_and_an_early_comma():
    chunker = SentenceChunker()
    out = []
    for piece in [
        "Well,",
        "that",
        "is",
        "a",
        "very",
        "good",
        "question",
        "to",
        "ask,",
        "my",
        "friend.",
        "It",
        "rains.",
        "Ok",
    ]:
        out += chunker.feed(piece + " ")
    out.append(chunker.flush())
    assert out[0] == "Well, that is a very good question to ask,"
    assert out[1:] == ["my friend. It rains.", "Ok"]  # "my friend." alone is too short


def test_first_chunk_is_capped_at_four_words_then_sentences():
    from localvoice.turns.text import SentenceChunker

    reply = "The capital of France is Paris, and it is lovely. Yes."
    capped, plain = SentenceChunker(first_chunk_words=4), SentenceChunker()
    chunks: dict[str, list[str]] = {"capped": [], "plain": []}
    for token in reply.split(" "):
        chunks["capped"] += capped.feed(token + " ")
        chunks["plain"] += plain.feed(token + " ")
    assert chunks["capped"] == ["The capital of France", "is Paris, and it is lovely."]
    assert chunks["plain"] == ["The capital of France is Paris,", "and it is lovely."]
    assert capped.flush() == plain.flush() == "Yes."
