"""Small helpers over asyncio futures for the turn engine."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")


def result_or_none(future: asyncio.Future[T] | None) -> T | None:
    """A finished future's result (``None`` if it failed, or for no future)."""
    if future is None:
        return None
    if future.cancelled() or future.exception() is not None:
        return None
    return future.result()


def log_failure(future: asyncio.Future[float]) -> None:
    """Done callback: log an end-of-turn check that failed (also when nobody reads it)."""
    if not future.cancelled() and (exc := future.exception()) is not None:
        logger.error("end-of-turn model failed: %r", exc)


def mapped(future: asyncio.Future[str], change: Callable[[str], str]) -> asyncio.Future[str]:
    """A future of ``change(result)``; failures and cancellation pass through."""
    out: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def done(fut: asyncio.Future[str]) -> None:
        if out.done():
            return
        if fut.cancelled():
            out.cancel()
        elif (exc := fut.exception()) is not None:
            out.set_exception(exc)
        else:
            out.set_result(change(fut.result()))

    future.add_done_callback(done)
    return out
