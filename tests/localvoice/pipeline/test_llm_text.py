"""A batched reply's text: whole characters, cut before the first stop string."""

from __future__ import annotations

from localvoice.pipeline.llm_text import ReplyText


def feed_all(text: ReplyText, pieces: list[bytes]) -> list[str]:
    return [text.feed(piece) for piece in pieces]


def test_plain_pieces_pass_through_at_once() -> None:
    text = ReplyText(["</tool_call>"])
    assert feed_all(text, [b"Hello", b" there", b"."]) == ["Hello", " there", "."]
    assert text.flush() == ""


def test_a_character_split_across_tokens_comes_whole() -> None:
    text = ReplyText([])
    euro = "€".encode()
    assert feed_all(text, [b"It costs 5", euro[:1], euro[1:]]) == ["It costs 5", "", "€"]


def test_the_reply_ends_before_a_stop_string_split_across_tokens() -> None:
    text = ReplyText(["<|im_end|>"])
    out = feed_all(text, [b"Paris", b".<|im", b"_end", b"|>", b"more"])
    assert "".join(out) == "Paris."
    assert out[1] == "."  # "<|im" is held back: it may start the stop string
    assert text.stopped
    assert text.flush() == ""


def test_held_text_that_turns_out_not_to_stop_is_released() -> None:
    text = ReplyText(["</tool_call>"])
    assert text.feed(b"a </") == "a "
    assert text.feed(b"b>") == "</b>"


def test_the_rest_is_flushed_at_the_end() -> None:
    text = ReplyText(["<|endoftext|>"])
    assert text.feed(b"Bye <|end") == "Bye "
    assert text.flush() == "<|end"
