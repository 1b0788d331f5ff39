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


def test_cut_words_releases_the_complete_words_and_keeps_the_unfinished_one():
    chunker = SentenceChunker(first_chunk_words=2)
    assert chunker.feed("Paris sits on") == ["Paris sits"]
    assert chunker.cut_words() is None  # "on" may still be the start of "one"
    assert chunker.feed(" the riv") == []
    assert chunker.buffered_chars == len("on the riv")
    assert chunker.cut_words() == "on the"
    assert chunker.feed("er Seine. ") == ["river Seine."]
