"""When the words decoded so far must go to synthesis so the listener hears no gap.

The client plays a reply's audio as it arrives. A chunk is synthesised once the chunker
releases it, usually at a sentence end; when the model decodes slower than the voice speaks
(several sessions at once, a slow host), the audio the client holds runs out before the rest
of the sentence is decoded and synthesised, and the user hears silence mid-sentence (0.3 s a
reply with one session on a 2-core Xeon, 0.8-1.2 s with four; ``bench.concurrency``,
2026-12-07). ``Playout`` keeps the client's clock and this reply's synthesis speed, and says
when waiting for one more token would leave the client without audio.
"""

from __future__ import annotations

#: Weight of the newest measurement in the running estimates.
SMOOTHING = 0.3
#: The characters one more token adds to a chunk, about (a word and its space).
NEXT_WORD_CHARS = 6
#: Slack for the event loop and the audio's way to the client.
SAFETY_S = 0.05


class Playout:
    """A reply's audio as the client plays it, and what the next chunk costs to make.

    Times are ``time.perf_counter()`` seconds. Nothing is cut before the first audio has been
    sent (the first chunk has its own rule) or while a chunk is being synthesised (its audio
    will extend the playout; the next token checks again).
    """

    def __init__(self) -> None:
        self.until = 0.0  # when the audio sent so far will have played out (0: none sent)
        self.synthesizing = 0  # chunks released and not yet sent as audio
        self._synth_s_per_char: float | None = None
        self._token_gap_s: float | None = None
        self._last_piece: float | None = None

    def sent(self, audio_s: float, now: float) -> None:
        """``audio_s`` of audio went to the client at ``now``."""
        self.until = max(self.until, now) + audio_s

    def synthesized(self, chars: int, seconds: float) -> None:
        """A chunk of ``chars`` characters took ``seconds`` to synthesise (queue included)."""
        rate = seconds / max(chars, 1)
        previous = self._synth_s_per_char
        self._synth_s_per_char = rate if previous is None else _smooth(previous, rate)

    def piece(self, now: float) -> None:
        """A piece of the reply's text arrived from the model at ``now``."""
        if self._last_piece is not None:
            gap, previous = now - self._last_piece, self._token_gap_s
            self._token_gap_s = gap if previous is None else _smooth(previous, gap)
        self._last_piece = now

    def must_cut(self, buffered_chars: int, now: float) -> bool:
        """Whether the ``buffered_chars`` waiting in the chunker must be synthesised now."""
        if not self.until or self.synthesizing or self._synth_s_per_char is None:
            return False
        wait_one_more = (self._token_gap_s or 0.0) + self._synth_s_per_char * (
            buffered_chars + NEXT_WORD_CHARS
        )
        return self.until - now <= wait_one_more + SAFETY_S


def _smooth(previous: float, new: float) -> float:
    return previous + SMOOTHING * (new - previous)
