"""Heartbeats of all the sessions of one worker, written to the registry together.

A registry write per session and period cost this worker about 15 % of a core at 150 sessions
and most of the relay's p99 (each write is a thread hop, ORM work and, on SQLite, a commit).
So one task per worker ticks every ``VOICE_HEARTBEAT_SECONDS``: it reads every live session's
beat (a few attributes, no await), writes them all in one transaction
(``registry.sessions_tick``) and passes on what the registry says: end requests, the profile's
saved version and the attached monitors, so a lost channel-layer message (a profile change, a
monitor attaching) still lands on the next tick. The sessions' own timers (timeouts, rollover,
re-validation) stay spread over the period.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from typing import Protocol

from django.conf import settings

from assistant.live import registry
from assistant.live.looplag import lag_probe
from assistant.live.periodic import WorkerTask

logger = logging.getLogger(__name__)

# Workers tick at different phases, so their batches do not reach the database together.
_PHASE = random.random()  # noqa: S311 - spreading load, not security


def next_tick_delay(period: float, *, shift: float = 0.0) -> float:
    """Seconds until this worker's next heartbeat tick (every ``period``, at its phase).

    ``shift`` (a fraction of the period) moves the tick: the worker's other periodic jobs
    (assistant/calls/checks.py) keep out of the heartbeat's way.
    """
    offset = (time.time() / period - _PHASE - shift) % 1.0
    return period * (1.0 - offset)


class BeatSource(Protocol):
    """A live session, as the heartbeat sees it."""

    def beat(self) -> registry.Beat:
        """What to write to the session's registry row now."""

    def registry_says_end(self, reason: str) -> None:
        """The registry asks the session to end (terminated, replaced, logout, gone)."""

    def registry_orders(self, orders: registry.Orders, read_at: float) -> None:
        """What the registry says besides ending: the profile's version, the monitors.

        ``read_at`` is when the read began (``time.monotonic()``).
        """


class HeartbeatBatcher(WorkerTask[BeatSource]):
    """One heartbeat task per worker (per event loop) for all its sessions."""

    name = "voice-heartbeat"

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(next_tick_delay(settings.VOICE_HEARTBEAT_SECONDS))
            members = self.members()
            if not members:
                return
            await self.tick(members)

    async def tick(self, members: dict[uuid.UUID, BeatSource]) -> None:
        """Write the beats of ``members`` and pass on the registry's orders (one read per tick)."""
        read_at = time.monotonic()
        # Spans: what the tick did, named by the lag probe if the loop stalls around it.
        with lag_probe.span("heartbeat.beats", len(members)):
            beats = [m.beat() for m in members.values()]
        try:
            with lag_probe.span("heartbeat.database", len(beats)):  # in the database thread
                orders = await registry.asessions_tick(beats)
        except Exception:
            # A database hiccup must not end the calls; the next tick tries again.
            logger.warning("heartbeat of %d sessions failed", len(members), exc_info=True)
            return
        with lag_probe.span("heartbeat.orders", len(orders)):
            for session_id, order in orders.items():
                if not self.is_member(session_id):
                    continue  # left while the tick was in the database
                member = members[session_id]
                if order.end_reason:
                    member.registry_says_end(order.end_reason)
                else:
                    member.registry_orders(order, read_at)


heartbeats = HeartbeatBatcher()
