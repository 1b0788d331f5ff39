"""How late this worker's event loop runs: a probe task, its metrics and its stall log.

A Daphne worker relays every session on one event loop, so anything that holds the loop (a
callback doing too much, work per heartbeat that grows with the number of sessions, a thread
holding the GIL) delays every session's audio at once. One small task per event loop sleeps
:data:`INTERVAL` and records how late it woke: ``voice_event_loop_lag_seconds`` (a histogram)
and ``voice_event_loop_lag_max_seconds`` (the largest lag of the last 10-20 s). It starts with
the worker's first session and ends with its last, like the heartbeat (``live/beats.py``).

A wake-up later than :data:`STALL_SECONDS` is logged as a warning, at most once per
:data:`WARN_EVERY_SECONDS` (the others are counted into the next one). The warning names the
worker's own periodic work that ran meanwhile (:meth:`LoopLagProbe.span`, e.g. the heartbeat's
tick) and, when a watchdog thread caught the loop in the act, where its thread was: a stack
sample taken while the probe was overdue. That costs a thread waking every 25 ms, not the
``slow_callback_duration`` of asyncio's debug mode, which wraps every callback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from types import FrameType

from assistant import metrics
from assistant.live.periodic import WorkerTask

logger = logging.getLogger(__name__)

#: The probe's sleep: ten samples a second, one timer among thousands of frames a second.
INTERVAL = 0.1
#: A wake-up this late is a stall worth a warning (half of the 200 ms playout budget at p99
#: would already be gone).
STALL_SECONDS = 0.05
#: At most one stall warning per this many seconds; the others are counted into the next.
WARN_EVERY_SECONDS = 10.0
#: ``voice_event_loop_lag_max_seconds`` covers the last one or two windows of this length.
MAX_WINDOW_SECONDS = 10.0
#: How often the watchdog thread looks whether the probe is overdue.
WATCH_PERIOD = INTERVAL / 4
#: Spans of periodic work kept for the stall log (a few ticks' worth).
SPANS_KEPT = 16
#: How long :meth:`LoopLagProbe.close` waits for the task, then for the watchdog.
CLOSE_SECONDS = 1.0
#: Frames of the loop thread's stack named in a stall warning (innermost first).
STACK_FRAMES = 8


@dataclass(frozen=True, slots=True)
class Span:
    """A stretch of periodic work on this worker, for the stall log.

    Attributes:
        name: what ran (``heartbeat.tick``, ...).
        count: how many sessions (or items) it covered.
        started: ``time.monotonic()`` at its start.
        ended: ``time.monotonic()`` at its end.
    """

    name: str
    count: int
    started: float
    ended: float


def _stack_text(frame: FrameType | None) -> str:
    """``file:line function`` of the innermost frames, innermost first, on one line."""
    if frame is None:
        return ""
    # No source lines: no file reads, and as little GIL as possible taken from the loop.
    summary = traceback.StackSummary.extract(
        traceback.walk_stack(frame), limit=STACK_FRAMES, lookup_lines=False
    )
    return " < ".join(f"{f.filename}:{f.lineno} {f.name}" for f in summary)


class _Watchdog(threading.Thread):
    """Samples the loop thread's stack while the probe is overdue (one sample per stall)."""

    def __init__(self, probe: LoopLagProbe, loop_thread: int) -> None:
        super().__init__(name="voice-loop-watchdog", daemon=True)
        self._probe = probe
        self._loop_thread = loop_thread
        self.stopped = threading.Event()

    def run(self) -> None:
        probe = self._probe
        while not self.stopped.wait(WATCH_PERIOD):
            due = probe.due  # a float read: atomic under the GIL
            if due and time.monotonic() - due > STALL_SECONDS and probe.stack_due != due:
                # The loop is stuck right now: where?
                frame = sys._current_frames().get(self._loop_thread)
                probe.stack, probe.stack_due = _stack_text(frame), due


class LoopLagProbe(WorkerTask[object]):
    """One lag probe per worker (per event loop), running while the worker has sessions."""

    name = "voice-loop-lag-probe"
    close_timeout = CLOSE_SECONDS

    def __init__(self) -> None:
        super().__init__()
        self._watchdog: _Watchdog | None = None
        self._spans: deque[Span] = deque(maxlen=SPANS_KEPT)
        #: When the running sleep should end (``time.monotonic()``); 0 between sleeps.
        self.due = 0.0
        #: The watchdog's last stack sample, and the sleep (its ``due``) it was taken for.
        self.stack = ""
        self.stack_due = 0.0
        self._window_start = 0.0
        self._window_max = 0.0
        self._previous_max = 0.0
        self._last_warning = float("-inf")
        self._unreported = 0
        self._unreported_max = 0.0

    # ------------------------------------------------------------------ membership

    async def close(self) -> None:
        """End the task and the watchdog and wait for them (tests, shutdown), bounded."""
        await super().close()
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is not None:
            watchdog.stopped.set()
            await asyncio.to_thread(watchdog.join, CLOSE_SECONDS)

    def _started(self, task: asyncio.Task[None]) -> None:
        self._window_start = self._window_max = self._previous_max = 0.0
        if self._watchdog is not None:
            self._watchdog.stopped.set()  # a finished loop's (a test's): it exits by itself
        self._watchdog = _Watchdog(self, threading.get_ident())
        self._watchdog.start()

    def _stopped(self, task: asyncio.Task[None]) -> None:
        # Also when cancelled before it ever ran: the watchdog goes with its task.
        if self._watchdog is not None and (self._task is task or self._task is None):
            self._watchdog.stopped.set()
        self.due = 0.0
        if self._task is task or self._task is None:
            metrics.LOOP_LAG_MAX.set(0.0)  # no session, no lag to speak of

    # ------------------------------------------------------------------ measuring

    async def _run(self) -> None:
        while True:  # until cancelled by the last session's leave (or close)
            self.due = due = time.monotonic() + INTERVAL
            await asyncio.sleep(INTERVAL)
            self.due = 0.0
            now = time.monotonic()
            # asyncio may wake a clock tick early: that is no lag.
            self.observe(max(0.0, now - due), now, due)

    def observe(self, lag: float, now: float, due: float = 0.0) -> None:
        """Record one wake-up ``lag`` seconds late, at ``now``, of the sleep due at ``due``."""
        metrics.LOOP_LAG.observe(lag)
        if now - self._window_start >= MAX_WINDOW_SECONDS:
            self._window_start, self._previous_max, self._window_max = now, self._window_max, 0.0
        self._window_max = max(self._window_max, lag)
        metrics.LOOP_LAG_MAX.set(max(self._window_max, self._previous_max))
        if lag > STALL_SECONDS:
            self._stalled(lag, now, due)

    @contextlib.contextmanager
    def span(self, name: str, count: int) -> Iterator[None]:
        """Note a stretch of this worker's periodic work, named in stall warnings.

        Around code with no await it is time the loop was held; around an await it includes
        the time spent elsewhere (a database thread), which still takes the GIL from the loop.
        """
        started = time.monotonic()
        try:
            yield
        finally:
            self._spans.append(Span(name, count, started, time.monotonic()))

    def _stalled(self, lag: float, now: float, due: float) -> None:
        if now - self._last_warning < WARN_EVERY_SECONDS:
            self._unreported += 1
            self._unreported_max = max(self._unreported_max, lag)
            return
        since = due - INTERVAL  # when the late sleep began
        spans = ", ".join(
            f"{s.name} ({s.count}) {1000 * (s.ended - s.started):.1f} ms"
            for s in self._spans
            if s.ended >= since
        )
        stack = self.stack if due and self.stack_due == due else ""
        earlier = ""
        if self._unreported:
            worst = 1000 * self._unreported_max
            earlier = f"; {self._unreported} more since the last report, max {worst:.0f} ms"
        logger.warning(
            "event loop stalled: the lag probe woke %.0f ms late (%d sessions)%s; "
            "periodic work meanwhile: %s; loop thread caught at: %s",
            1000 * lag,
            len(self._members),
            earlier,
            spans or "none",
            stack or "not caught",
        )
        self._last_warning, self._unreported, self._unreported_max = now, 0, 0.0


lag_probe = LoopLagProbe()
