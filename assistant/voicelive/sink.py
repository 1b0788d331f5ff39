"""Where a Voice Live session's output goes: the port the relay writes the browser through.

Its own module so that the event router and the tool calls, which both write to it, need not
import each other for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from assistant import protocol
from assistant.codes import ErrorCode, State

if TYPE_CHECKING:
    from assistant.voicelive.turn_timing import TurnTiming


class SessionSink(Protocol):
    """Where a session's output goes: the browser socket (and anything observing it)."""

    async def send_message(self, message: protocol.ServerMessage) -> None:
        """Send a control message to the browser."""

    async def clear_playback(self) -> None:
        """Tell the browser to drop the assistant audio it has not played, and drop ours."""

    async def send_audio(self, pcm: bytes) -> None:
        """Send assistant audio (PCM16, 24 kHz) to the browser."""

    async def set_state(self, state: State) -> None:
        """The session's state changed."""

    async def upstream_lost(self, code: ErrorCode) -> None:
        """The upstream ended for good; the session is over."""

    def response_usage(self, response_id: str, usage: Any) -> None:
        """A response ended with this ``usage`` (``response.done``; None when absent)."""

    def turn_timed(self, timing: TurnTiming) -> None:
        """A turn is over: its timings, once (no I/O: the call records and counts them)."""
