"""The event-loop lag probe: it measures a held loop, logs stalls (rate-limited), ends cleanly."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

import pytest
from django.test import Client
from prometheus_client import REGISTRY

from assistant import metrics
from assistant.live import looplag
from assistant.live.looplag import LoopLagProbe, lag_probe
from assistant.live.worker import Membership, PendingSlot, Worker, worker


def _hold_the_loop(seconds: float) -> None:
    """A callback that does too much: the loop can run nothing else meanwhile."""
    time.sleep(seconds)


def _lag_sum() -> float:
    return REGISTRY.get_sample_value("voice_event_loop_lag_seconds_sum") or 0.0


def _lag_count() -> float:
    return REGISTRY.get_sample_value("voice_event_loop_lag_seconds_count") or 0.0


async def _wake_ups(n: int, timeout: float = 3.0) -> None:
    """Wait until the probe has woken ``n`` more times."""
    target = _lag_count() + n
    async with asyncio.timeout(timeout):
        while _lag_count() < target:
            await asyncio.sleep(0.02)


async def test_the_probe_measures_a_held_loop_and_logs_where(
    caplog: pytest.LogCaptureFixture,
) -> None:
    probe = LoopLagProbe()
    session = uuid.uuid4()
    probe.join(session, None)
    try:
        await _wake_ups(2)
        before = _lag_sum()
        caplog.set_level(logging.WARNING, logger="assistant.live.looplag")
        with probe.span("test.work", 3):
            _hold_the_loop(0.3)
        await _wake_ups(1)
        # The wake-up due during the hold came about 0.2-0.3 s late.
        assert _lag_sum() - before >= 0.15
        assert REGISTRY.get_sample_value("voice_event_loop_lag_max_seconds") >= 0.15
        warnings = [r.getMessage() for r in caplog.records if "event loop stalled" in r.message]
        assert len(warnings) == 1
        # It names the periodic work that ran meanwhile, and where the watchdog caught the loop.
        assert "test.work (3)" in warnings[0]
        assert "_hold_the_loop" in warnings[0]
    finally:
        probe.leave(session)
        await probe.close()
    assert REGISTRY.get_sample_value("voice_event_loop_lag_max_seconds") == 0.0


def test_stall_warnings_are_rate_limited_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    probe = LoopLagProbe()
    caplog.set_level(logging.WARNING, logger="assistant.live.looplag")
    now = 1000.0
    probe.observe(0.2, now, now - 0.2)
    probe.observe(0.3, now + 1, now + 0.7)  # within WARN_EVERY_SECONDS: counted, not logged
    probe.observe(0.01, now + 2, now + 1.99)  # no stall
    probe.observe(0.08, now + 1 + looplag.WARN_EVERY_SECONDS, now + 10.9)
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert "200 ms late" in messages[0]
    assert "1 more since the last report, max 300 ms" in messages[1]


async def test_the_task_and_its_watchdog_end_with_the_last_session() -> None:
    probe = LoopLagProbe()
    first, second = uuid.uuid4(), uuid.uuid4()
    probe.join(first, None)
    probe.join(second, None)
    task, watchdog = probe._task, probe._watchdog
    assert task is not None
    assert watchdog is not None
    assert watchdog.is_alive()
    probe.leave(first)
    assert not task.done()
    probe.leave(second)
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 1.0)
    watchdog.join(1.0)
    assert not watchdog.is_alive()
    await probe.close()  # nothing left to end: returns at once


@pytest.mark.django_db(transaction=True)
async def test_a_membership_runs_the_worker_probe() -> None:
    """The worker's probe starts with its first session and stops with its last."""
    membership = Membership(uuid.uuid4())

    class Session:
        async def end(self, ending: Any) -> None:
            pass

        def beat(self) -> Any:
            raise AssertionError("no heartbeat tick in this test")

    session = Session()
    with PendingSlot() as slot:
        membership.join(session, session, slot)  # type: ignore[arg-type]
    task = lag_probe._task
    try:
        assert task is not None
        assert not task.done()
    finally:
        membership.forget()
    assert task.cancelling() or task.done()
    await lag_probe.close()


def test_capacity_remaining_counts_live_and_pending_and_is_zero_while_draining(
    settings: Any,
) -> None:
    settings.VOICE_MAX_SESSIONS_PER_WORKER = 5
    w = Worker()
    w.add(object())  # type: ignore[arg-type]
    w.pending = 1
    assert w.capacity_remaining() == 3
    w.draining = True
    assert w.capacity_remaining() == 0


def test_metrics_carry_the_scaling_signal(client: Client, settings: Any) -> None:
    settings.VOICE_MAX_SESSIONS_PER_WORKER = 77
    text = client.get("/metrics").content.decode()
    live = len(worker.sessions) + worker.pending
    assert "voice_session_capacity 77.0" in text
    assert f"voice_session_capacity_remaining {float(max(0, 77 - live))}" in text
    assert "voice_worker_draining 0.0" in text
    assert 'voice_event_loop_lag_seconds_bucket{le="0.05"}' in text
    assert "voice_event_loop_lag_max_seconds" in text
    # prometheus_client's process collector: the CPU an autoscaler may also look at.
    assert "process_cpu_seconds_total" in text
    assert metrics.SESSION_CAPACITY is not None
