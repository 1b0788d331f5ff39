"""Process-wide state of one Daphne worker: its live sessions, admission control and drain.

A session is in this worker's live set through one :class:`Membership`: its registry row, its
count here, its heartbeat and the event-loop lag probe (``looplag.py``) are joined and left
together. A handshake admitted but not yet a
session holds a :class:`PendingSlot`.

On SIGTERM Daphne would cancel every consumer at once, dropping calls without a word. We take
over the signal: stop admitting sessions, close the live ones with a retryable code so browsers
reconnect to another worker, wait for them to finish, then let Daphne shut down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import types
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, cast

from django.conf import settings

from assistant import metrics
from assistant.codes import Ending
from assistant.live import registry
from assistant.live.beats import BeatSource, heartbeats
from assistant.live.looplag import lag_probe

logger = logging.getLogger(__name__)

#: After SIGTERM the worker keeps listening at least this long (never beyond
#: ``VOICE_DRAIN_SECONDS``), refusing new sockets with the retryable 4001, even when its sessions
#: closed at once. Browsers reconnecting in that window (the first retry comes after 0.5 s) and
#: handshakes already on their way get "retry elsewhere" instead of a reset connection (1006),
#: which they would not retry.
DRAIN_REFUSE_SECONDS = 1.0
#: The drain hooks (the history's last write) get at least this long, beyond
#: ``VOICE_DRAIN_SECONDS``.
DRAIN_HOOKS_SECONDS = 2.0

#: Awaited once the sessions are gone, before the server stops: the apps above register theirs
#: (the history app its writer's final flush), so the worker imports none of them.
DrainHook = Callable[[], Awaitable[None]]


class Drainable(Protocol):
    """A live call the worker can end."""

    async def end(self, ending: Ending) -> None:
        """Tell the browser why, close its socket and release the upstream."""


class Worker:
    """Live sessions of this process."""

    def __init__(self) -> None:
        self.sessions: set[Drainable] = set()
        #: Handshakes that passed the capacity check and are not yet added or refused: without
        #: them, every handshake in flight passes the same check across its awaits (overshoot).
        self.pending = 0
        self.draining = False
        self._drain_task: asyncio.Task[None] | None = None
        self._signal_installed = False
        self._idle = asyncio.Event()
        self._idle.set()
        self._drain_hooks: list[DrainHook] = []

    def at_capacity(self) -> bool:
        """True when admitting another session would overload this process."""
        return len(self.sessions) + self.pending >= settings.VOICE_MAX_SESSIONS_PER_WORKER

    def capacity_remaining(self) -> int:
        """Sessions this worker would still admit now (0 while draining): the scaling signal."""
        if self.draining:
            return 0
        used = len(self.sessions) + self.pending
        return max(0, settings.VOICE_MAX_SESSIONS_PER_WORKER - used)

    def add(self, session: Drainable) -> None:
        """Count a session that was admitted."""
        self.sessions.add(session)
        self._idle.clear()
        metrics.ACTIVE_SESSIONS.set(len(self.sessions))

    def discard(self, session: Drainable) -> None:
        """Forget a session that ended."""
        self.sessions.discard(session)
        if not self.sessions:
            self._idle.set()
        metrics.ACTIVE_SESSIONS.set(len(self.sessions))

    def install_drain_handler(self) -> None:
        """Take over SIGTERM once, from inside the running server (after Daphne set its own)."""
        if self._signal_installed or "twisted.internet.reactor" not in sys.modules:
            return
        from twisted.internet import reactor

        if not cast(Any, reactor).running:  # imported (e.g. under pytest) but not serving
            return
        self._signal_installed = True
        loop = asyncio.get_running_loop()

        def on_sigterm(signum: int, frame: object) -> None:
            loop.call_soon_threadsafe(self.begin_drain)

        with contextlib.suppress(ValueError):  # not the main thread: leave Daphne's handler
            signal.signal(signal.SIGTERM, on_sigterm)

    def begin_drain(self) -> None:
        """Start draining (idempotent)."""
        if self._drain_task is None:
            self._drain_task = asyncio.get_running_loop().create_task(self.drain())

    def drain_hook_add(self, hook: DrainHook) -> None:
        """Await ``hook`` on drain once the sessions are gone (registered once)."""
        if hook not in self._drain_hooks:
            self._drain_hooks.append(hook)

    async def _drain_hooks_run(self, limit: float) -> None:
        """Await every drain hook, all within ``limit``; a failure is logged, not raised."""
        deadline = asyncio.get_running_loop().time() + limit
        for hook in self._drain_hooks:
            try:
                async with asyncio.timeout_at(deadline):
                    await hook()
            except Exception as exc:
                name = getattr(hook, "__qualname__", repr(hook))
                logger.warning("draining: %s failed (%s)", name, type(exc).__name__)

    async def drain(self, *, stop_server: bool = True) -> None:
        """End every live session with a retryable close, then stop the server.

        New sockets are refused (4001) from the start; the server stops once the sessions are
        gone and :data:`DRAIN_REFUSE_SECONDS` have passed, or after ``VOICE_DRAIN_SECONDS``.
        """
        loop = asyncio.get_running_loop()
        started = loop.time()
        budget = settings.VOICE_DRAIN_SECONDS
        self.draining = True
        live = list(self.sessions)
        logger.info("draining: closing %d live sessions", len(live))
        await asyncio.gather(
            *(s.end(Ending.DRAINING) for s in live),
            return_exceptions=True,
        )
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(0.0, budget - (loop.time() - started))):
                await self._idle.wait()
        await self._drain_hooks_run(max(DRAIN_HOOKS_SECONDS, budget - (loop.time() - started)))
        await lag_probe.close()  # ended with the last session already; this waits for it
        refusing = min(budget, DRAIN_REFUSE_SECONDS) - (loop.time() - started)
        if stop_server and refusing > 0:
            await asyncio.sleep(refusing)
        logger.info("drained in %.1fs; stopping the server", loop.time() - started)
        if stop_server and "twisted.internet.reactor" in sys.modules:
            from twisted.internet import reactor

            twisted_reactor = cast(Any, reactor)  # the module is replaced by the reactor instance
            if twisted_reactor.running:
                twisted_reactor.stop()


worker = Worker()

# Read when /metrics is scraped, so they cost the sessions nothing and never go stale.
metrics.SESSION_CAPACITY.set_function(lambda: settings.VOICE_MAX_SESSIONS_PER_WORKER)
metrics.SESSION_CAPACITY_REMAINING.set_function(worker.capacity_remaining)
metrics.WORKER_DRAINING.set_function(lambda: float(worker.draining))

# The registry release is bounded: with the database hanging, the rest of the release goes on.
RELEASE_TIMEOUT = 2.5


class PendingSlot:
    """One of ``worker.pending``: held from admission until the session is counted or refused.

    Taken with no await after the capacity check; given back on leaving the ``with`` block
    unless :meth:`Membership.join` turned it into the session first.
    """

    def __init__(self) -> None:
        worker.pending += 1
        self._held = True

    def release(self) -> None:
        """Give the slot back (idempotent)."""
        if self._held:
            self._held = False
            worker.pending -= 1

    def __enter__(self) -> PendingSlot:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: types.TracebackType | None,
    ) -> None:
        self.release()


class Membership:
    """A session's place among this worker's live sessions: registry row, count and heartbeat.

    Args:
        session_id: the registry row the session claimed (``registry.session_claim``).
    """

    def __init__(self, session_id: uuid.UUID) -> None:
        self.session_id = session_id
        self._session: Drainable | None = None

    def join(self, session: Drainable, beats: BeatSource, slot: PendingSlot) -> None:
        """Count the session here (its pending slot becomes it) and beat for it from now on."""
        slot.release()
        self._session = session
        worker.add(session)
        heartbeats.join(self.session_id, beats)
        lag_probe.join(self.session_id, session)

    async def leave(self) -> None:
        """Stop beating, delete the registry row (bounded), and stop counting the session.

        A failure or timeout of the row's delete is logged; the worker lets go all the same.
        """
        heartbeats.leave(self.session_id)
        lag_probe.leave(self.session_id)
        try:
            async with asyncio.timeout(RELEASE_TIMEOUT):
                await registry.asession_release(session_id=self.session_id)
        except Exception as exc:
            logger.warning(
                "voice session %s: registry release failed (%s)",
                self.session_id,
                type(exc).__name__,
            )
        finally:
            self.forget()

    def forget(self) -> None:
        """Stop beating and counting (idempotent): the release's last resort when cancelled."""
        heartbeats.leave(self.session_id)
        lag_probe.leave(self.session_id)
        if self._session is not None:
            worker.discard(self._session)
            self._session = None
