"""Cut a stream of LLM tokens into speakable chunks for TTS."""

from __future__ import annotations

import re

_SENTENCE_END = re.compile(r"[.!?;:](?:[\"')\]]*)\s")
_COMMA = re.compile(r",\s")
_WORD_END = re.compile(r"\S\s")
# The first chunk is cut early at a comma so the first audio arrives sooner.
FIRST_CHUNK_COMMA_CHARS = 24
MIN_CHUNK_CHARS = 12


class SentenceChunker:
    """Accumulate streamed text and release it at sentence boundaries.

    The first chunk may also end at a comma once it is longer than ``FIRST_CHUNK_COMMA_CHARS``,
    or after ``first_chunk_words`` words (0: no cap), so speech starts before a slower model has
    finished its first sentence.
    """

    def __init__(self, first_chunk_words: int = 0) -> None:
        self._buffer = ""
        self._emitted = 0
        self._first_words = first_chunk_words

    def feed(self, text: str) -> list[str]:
        """Add streamed text; return the chunks that are complete."""
        self._buffer += text
        chunks: list[str] = []
        while (cut := self._find_cut()) is not None:
            if chunk := self._release(cut):
                chunks.append(chunk)
        return chunks

    def _release(self, cut: int) -> str | None:
        """Take the buffer up to ``cut`` as a chunk (``None``: only whitespace there)."""
        chunk, self._buffer = self._buffer[:cut].strip(), self._buffer[cut:]
        if not chunk:
            return None
        self._emitted += 1
        return chunk

    def _word_ends(self) -> list[int]:
        """Where each complete word in the buffer ends (after its space)."""
        return [m.end() for m in _WORD_END.finditer(self._buffer)]

    def _find_cut(self) -> int | None:
        for match in _SENTENCE_END.finditer(self._buffer):
            if match.end() >= MIN_CHUNK_CHARS:
                return match.end()
        if self._emitted == 0 and len(self._buffer) > FIRST_CHUNK_COMMA_CHARS:
            for match in _COMMA.finditer(self._buffer):
                if match.end() >= MIN_CHUNK_CHARS:
                    return match.end()
        if self._emitted == 0 and self._first_words:
            ends = self._word_ends()
            if len(ends) >= self._first_words:
                return ends[self._first_words - 1]
        return None

    @property
    def buffered_chars(self) -> int:
        """Characters received and not yet released."""
        return len(self._buffer)

    def cut_words(self) -> str | None:
        """Release the complete words buffered now, if any; the unfinished last word stays.

        For when the speaker is about to run out of audio (``turns/pacing.py``).
        """
        ends = self._word_ends()
        return self._release(ends[-1]) if ends else None

    def flush(self) -> str:
        """The remaining text, once the stream has ended."""
        rest, self._buffer = self._buffer.strip(), ""
        return rest


def clean_reply(text: str) -> str:
    """Strip markup a TTS voice would read out literally (markdown bullets, asterisks)."""
    text = re.sub(r"[*_#`]+", "", text)
    return re.sub(r"\s+", " ", text)
