"""Flow control for the assistant's audio to one browser.

Daphne writes whatever the application sends into the socket's transport buffer, which grows
without limit when the browser reads slower than Voice Live talks (a slow link, a frozen tab).
So the browser acknowledges the audio bytes it has received (``audio.ack``), the server keeps at
most ``window_bytes`` unacknowledged on the wire, holds the rest here up to ``backlog_bytes``,
and gives up on a browser whose backlog outgrows that: memory per session stays bounded.
"""

from __future__ import annotations

from collections import deque


class BacklogFull(Exception):
    """The browser has fallen further behind than the backlog allows."""


class AckOutOfRange(ValueError):
    """An acknowledgement that does not advance, or goes beyond what was sent."""


# An acknowledgement must advance by at least this much (100 ms of audio) unless it catches up
# with everything sent: valid acks can then never outnumber the audio they acknowledge.
MIN_ACK_STEP_BYTES = 4800


class AudioSendWindow:
    """Counts audio sent, acknowledged and held for one browser socket.

    Args:
        window_bytes: most bytes sent and not yet acknowledged (on the wire or in buffers).
        backlog_bytes: most bytes held back here while the window is full.
    """

    __slots__ = ("_held", "acked", "backlog_bytes", "held_bytes", "sent", "window_bytes")

    def __init__(self, *, window_bytes: int, backlog_bytes: int) -> None:
        self.window_bytes = window_bytes
        self.backlog_bytes = backlog_bytes
        self.sent = 0
        self.acked = 0
        self.held_bytes = 0
        self._held: deque[bytes] = deque()

    def offer(self, pcm: bytes) -> bool:
        """True when ``pcm`` may be sent now (and counts it as sent); otherwise it is held.

        Raises:
            BacklogFull: holding ``pcm`` would exceed the backlog.
        """
        if not self._held and self.sent - self.acked < self.window_bytes:
            self.sent += len(pcm)
            return True
        if self.held_bytes + len(pcm) > self.backlog_bytes:
            raise BacklogFull
        self._held.append(pcm)
        self.held_bytes += len(pcm)
        return False

    def ack(self, received: int) -> list[bytes]:
        """Record that the browser has received ``received`` bytes in all.

        Returns:
            The held chunks that now fit in the window, to send in order.

        Raises:
            AckOutOfRange: ``received`` is above what was sent, or does not advance on the
                last acknowledgement (by ``MIN_ACK_STEP_BYTES``, or up to all that was sent).
        """
        if received > self.sent or received <= self.acked:
            raise AckOutOfRange(received)
        if received - self.acked < MIN_ACK_STEP_BYTES and received != self.sent:
            raise AckOutOfRange(received)
        self.acked = received
        released: list[bytes] = []
        while self._held and self.sent - self.acked < self.window_bytes:
            pcm = self._held.popleft()
            self.held_bytes -= len(pcm)
            self.sent += len(pcm)
            released.append(pcm)
        return released

    def clear(self) -> int:
        """Drop the held audio (the browser was told to stop playing); returns its size."""
        dropped = self.held_bytes
        self._held.clear()
        self.held_bytes = 0
        return dropped
