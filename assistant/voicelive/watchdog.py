"""The reply watchdog: a reply asked for or running, and the upstream silent for too long.

One timer per session, moved only when it fires: every upstream frame just stores its arrival
time (:meth:`ReplyWatchdog.heard`), so the watchdog costs the audio path nothing. The SDK's own
heartbeat only notices a dead socket, not a live peer that stopped talking.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class ReplyWatchdog:
    """Calls ``on_stall(silent_seconds)`` once when a reply is owed and nothing came for ``limit``.

    Args:
        limit: seconds of upstream silence allowed while a reply is owed.
        on_stall: called from the event loop when that limit is passed.
    """

    def __init__(self, limit: float, on_stall: Callable[[float], None]) -> None:
        self._limit = limit
        self._on_stall = on_stall
        self._expected = False
        self._last_heard = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._stopped = False

    @property
    def expected(self) -> bool:
        """True while a reply is asked for or running."""
        return self._expected

    def heard(self) -> None:
        """An upstream frame arrived (called for every frame: keep it cheap)."""
        self._last_heard = time.monotonic()

    def expect(self) -> None:
        """A reply was asked for or has started: the upstream must keep talking until it ends."""
        if not self._expected:
            self._expected = True
            self._last_heard = time.monotonic()
        if self._timer is None and not self._stopped:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_at(loop.time() + self._limit, self._check)

    def settled(self) -> None:
        """No reply is owed any more (it ended, failed, or the connection was replaced)."""
        self._expected = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def stop(self) -> None:
        """The session is closing: never fire again."""
        self._stopped = True
        self.settled()

    def _check(self) -> None:
        self._timer = None
        if not self._expected or self._stopped:
            return
        silent = time.monotonic() - self._last_heard
        if silent < self._limit:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_at(loop.time() + self._limit - silent, self._check)
            return
        self._on_stall(silent)
