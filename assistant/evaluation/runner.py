"""Executing one claimed run: replay turn by turn, store each turn, score the checks, finish.

The runner holds the run's lease while it works (a heartbeat renews it every third of its
length). Between turns it reads the run's status: an admin's Cancel stops it there. A runner
that dies leaves its stored turns; whoever claims the run after the lease expired resumes after
the last stored turn, with the stored answers put back as the conversation's context. Every
failure ends the run as failed with a stable code (``RunError``); nothing ends silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import sync_to_async

from assistant import services
from assistant.evaluation import runs
from assistant.evaluation.checks import CheckSpec, score
from assistant.evaluation.models import EvaluationRun, RunError, RunStatus, RunTurn
from assistant.evaluation.replay import (
    ContextTurn,
    ReplayedAnswer,
    ReplayError,
    replay_side_by_side,
)
from assistant.evaluation.replay_tools import replay_tool_answers
from assistant.evaluation.report import answer_json, model_price
from assistant.live.admission import upstream_settings
from assistant.voicelive.config import SessionConfig, UpstreamSettings
from assistant.voicelive.upstream import VoiceLiveUnavailable

logger = logging.getLogger(__name__)


CANCELLED = "cancelled"
LEASE_LOST = "lease_lost"
STOPPING = "stopping"


class _Stop(Exception):
    """Stop replaying: cancelled, the lease lost, or the runner asked to stop."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class RunContext:
    """What one execution of a run needs and has learnt."""

    run: EvaluationRun
    owner: str
    lease_seconds: float
    upstream: UpstreamSettings
    should_stop: Callable[[], bool] = lambda: False
    lease_lost: bool = False
    cancel_requested: bool = False
    turns: list[RunTurn] = field(default_factory=list)


def _configs(run: EvaluationRun) -> tuple[SessionConfig, SessionConfig]:
    baseline = services.profile_config_of(profile_id=run.profile_id, version=run.baseline_version)
    candidate = services.profile_config_of(
        profile_id=run.profile_id,
        version=run.candidate_version,
        draft_snapshot=run.candidate_snapshot,
    )
    return baseline, candidate


def _checks(run: EvaluationRun) -> list[CheckSpec]:
    return [] if run.test_set is None else runs.test_set_checks(run.test_set)


async def _heartbeat(context: RunContext) -> None:
    """Renew the lease; note a Cancel or a lost lease for the replay to act on."""
    while True:
        await asyncio.sleep(context.lease_seconds / 3)
        status = await sync_to_async(runs.lease_renew)(
            context.run.pk, context.owner, context.lease_seconds
        )
        if status is None:
            context.lease_lost = True
            return
        if status == RunStatus.CANCELLING:
            context.cancel_requested = True


async def _check_continue(context: RunContext) -> None:
    """Between turns: raise :class:`_Stop` when the run must not go on."""
    reason = ""
    status = await sync_to_async(runs.run_status)(context.run.pk)
    if context.lease_lost:
        reason = LEASE_LOST
    elif context.cancel_requested or status == RunStatus.CANCELLING:
        reason = CANCELLED
    elif status != RunStatus.RUNNING:
        reason = LEASE_LOST
    elif context.should_stop():
        reason = STOPPING
    if reason:
        raise _Stop(reason)


async def run_execute(
    run: EvaluationRun,
    *,
    owner: str,
    lease_seconds: float,
    should_stop: Callable[[], bool] = lambda: False,
    upstream: UpstreamSettings | None = None,
) -> str:
    """Execute a run this runner has claimed; its final status (or ``released``/``lost``)."""
    context = RunContext(
        run=run,
        owner=owner,
        lease_seconds=lease_seconds,
        upstream=upstream or await sync_to_async(upstream_settings)(),
        should_stop=should_stop,
    )
    beat = asyncio.create_task(_heartbeat(context), name=f"evaluation-lease-{run.pk}")
    try:
        return await _execute(context)
    finally:
        beat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beat


async def _finish(context: RunContext, status: RunStatus, **fields: Any) -> str:
    await sync_to_async(runs.run_finish)(context.run.pk, context.owner, status, **fields)
    return str(status)


async def _execute(context: RunContext) -> str:
    run = context.run
    try:
        if run.status == RunStatus.CANCELLING:
            return await _finish(context, RunStatus.CANCELLED)
        try:
            baseline, candidate = await sync_to_async(_configs)(run)
        except LookupError as exc:
            return await _finish(
                context, RunStatus.FAILED, error_code=RunError.VERSION_MISSING, detail=str(exc)
            )
        context.turns = await sync_to_async(runs.run_plan)(run)
        if not context.turns:
            return await _finish(context, RunStatus.FAILED, error_code=RunError.NOTHING_TO_REPLAY)
        prices = await sync_to_async(
            lambda: (model_price(baseline.model), model_price(candidate.model))
        )()
        await _replay(context, baseline, candidate, prices)
        turns = await sync_to_async(lambda: list(run.turns.order_by("position")))()
        specs = await sync_to_async(_checks)(run)
        await _check_continue(context)
        results = await score(
            specs,
            [turn.user_text for turn in turns],
            {
                "baseline": [turn.baseline or {} for turn in turns],
                "candidate": [turn.candidate or {} for turn in turns],
            },
            judge=candidate,
            upstream=context.upstream,
        )
        return await _finish(context, RunStatus.DONE, check_results=results)
    except _Stop as stop:
        if stop.reason == CANCELLED:
            return await _finish(context, RunStatus.CANCELLED)
        if stop.reason == STOPPING:
            await sync_to_async(runs.lease_release)(run.pk, context.owner)
            return "released"
        return "lost"
    except ReplayError as exc:
        return await _finish(
            context, RunStatus.FAILED, error_code=RunError.ENGINE_ERROR, detail=str(exc)
        )
    except VoiceLiveUnavailable as exc:
        detail = str(exc) or type(exc).__name__
        return await _finish(
            context, RunStatus.FAILED, error_code=RunError.ENGINE_UNAVAILABLE, detail=detail
        )
    except TimeoutError:
        return await _finish(context, RunStatus.FAILED, error_code=RunError.TURN_TIMEOUT)
    except Exception as exc:
        logger.exception("evaluation run %s failed", run.pk)
        return await _finish(
            context,
            RunStatus.FAILED,
            error_code=RunError.INTERNAL_ERROR,
            detail=f"{type(exc).__name__}: {exc}",
        )


async def _replay(
    context: RunContext,
    baseline: SessionConfig,
    candidate: SessionConfig,
    prices: tuple[Any, Any],
) -> None:
    """Each conversation of the plan, resuming after its last stored turn."""
    tools = await sync_to_async(replay_tool_answers)(baseline, candidate)
    groups: dict[int, list[RunTurn]] = {}
    for turn in context.turns:
        groups.setdefault(turn.group, []).append(turn)
    for rows in groups.values():
        done = [row for row in rows if row.is_done]
        if len(done) == len(rows):
            continue
        await _check_continue(context)

        async def stored(index: int, before: ReplayedAnswer, after: ReplayedAnswer) -> None:
            row = rows[index]  # noqa: B023 - awaited within this iteration only
            held = await sync_to_async(runs.turn_store)(
                context.run.pk,
                context.owner,
                row.position,
                answer_json(before, prices[0]),
                answer_json(after, prices[1]),
            )
            if not held:
                raise _Stop(LEASE_LOST)
            await _check_continue(context)

        await replay_side_by_side(
            baseline=baseline,
            candidate=candidate,
            upstream=context.upstream,
            user_turns=await sync_to_async(runs.run_user_turns)(rows),
            done=[_context(row) for row in done],
            on_turn=stored,
            tools=tools,
        )


def _context(row: RunTurn) -> tuple[ContextTurn, ContextTurn]:
    """A stored turn put back as context: what each side heard of the user, and its answer."""
    sides = []
    for answer in (row.baseline or {}, row.candidate or {}):
        sides.append(ContextTurn(answer.get("heard") or row.user_text, answer["text"]))
    return sides[0], sides[1]
