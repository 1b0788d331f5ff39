"""A supervised channel-layer subscription for one consumer's control messages.

Channels' built-in consumer loop ends the consumer when the layer's ``receive`` raises, so a
Redis blip would drop every live voice session on the worker. Here the layer is only a control
bus: receive errors are counted and retried with backoff, group memberships are re-added once
the layer answers again, and the talking user's audio never depends on it. The consumers'
socket loop that leaves the layer to this subscription is ``assistant/consumers/socket.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from assistant import metrics

logger = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], Awaitable[None]]

BACKOFF_FIRST = 0.1
BACKOFF_MAX = 2.0
GROUP_OP_TIMEOUT = 2.0


class ControlSubscription:
    """Receives a consumer's channel-layer messages in a task of its own.

    Args:
        layer: the channel layer (None disables the subscription).
        channel_name: the consumer's channel.
        handler: called with each message; its exceptions are logged, never fatal.
    """

    def __init__(self, layer: Any, channel_name: str, handler: Handler) -> None:
        self._layer = layer
        self._channel = channel_name
        self._handler = handler
        self._groups: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    async def start(self, groups: list[str]) -> None:
        """Join the groups (best effort) and start receiving."""
        if self._layer is None:
            return
        for group in groups:
            await self.join(group)
        self._task = asyncio.create_task(self._run())

    async def join(self, group: str) -> None:
        """Join a group now if the layer answers; it is rejoined after an outage anyway."""
        self._groups.add(group)
        if self._layer is not None:
            await self._group_op(self._layer.group_add, group)

    async def _group_op(self, op: Callable[[str, str], Awaitable[None]], group: str) -> bool:
        try:
            async with asyncio.timeout(GROUP_OP_TIMEOUT):
                await op(group, self._channel)
        except Exception:
            metrics.LAYER_SEND_FAILURES.labels(kind="group").inc()
            logger.warning("channel layer group change failed for %s", group)
            return False
        return True

    async def _run(self) -> None:
        backoff = BACKOFF_FIRST
        rejoin = False
        while True:
            if rejoin:
                results = [await self._group_op(self._layer.group_add, g) for g in self._groups]
                if not all(results):
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, BACKOFF_MAX)
                    continue
                rejoin = False
                logger.info("channel layer is back; control subscription resumed")
            task = asyncio.current_task()
            if self._closed or (task is not None and task.cancelling()):
                # Closed by its own handler (a session ending on a control message), or a
                # cancellation was swallowed on the way (asyncio.wait_for in 3.11 can): never
                # wait on the layer again.
                return
            try:
                message = await self._layer.receive(self._channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                metrics.LAYER_RECEIVE_FAILURES.inc()
                logger.warning("channel layer receive failed; retrying in %.1fs", backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
                rejoin = True
                continue
            backoff = BACKOFF_FIRST
            try:
                await self._handler(message)
            except Exception:
                logger.exception("control message handler failed for %s", message.get("type"))

    async def aclose(self) -> None:
        """Stop receiving and leave every group (bounded in time)."""
        self._closed = True
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                async with asyncio.timeout(GROUP_OP_TIMEOUT):
                    await self._task
        if self._layer is not None:
            for group in list(self._groups):
                await self._group_op(self._layer.group_discard, group)
        self._groups.clear()
