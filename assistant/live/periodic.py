"""One task per worker (per event loop) that runs while the worker has live calls.

The registry heartbeat (``beats.py``), the quota and login checks (assistant/calls/checks.py)
and the event-loop lag probe (``looplag.py``) each keep one: calls join and leave, the task
starts with the first and is cancelled with the last, a crash is logged where ops look, and
:meth:`WorkerTask.close` ends it within a bound (tests, shutdown).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import uuid
from typing import ClassVar, Generic, TypeVar

logger = logging.getLogger(__name__)

Member = TypeVar("Member")


class WorkerTask(abc.ABC, Generic[Member]):
    """The members (live calls) of one worker's periodic task, and the task itself."""

    #: The task's name, in asyncio's task list and in the crash log.
    name: ClassVar[str]
    #: How long :meth:`close` waits for the task to end once cancelled (None: until it does,
    #: a tick in the database thread included).
    close_timeout: ClassVar[float | None] = None

    def __init__(self) -> None:
        self._members: dict[uuid.UUID, tuple[Member, asyncio.AbstractEventLoop]] = {}
        self._task: asyncio.Task[None] | None = None

    def join(self, session_id: uuid.UUID, member: Member) -> None:
        """Count this call from now on (starts the task with the worker's first call)."""
        loop = asyncio.get_running_loop()
        self._members[session_id] = (member, loop)
        task = self._task
        if task is None or task.done() or task.get_loop() is not loop:
            # Members of another loop belong to a finished one (a test's): forget them.
            self._members = {s: (m, lp) for s, (m, lp) in self._members.items() if lp is loop}
            task = self._task = loop.create_task(self._run(), name=self.name)
            task.add_done_callback(self._task_done)
            self._started(task)

    def leave(self, session_id: uuid.UUID) -> None:
        """Stop counting this call; the task ends with the worker's last call."""
        self._members.pop(session_id, None)
        if not self._members and self._task is not None and not self._task.done():
            self._task.cancel()

    def is_member(self, session_id: uuid.UUID) -> bool:
        """True while the call has not left (it may leave while a tick awaits)."""
        return session_id in self._members

    def members(self) -> dict[uuid.UUID, Member]:
        """This loop's members, now (those of a finished loop are forgotten)."""
        loop = asyncio.get_running_loop()
        stale = [s for s, (_, lp) in self._members.items() if lp is not loop]
        for session_id in stale:
            del self._members[session_id]
        return {s: m for s, (m, _) in self._members.items()}

    async def close(self) -> None:
        """End the task and wait for it (tests, shutdown), within :attr:`close_timeout`."""
        task, self._task = self._task, None
        self._members.clear()
        if task is not None and not task.done() and task.get_loop() is asyncio.get_running_loop():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                async with asyncio.timeout(self.close_timeout):
                    await task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            logger.error("%s crashed", self.name, exc_info=task.exception())
        self._stopped(task)

    def _started(self, task: asyncio.Task[None]) -> None:
        """Called when the task starts (the lag probe starts its watchdog here)."""

    def _stopped(self, task: asyncio.Task[None]) -> None:
        """Called when the task ended, however it ended."""

    @abc.abstractmethod
    async def _run(self) -> None:
        """The task's work, until the worker's last call leaves (it is then cancelled)."""
