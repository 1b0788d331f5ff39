"""The Redis channel layer's configuration, in one place for the settings and their tests."""

from __future__ import annotations

from typing import Any

#: channels-redis blocks this long in ``BZPOPMIN`` on every receive (its ``brpop_timeout``).
CHANNELS_REDIS_BLOCK_SECONDS = 5.0


def redis_channel_layer(
    url: str, *, capacity: int, socket_timeout: float, connect_timeout: float
) -> dict[str, Any]:
    """``CHANNEL_LAYERS["default"]`` for Redis at ``url``.

    redis-py 8 reads with a 5 s socket timeout by default, the same as channels-redis's
    blocking receive: every idle receive then timed out, and a message Redis popped at that
    moment was written to a socket the client had already given up on (lost). Reads here
    outlive the block.

    Raises:
        ValueError: ``socket_timeout`` does not outlive the blocking receive.
    """
    if socket_timeout <= CHANNELS_REDIS_BLOCK_SECONDS:
        msg = f"REDIS_SOCKET_TIMEOUT must be above {CHANNELS_REDIS_BLOCK_SECONDS:g} s"
        raise ValueError(msg)
    return {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": [
                {
                    "address": url,
                    "socket_timeout": socket_timeout,
                    "socket_connect_timeout": connect_timeout,
                    "socket_keepalive": True,
                }
            ],
            # Control traffic only: audio never crosses the layer.
            "capacity": capacity,
            "expiry": 30,
            "group_expiry": 86400,
        },
    }
