"""What one browser socket may send: the rate limits and abuse budgets (no Django, no I/O).

The counterpart of ``outbound.py``. Audio is limited in bytes per second (faster than real time
is refused) and in frames per second (the relay's cost is per frame, so tiny valid frames inside
the byte budget would cost a core); invalid frames are charged to the same abuse budget; control
messages have their own rate. A refusal says whether to reply with its code or, once the budget
is spent, to close with 4400. Error replies are themselves rate-limited, so a flood of bad input
never queues unbounded replies in the server.
"""

from __future__ import annotations

from dataclasses import dataclass

from assistant import metrics, protocol
from assistant.codes import ClientError, ErrorCode
from assistant.live.limits import TokenBucket

# Persistent abuse (this many refused control messages) ends the session.
MAX_CONTROL_VIOLATIONS = 50
# Refused audio frames spend a token each; the budget refills slowly, so an occasional burst is
# forgiven but audio sent far faster than real time, or invalid frames, end the session.
AUDIO_VIOLATION_BURST = 100
AUDIO_VIOLATION_REFILL_PER_SECOND = 2.0
# This many seconds of the frame rate may come at once.
AUDIO_FRAME_BURST_SECONDS = 2.0
# Error replies to one socket (issue 9: a flood left 618,022 unread ones); beyond, only counted.
ERROR_REPLY_BURST = 100
ERROR_REPLIES_PER_SECOND = 10.0


@dataclass(frozen=True, slots=True)
class Refusal:
    """A refused frame: the code to report, and whether the session must end (4400)."""

    code: ErrorCode
    close: bool = False


class InboundLimits:
    """The budgets of one socket.

    Args:
        control_per_minute: control messages allowed per minute (a quarter of it at once).
        audio_rate_limit: audio allowed, as a multiple of real time (over a 2 s window).
        frames_per_second: audio frames allowed per second.
        max_frame_bytes: the largest audio frame accepted.
    """

    def __init__(
        self,
        *,
        control_per_minute: float,
        audio_rate_limit: float,
        frames_per_second: float,
        max_frame_bytes: int,
    ) -> None:
        self._max_frame_bytes = max_frame_bytes
        self._control = TokenBucket(
            rate=control_per_minute / 60, burst=max(10, control_per_minute / 4)
        )
        self._control_violations = 0
        audio_rate = protocol.BYTES_PER_SECOND * audio_rate_limit
        self._audio_bytes = TokenBucket(rate=audio_rate, burst=audio_rate * 2)
        self._audio_frames = TokenBucket(
            rate=frames_per_second, burst=frames_per_second * AUDIO_FRAME_BURST_SECONDS
        )
        self._audio_violations = TokenBucket(
            rate=AUDIO_VIOLATION_REFILL_PER_SECOND, burst=AUDIO_VIOLATION_BURST
        )
        self._error_replies = TokenBucket(rate=ERROR_REPLIES_PER_SECOND, burst=ERROR_REPLY_BURST)

    def audio(self, pcm: bytes) -> Refusal | None:
        """Whether an audio frame may be relayed (None) or why not."""
        try:
            protocol.validate_audio_frame(pcm, max_bytes=self._max_frame_bytes)
        except ClientError as exc:
            # An invalid frame is abuse like a too-fast one: charged to the same budget.
            return self._audio_violation(exc.code)
        if not self._audio_bytes.take(len(pcm)):
            metrics.AUDIO_DROPPED.labels(reason="over_rate").inc()
            return self._audio_violation(ErrorCode.AUDIO_TOO_FAST)
        if not self._audio_frames.take():
            metrics.AUDIO_DROPPED.labels(reason="over_frame_rate").inc()
            return self._audio_violation(ErrorCode.AUDIO_TOO_FAST)
        return None

    def control(self) -> Refusal | None:
        """Whether one more control message fits the rate (None) or why not."""
        if self._control.take():
            return None
        self._control_violations += 1
        return Refusal(
            ErrorCode.RATE_LIMITED, close=self._control_violations > MAX_CONTROL_VIOLATIONS
        )

    def error_reply(self) -> bool:
        """True when one more error reply may be sent to this socket."""
        return self._error_replies.take()

    def _audio_violation(self, code: ErrorCode) -> Refusal:
        return Refusal(code, close=not self._audio_violations.take())
