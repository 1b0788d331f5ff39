"""What a quota minute counts: audio both ways and typed text (assistant/history/usage.py)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from assistant.history.usage import AUDIO_BYTES_PER_SECOND, Usage
from assistant.voicelive.usage import typed_seconds


def test_a_typed_message_counts_its_speaking_time_and_at_least_a_second() -> None:
    assert typed_seconds("") == 1.0
    assert typed_seconds("Hi") == 1.0  # no turn is free
    assert typed_seconds("x" * 150) == pytest.approx(10.0)  # 15 characters a second


@dataclass
class Counters:
    audio_in_bytes: int = 0
    audio_out_bytes: int = 0
    typed_seconds: float = 0.0


def test_a_session_uses_its_audio_both_ways_plus_its_typed_time() -> None:
    """A 0.2 s push-to-talk tap that gets a 20 s reply uses 20.2 s, not 0.2 s."""
    tap = Counters(
        audio_in_bytes=AUDIO_BYTES_PER_SECOND // 5, audio_out_bytes=20 * AUDIO_BYTES_PER_SECOND
    )
    assert Usage.of(tap).quota_seconds == pytest.approx(20.2)
    typed = Counters(audio_out_bytes=6 * AUDIO_BYTES_PER_SECOND, typed_seconds=2.0)
    assert Usage.of(typed) == Usage(0.0, 6.0, 2.0)
    assert Usage.of(typed).quota_seconds == 8.0
    assert Usage.of(None) == Usage()
