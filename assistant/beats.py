"""Heartbeats of all the sessions of one worker, written to the registry together.

A registry write per session and period cost this worker about 15 % of a core at 150 sessions
and most of the relay's p99 (each write is a thread hop and Django ORM work holding the GIL
while audio waits). So the sessions of a worker beat on a shared tick, and the beats that
arrive together go to the database as one SELECT and one bulk UPDATE
(``registry.sessions_heartbeat``). Each caller still gets its own answer.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid

from assistant import registry

# Beats arriving within this window of the first one share a database call (they wake on the
# same tick, so a few ms would do; later ones join the next call).
GATHER_SECONDS = 0.01
# Workers tick at different phases (sessions within one worker share theirs), so the
# workers' batches do not all reach the database at the same instant.
_PHASE = random.random()  # noqa: S311 - spreading load, not security


def next_tick_delay(period: float) -> float:
    """Seconds until this worker's next heartbeat tick (every ``period``, at its phase)."""
    offset = (time.time() / period - _PHASE) % 1.0
    return period * (1.0 - offset)


class HeartbeatBatcher:
    """Coalesces the beats of concurrent callers into one registry write."""

    def __init__(self) -> None:
        self._pending: dict[uuid.UUID, tuple[registry.Beat, asyncio.Future[str | None]]] = {}
        self._flusher: asyncio.Task[None] | None = None

    async def beat(self, beat: registry.Beat) -> str | None:
        """Report one session's beat; returns why it must end, or None.

        Raises:
            Exception: whatever the database raised for the batch.
        """
        loop = asyncio.get_running_loop()
        flusher = self._flusher
        if flusher is None or flusher.done() or flusher.get_loop() is not loop:
            self._pending = {}  # anything left belongs to a finished loop (tests)
            self._flusher = loop.create_task(self._flush())
        future: asyncio.Future[str | None] = loop.create_future()
        self._pending[beat.session_id] = (beat, future)
        return await future

    async def _flush(self) -> None:
        await asyncio.sleep(GATHER_SECONDS)
        while self._pending:
            batch, self._pending = self._pending, {}
            try:
                reasons = await registry.asessions_heartbeat([b for b, _ in batch.values()])
            except Exception as exc:  # every caller decides what a failed beat means
                for _, future in batch.values():
                    if not future.done():
                        future.set_exception(exc)
                continue
            for session_id, (_, future) in batch.items():
                if not future.done():
                    future.set_result(reasons.get(session_id))


heartbeats = HeartbeatBatcher()
