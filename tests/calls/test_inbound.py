"""The inbound limits of one socket, on their own (the real-path floods are in tests/hardening)."""

from __future__ import annotations

from assistant.calls.inbound import (
    AUDIO_VIOLATION_BURST,
    ERROR_REPLY_BURST,
    MAX_CONTROL_VIOLATIONS,
    InboundLimits,
    Refusal,
)
from assistant.codes import ErrorCode

FRAME = b"\x01\x00" * 2400  # 100 ms


def limits(**overrides: float) -> InboundLimits:
    values = {
        "control_per_minute": 120,
        "audio_rate_limit": 1.5,
        "frames_per_second": 50,
        "max_frame_bytes": 32768,
    } | overrides
    return InboundLimits(**values)  # type: ignore[arg-type]


def test_real_time_audio_passes() -> None:
    inbound = limits()
    assert all(inbound.audio(FRAME) is None for _ in range(30))  # 3 s at once: within the burst


def test_invalid_frames_are_violations_then_close() -> None:
    inbound = limits()
    refusals = [inbound.audio(b"\x01") for _ in range(AUDIO_VIOLATION_BURST + 1)]
    assert refusals[0] == Refusal(ErrorCode.BAD_AUDIO)
    assert refusals[-1] == Refusal(ErrorCode.BAD_AUDIO, close=True)


def test_tiny_frames_hit_the_frame_rate_not_the_byte_rate() -> None:
    inbound = limits(frames_per_second=10)
    results = [inbound.audio(b"\x01\x00") for _ in range(21)]
    assert results[:20] == [None] * 20  # 2 s of burst
    assert results[20] == Refusal(ErrorCode.AUDIO_TOO_FAST)


def test_control_flood_is_refused_then_closed() -> None:
    inbound = limits(control_per_minute=40)  # burst of 10
    refusals = [inbound.control() for _ in range(10 + MAX_CONTROL_VIOLATIONS + 1)]
    assert refusals[:10] == [None] * 10
    assert refusals[10] == Refusal(ErrorCode.RATE_LIMITED)
    assert refusals[-1] == Refusal(ErrorCode.RATE_LIMITED, close=True)


def test_error_replies_are_rate_limited() -> None:
    inbound = limits()
    sent = sum(inbound.error_reply() for _ in range(ERROR_REPLY_BURST * 3))
    assert ERROR_REPLY_BURST <= sent < ERROR_REPLY_BURST + 5
