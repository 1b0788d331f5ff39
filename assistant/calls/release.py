"""Letting go of a call: its tasks, its upstream, its monitors, its place in the worker.

Usually milliseconds; at worst, with the upstream and Redis both hanging, about 10 s (Daphne's
application close timeout): 1 s for the session's tasks, the upstream close (bounded inside: its
tasks, the close handshake, the credential), the membership and the monitors together (2.5 s),
then the control subscription (2.5 s). Cancelled all the same, the worker still lets go of the
session.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Coroutine
from typing import Any, Protocol

from assistant.calls.supervisor import CallSupervisor
from assistant.codes import MonitorEnding
from assistant.live.control import ControlSubscription
from assistant.live.worker import Membership
from assistant.voicelive.session import VoiceLiveSession

logger = logging.getLogger(__name__)

#: The session's own tasks get this long to end once cancelled.
TASKS_TIMEOUT = 1.0
#: The monitors' and the control subscription's close get this long each.
CLOSE_STEP_TIMEOUT = 2.5


class Releasable(Protocol):
    """What a call holds."""

    session_id: uuid.UUID | None
    voice: VoiceLiveSession | None
    supervisor: CallSupervisor | None
    control: ControlSubscription | None
    start_task: asyncio.Task[None] | None
    timer_task: asyncio.Task[None] | None


async def release_call(call: Releasable, membership: Membership, code: int) -> None:
    """Stop the tasks, close the upstream, leave the worker's live set (bounded)."""
    try:
        await _stop_tasks(call)
        if call.voice is not None:
            # No outer timeout: it could cut between cancelling tasks and closing.
            await _step(call, "upstream close", call.voice.aclose(), None)
        steps = [_step(call, "membership release", membership.leave(), None)]
        fanout = call.supervisor.fanout if call.supervisor else None
        if fanout is not None:
            closing = fanout.aclose(reason=MonitorEnding.ENDED)
            steps.append(_step(call, "monitor close", closing, CLOSE_STEP_TIMEOUT))
        await asyncio.gather(*steps)
        if call.control is not None:
            # After the rest: a monitor's last words may still go out over the layer.
            closing = call.control.aclose()
            await _step(call, "control close", closing, CLOSE_STEP_TIMEOUT)
    finally:
        membership.forget()
        logger.info("voice session %s ended (close code %s)", call.session_id, code)


async def _stop_tasks(call: Releasable) -> None:
    """Cancel the session's own tasks and collect what they ended with."""
    current = asyncio.current_task()
    supervisor_tasks = call.supervisor.tasks() if call.supervisor else []
    owned = (call.start_task, call.timer_task, *supervisor_tasks)
    tasks = [t for t in owned if t is not None and t is not current]
    for task in tasks:
        task.cancel()
    pending = [t for t in tasks if not t.done()]
    if pending:
        await asyncio.wait(pending, timeout=TASKS_TIMEOUT)
    for task in tasks:
        if task.done() and not task.cancelled() and task.exception() is not None:
            # Each of them catches what it can raise, so this is a bug: say it.
            logger.error(
                "voice session %s: a task failed", call.session_id, exc_info=task.exception()
            )


async def _step(
    call: Releasable, what: str, step: Coroutine[Any, Any, None], limit: float | None
) -> None:
    """One release step, given ``limit`` seconds; its failure does not stop the others."""
    try:
        async with asyncio.timeout(limit):
            await step
    except Exception as exc:
        logger.warning(
            "voice session %s: %s failed (%s)", call.session_id, what, type(exc).__name__
        )
