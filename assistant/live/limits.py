"""Rate limits for browser traffic: token buckets (pure) and connection counters (cache)."""

from __future__ import annotations

import logging
import time

from django.core.cache import cache

logger = logging.getLogger(__name__)


class TokenBucket:
    """A token bucket: ``rate`` tokens per second, holding at most ``burst``.

    Args:
        rate: tokens added per second.
        burst: the bucket's size (what may be spent at once).
    """

    def __init__(self, *, rate: float, burst: float) -> None:
        self._rate = rate
        self._burst = burst
        self._tokens = burst
        self._now = time.monotonic
        self._last = self._now()

    def take(self, cost: float = 1.0) -> bool:
        """Spend ``cost`` tokens if the bucket holds them."""
        now = self._now()
        self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
        self._last = now
        if self._tokens >= cost:
            self._tokens -= cost
            return True
        return False


async def connection_allowed(*, key: str, per_minute: int) -> bool:
    """Count a connection attempt against a per-minute budget shared by all workers.

    Args:
        key: who is connecting, e.g. ``user:42`` or ``ip:192.0.2.1``.
        per_minute: attempts allowed in one calendar minute.

    Returns:
        False when the budget for this minute is spent.
    """
    bucket = f"voice:connect:{key}:{int(time.time() // 60)}"
    try:
        added = await cache.aadd(bucket, 1, timeout=90)
    except Exception:
        # The shared counter is unreachable (Redis down): admit rather than fail every new
        # session; per-worker admission control still bounds the load.
        logger.warning("connection rate limit unavailable; admitting")
        return True
    if added:
        return per_minute >= 1
    try:
        count = await cache.aincr(bucket)
    except ValueError:
        # Expired between add and incr: this attempt starts a fresh window.
        await cache.aset(bucket, 1, timeout=90)
        return True
    except Exception:
        logger.warning("connection rate limit unavailable; admitting")
        return True
    return count <= per_minute
