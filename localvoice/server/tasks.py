"""Background tasks a session owns: kept referenced, failures logged, all cancelled at the end."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

logger = logging.getLogger(__name__)


class TaskSet:
    """Holds a session's tasks so none is collected early, none fails silently, and all stop."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def track(self, task: asyncio.Task[Any]) -> None:
        """Hold an existing task until it finishes."""
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def spawn(self, coro: Awaitable[Any]) -> None:
        """Run ``coro`` as a held task."""
        self.track(asyncio.ensure_future(coro))

    def cancel_all(self) -> None:
        """Cancel every task still running."""
        for task in list(self._tasks):
            task.cancel()

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("session task failed", exc_info=task.exception())
