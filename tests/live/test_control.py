"""The supervised control subscription: receives, survives handler errors, ends cleanly."""

from __future__ import annotations

import asyncio
from typing import Any

from channels.layers import InMemoryChannelLayer

from assistant.live.control import ControlSubscription


async def test_messages_reach_the_handler_and_a_failing_handler_is_not_fatal() -> None:
    layer = InMemoryChannelLayer()
    channel = await layer.new_channel()
    seen: list[str] = []

    async def handler(message: dict[str, Any]) -> None:
        seen.append(message["type"])
        if message["type"] == "boom":
            raise RuntimeError("a bug in one handler")

    subscription = ControlSubscription(layer, channel, handler)
    await subscription.start(["control.test"])
    await layer.send(channel, {"type": "boom"})
    await layer.group_send("control.test", {"type": "after.boom"})
    async with asyncio.timeout(2):
        while seen != ["boom", "after.boom"]:
            await asyncio.sleep(0.01)
    await subscription.aclose()
    assert subscription._task is not None
    assert subscription._task.done()


async def test_closing_from_its_own_handler_ends_the_task() -> None:
    """A session ending on a control message closes its subscription from inside the handler.

    Regression: the loop went back to ``receive`` after that handler returned and waited on the
    layer forever (a leaked task; at a test's end the loop's shutdown hung on it).
    """
    layer = InMemoryChannelLayer()
    channel = await layer.new_channel()
    subscription: ControlSubscription

    async def handler(message: dict[str, Any]) -> None:
        await subscription.aclose()

    subscription = ControlSubscription(layer, channel, handler)
    await subscription.start([])
    await layer.send(channel, {"type": "session.end"})
    assert subscription._task is not None
    async with asyncio.timeout(2):
        await subscription._task
