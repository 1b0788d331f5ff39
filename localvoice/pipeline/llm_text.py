"""A generated reply's text as its tokens arrive: whole characters, cut at the first stop string.

What llama-cpp-python's streamed completion does for one sequence, for the batched engine
(``pipeline/llm_batch.py``), which samples its tokens itself: a token may end inside a UTF-8
character, and text that may be the start of a stop string is held back until it is not.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterable


class ReplyText:
    """The speakable text of one reply, fed one token's bytes at a time.

    Args:
        stops: the reply ends before the first of these strings.
    """

    def __init__(self, stops: Iterable[str]) -> None:
        self._stops = tuple(s for s in stops if s)
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._held = ""
        #: True once a stop string was met (nothing more is returned).
        self.stopped = False

    def feed(self, piece: bytes) -> str:
        """The text that can be emitted now that ``piece`` arrived (may be empty)."""
        if self.stopped:
            return ""
        self._held += self._decoder.decode(piece)
        cut = min((i for i in (self._held.find(s) for s in self._stops) if i >= 0), default=-1)
        if cut >= 0:
            self.stopped = True
            out, self._held = self._held[:cut], ""
            return out
        keep = self._stop_prefix_length()
        out = self._held[: len(self._held) - keep]
        self._held = self._held[len(out) :]
        return out

    def flush(self) -> str:
        """The rest, once the reply ended without a stop string (token cap, end of text)."""
        if self.stopped:
            return ""
        out = self._held + self._decoder.decode(b"", final=True)
        self._held = ""
        return out

    def _stop_prefix_length(self) -> int:
        """The longest end of the held text that a stop string starts with."""
        longest = 0
        for stop in self._stops:
            for n in range(min(len(stop) - 1, len(self._held)), longest, -1):
                if self._held.endswith(stop[:n]):
                    longest = n
                    break
        return longest
