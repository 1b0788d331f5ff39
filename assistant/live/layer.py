"""The one way to put a control message on the channel layer: send, and count what is lost.

The layer is a control bus (channels_redis: 100 messages a channel, 60 s expiry), so a send can
fail or find the channel full. No caller may fail for that: each message has a slow path (the
registry row, the next heartbeat) or is a best-effort copy (monitors). So a failure is counted
in ``voice_channel_layer_send_failures_total`` and returned as False, never raised.
"""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.exceptions import ChannelFull
from channels.layers import get_channel_layer

from assistant import metrics
from assistant.protocol import LayerMessage

logger = logging.getLogger(__name__)


async def layer_send(
    layer: Any,
    target: str,
    message: LayerMessage,
    *,
    group: bool = False,
    kind: str | None = None,
    quiet: bool = False,
) -> bool:
    """Send ``message`` to a channel (or to a group with ``group=True``).

    Args:
        layer: the channel layer; None (no layer configured) sends nothing.
        target: the channel or group name.
        message: built by a constructor of ``assistant/protocol/``.
        group: ``target`` is a group.
        kind: the failure counter's label; the message type by default.
        quiet: a best-effort copy (monitors): a full channel is a drop the caller counts, not a
            failure, and nothing is logged (a Redis outage would log every audio frame).

    Returns:
        True when the layer took the message.
    """
    if layer is None:
        return False
    try:
        if group:
            await layer.group_send(target, message)
        else:
            await layer.send(target, message)
    except ChannelFull:
        if not quiet:
            _failed(kind or message["type"], target)
        return False
    except Exception:
        if not quiet:
            _failed(kind or message["type"], target)
        else:
            metrics.LAYER_SEND_FAILURES.labels(kind=kind or message["type"]).inc()
        return False
    return True


def layer_send_sync(target: str, message: LayerMessage, *, group: bool = False) -> bool:
    """:func:`layer_send` on the default layer, from sync code (admin actions, signals)."""
    return bool(async_to_sync(layer_send)(get_channel_layer(), target, message, group=group))


def _failed(kind: str, target: str) -> None:
    metrics.LAYER_SEND_FAILURES.labels(kind=kind).inc()
    logger.warning("channel layer send of %s to %s failed", kind, target)
