"""The Redis channel layer with today's redis-py: idle receives, latency, idle monitors (issue 8).

redis-py 8 reads with a 5 s socket timeout by default, equal to channels-redis's 5 s blocking
receive: every idle receive failed, a worker's backoff climbed, idle monitors died with 1011 and
messages popped at the timeout were lost. These tests run the layer as the settings build it.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
import redis.exceptions
from channels_redis.core import RedisChannelLayer

from tests.scaleout.conftest import ADMIN, MEASURED, Cluster
from tests.scaleout.test_two_workers import browsers as browsers  # the fixture
from tests.scaleout.test_two_workers import change_profile, talk
from tests.support.latency_proxy import LatencyProxy
from tests.support.processes import RedisServer
from voiceproject.layers import redis_channel_layer

pytestmark = [pytest.mark.scaleout, pytest.mark.redis, pytest.mark.timeout(120)]

IDLE_SECONDS = 30.0
CHANNELS = 20
MESSAGES_PER_CHANNEL = 10  # 200 in all
SPREAD_SECONDS = 30.0
LATENCY = 0.020


def shipped_layer(url: str) -> RedisChannelLayer:
    """A layer configured exactly as voiceproject/settings/base.py does (its defaults)."""
    config = redis_channel_layer(url, capacity=200, socket_timeout=15.0, connect_timeout=2.0)
    return RedisChannelLayer(**config["CONFIG"])


@pytest.fixture
async def slow_redis(redis: RedisServer) -> AsyncIterator[LatencyProxy]:
    """The module's Redis behind 20 ms of latency each way."""
    proxy = await LatencyProxy(redis.port, LATENCY).start()
    yield proxy
    await proxy.stop()


async def test_the_old_configuration_fails_every_idle_receive(slow_redis: LatencyProxy) -> None:
    """The control case: the bare URL (redis-py's 5 s default) cannot wait out the block."""
    layer = RedisChannelLayer(hosts=[slow_redis.url])
    channel = await layer.new_channel()
    started = time.monotonic()
    with pytest.raises(redis.exceptions.TimeoutError):
        await layer.receive(channel)
    assert time.monotonic() - started < 9
    await layer.flush()


async def test_200_control_messages_at_random_moments_all_arrive_through_20_ms(
    slow_redis: LatencyProxy,
) -> None:
    """Sparse messages to idle channels, sent at random moments (many at a block's timeout)."""
    # One layer per receiver, like idle workers: a layer's channels share one blocking read.
    sending = shipped_layer(slow_redis.url)
    layers = [shipped_layer(slow_redis.url) for _ in range(CHANNELS)]
    channels = [await layer.new_channel() for layer in layers]
    layer_of = dict(zip(channels, layers, strict=True))
    received: dict[str, list[int]] = {channel: [] for channel in channels}
    failures: list[str] = []

    async def receive_all(channel: str) -> None:
        while len(received[channel]) < MESSAGES_PER_CHANNEL:
            try:
                message = await layer_of[channel].receive(channel)
            except Exception as exc:  # what the voice consumer's subscription would retry
                failures.append(type(exc).__name__)
                continue
            received[channel].append(message["n"])

    rng = random.Random(8)
    plan = sorted(
        (rng.uniform(0, SPREAD_SECONDS), channel, n)
        for channel in channels
        for n in range(MESSAGES_PER_CHANNEL)
    )
    receivers = [asyncio.create_task(receive_all(channel)) for channel in channels]
    started = time.monotonic()
    for at, channel, n in plan:
        await asyncio.sleep(max(0.0, started + at - time.monotonic()))
        await sending.send(channel, {"type": "control", "n": n})
    try:
        async with asyncio.timeout(10):
            await asyncio.gather(*receivers)
    finally:
        for task in receivers:
            task.cancel()
        await asyncio.gather(*receivers, return_exceptions=True)
        for layer in [sending, *layers]:
            await layer.close_pools()
    lost = sum(MESSAGES_PER_CHANNEL - len(got) for got in received.values())
    assert failures == []
    assert lost == 0
    assert all(sorted(got) == list(range(MESSAGES_PER_CHANNEL)) for got in received.values())


async def layer_receive_failures(base_url: str) -> float:
    async with aiohttp.ClientSession() as http, http.get(f"{base_url}/metrics") as resp:
        text = await resp.text()
    match = re.search(r"^voice_channel_layer_receive_failures_total (\S+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


async def test_an_idle_session_and_an_idle_monitor_last_30_s_without_receive_failures(
    two_workers: Cluster, browsers: Callable[..., Any]
) -> None:
    """Nothing happens for 30 s; then a profile change reaches both at once."""
    c = two_workers
    before = [await layer_receive_failures(w.base_url) for w in (c.a, c.b)]
    sock, session_id = await talk(await browsers(c.a, "user9"), c.a)
    admin = await browsers(c.b, ADMIN)
    monitor = await admin.websocket(c.b.ws_url(f"/ws/monitor/{session_id}/"))
    await monitor.expect("monitor.attached", timeout=3)
    await asyncio.sleep(IDLE_SECONDS)
    after = [await layer_receive_failures(w.base_url) for w in (c.a, c.b)]
    assert after == before, f"receive failures while idle: {before} -> {after}"
    profile = sock.texts("session.ready")[0]["profile"]
    elapsed = await change_profile(c, admin, profile["id"], sock)
    MEASURED["profile change after 30 s idle -> profile.updated"] = elapsed
    assert elapsed < 1.0
    # The monitor was not closed (the stock loop died with 1011 after 10 s) and still follows.
    await monitor.expect("profile.updated", timeout=3)
    await sock.close()
    assert (await monitor.expect("monitor.ended", timeout=5))["reason"] == "ended"
