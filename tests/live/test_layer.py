"""The one channel-layer send: delivered, or counted and reported as False, never raised."""

from __future__ import annotations

from typing import Any

import pytest
from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer

from assistant import metrics, protocol
from assistant.live.layer import layer_send, layer_send_sync


def failures(kind: str) -> float:
    return metrics.LAYER_SEND_FAILURES.labels(kind=kind)._value.get()


class FailingLayer:
    def __init__(self, error: Exception) -> None:
        self.error = error

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        raise self.error

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        raise self.error


async def test_a_message_reaches_its_channel_and_its_group() -> None:
    layer = InMemoryChannelLayer()
    channel = await layer.new_channel()
    await layer.group_add("user.7", channel)
    assert await layer_send(layer, channel, protocol.session_end("terminated"))
    assert await layer_send(layer, "user.7", protocol.session_end("logout"), group=True)
    assert await layer.receive(channel) == {"type": "session.end", "reason": "terminated"}
    assert await layer.receive(channel) == {"type": "session.end", "reason": "logout"}


async def test_no_layer_sends_nothing() -> None:
    assert not await layer_send(None, "c", protocol.session_end("terminated"))


async def test_a_failure_is_counted_under_the_message_type(
    caplog: pytest.LogCaptureFixture,
) -> None:
    before = failures("session.end")
    sent = await layer_send(FailingLayer(ConnectionError()), "c", protocol.session_end("x"))
    assert sent is False
    assert failures("session.end") == before + 1
    assert "channel layer send of session.end to c failed" in caplog.text


async def test_a_best_effort_copy_to_a_full_channel_is_a_drop_not_a_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Monitors' copies: the caller counts the drop; only a broken layer is a failure."""
    full, broken = FailingLayer(ChannelFull()), FailingLayer(ConnectionError())
    copy = protocol.monitor_text("{}")
    before = failures("monitor")
    assert not await layer_send(full, "m", copy, kind="monitor", quiet=True)
    assert failures("monitor") == before
    assert not await layer_send(broken, "m", copy, kind="monitor", quiet=True)
    assert failures("monitor") == before + 1
    assert caplog.text == ""  # a Redis outage would otherwise log every audio frame


def test_sync_callers_use_the_default_layer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        "assistant.live.layer.get_channel_layer", lambda: FailingLayer(ConnectionError())
    )
    before = failures("profile.changed")
    assert not layer_send_sync("profile.1", protocol.profile_changed(1), group=True)
    assert failures("profile.changed") == before + 1
