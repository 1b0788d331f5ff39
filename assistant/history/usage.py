"""What a live session uses, as the ledger and the quotas count it (no Django).

A **quota minute** is a minute of conversation audio either way: the user's microphone relayed
to the assistant *plus* the assistant's spoken replies relayed to the browser, plus typed
messages at the time it takes to say them. What a conversation costs upstream is dominated by
audio tokens both ways, so a quota has to count both to bound the spend: counting the
microphone alone let a typed question, or a push-to-talk tap, buy a reply of any length for
nothing. The sum (rather than, say, the larger of the two) also adds up: the part of a session
already written and the part not written yet, or a session cut in two by a crash, count exactly
what the whole would.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

#: Bytes per second of the PCM16 24 kHz mono audio both ways.
AUDIO_BYTES_PER_SECOND = 48_000
# How much one typed message counts is the relay's to say (it keeps the running total):
# assistant/voicelive/usage.py.


class Counters(Protocol):
    """The running totals a live session keeps anyway (``VoiceLiveSession``)."""

    @property
    def audio_in_bytes(self) -> int:
        """Microphone audio sent upstream so far."""

    @property
    def audio_out_bytes(self) -> int:
        """Assistant audio relayed to the browser so far."""

    @property
    def typed_seconds(self) -> float:
        """Typed messages sent upstream so far, in seconds (``voicelive.usage.typed_seconds``)."""


@dataclass(frozen=True, slots=True)
class Usage:
    """What a session (or part of one) used: seconds of audio each way and of typed text."""

    audio_in_seconds: float = 0.0
    audio_out_seconds: float = 0.0
    typed_seconds: float = 0.0

    @property
    def quota_seconds(self) -> float:
        """What it counts toward a minute quota, in seconds (see the module's docstring)."""
        return self.audio_in_seconds + self.audio_out_seconds + self.typed_seconds

    @classmethod
    def of(cls, counters: Counters | None) -> Usage:
        """A live session's usage so far from its counters (none yet: zero)."""
        if counters is None:
            return cls()
        return cls(
            audio_in_seconds=counters.audio_in_bytes / AUDIO_BYTES_PER_SECOND,
            audio_out_seconds=counters.audio_out_bytes / AUDIO_BYTES_PER_SECOND,
            typed_seconds=counters.typed_seconds,
        )
