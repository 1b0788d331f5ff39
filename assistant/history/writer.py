"""Writes every live session's history of one worker, batched, off the event loop.

One task per worker (per event loop), like the heartbeats: every ``HISTORY_FLUSH_SECONDS`` it
drains each member's :class:`~assistant.history.recorder.ConversationRecorder` and writes all
of it in one transaction in a thread, each conversation's batch in its own savepoint. The audio
path never waits for it. A failed batch is logged, counted and retried on the next tick (a
bounded number of times) without holding back the others; a worker that dies loses at most the
last tick's records, and an ended conversation is written before its recorder is let go.

What each session used since its last response (its *accrual*: audio both ways, typed text)
goes to its accrued ledger row on every tick: one ``executemany`` UPDATE for all the worker's
sessions, so a live session costs a row of that statement, not queries of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import uuid
from collections.abc import Iterable
from typing import Any, NamedTuple, cast

from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import DatabaseError, connections, transaction
from django.db.models import Field

from assistant import metrics
from assistant.history.ledger import TokenUsage, estimate_cost
from assistant.history.models import (
    Conversation,
    ConversationEvent,
    ModelPrice,
    Turn,
    UsageRecord,
)
from assistant.history.recorder import (
    TIMING_FIELDS,
    Accrual,
    Batch,
    ConversationRecorder,
    TurnTimes,
)
from assistant.models import AssistantProfile

logger = logging.getLogger(__name__)

#: Ticks a failed batch is retried before it is dropped (and counted).
MAX_RETRIES = 5


def _when(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)


def write_batches(batches: Iterable[Batch]) -> list[Batch]:
    """Write ``batches`` in one transaction (synchronous ORM: runs in a thread).

    Each batch has its own savepoint: one that fails is rolled back alone, logged, and
    returned to be tried again, with any later batch of the same conversation; the others are
    committed.
    """
    batches = [batch for batch in batches if not batch.empty]
    if not batches:
        return []
    models = {entry.model for batch in batches for entry in batch.usage}
    prices = (
        {price.model: price for price in ModelPrice.objects.filter(model__in=models)}
        if models
        else {}
    )
    failed: list[Batch] = []
    failed_ids: set[uuid.UUID] = set()
    # Each conversation's latest accrual among its batches written: it matches the response
    # rows written up to it (a later batch held back took nothing from it yet).
    accruals: dict[uuid.UUID, tuple[Accrual, bool]] = {}
    with transaction.atomic():
        for batch in batches:
            conversation_id = batch.conversation_id
            # A later batch builds on a failed one of its conversation: retried with it, in order.
            if conversation_id in failed_ids or (
                batch.has_events and not _write_in_savepoint(batch, prices)
            ):
                failed.append(batch)
                failed_ids.add(conversation_id)
            elif batch.accrual is not None:
                accruals[conversation_id] = (batch.accrual, batch.ended_at is not None)
        _write_accruals(accruals)
    return failed


# The columns an accrual rewrites, in the order of its UPDATE's parameters.
_ACCRUAL_FIELDS = ("audio_in_seconds", "audio_out_seconds", "typed_seconds", "created_at")


def _write_accruals(accruals: dict[uuid.UUID, tuple[Accrual, bool]]) -> None:
    """Rewrite the sessions' accrued rows: one ``executemany`` UPDATE for all of them.

    Raw SQL, as the registry's heartbeat: one parameterised statement run per row in C, where
    the ORM would build a query per row in Python. A session that ended with nothing left
    over loses its accrued row (its responses took everything).
    """
    if not accruals:
        return
    conn = connections[UsageRecord.objects.db]
    meta = UsageRecord._meta
    fields = [
        cast("Field[Any, Any]", meta.get_field(name))
        for name in (*_ACCRUAL_FIELDS, "session_id", "kind")
    ]
    quote = conn.ops.quote_name
    assignments = ", ".join(f"{quote(str(f.column))} = %s" for f in fields[:-2])
    session, kind = (quote(str(f.column)) for f in fields[-2:])
    # Identifiers from the model's own metadata; every value is a query parameter.
    sql = (
        f"UPDATE {quote(meta.db_table)} SET {assignments} "  # noqa: S608
        f"WHERE {session} = %s AND {kind} = %s"
    )
    rows = [
        (
            accrual.audio_in_seconds,
            accrual.audio_out_seconds,
            accrual.typed_seconds,
            fields[3].get_db_prep_value(_when(accrual.at), conn),
            fields[4].get_db_prep_value(conversation_id, conn),
            UsageRecord.Kind.ACCRUED.value,
        )
        for conversation_id, (accrual, _) in accruals.items()
    ]
    with conn.cursor() as cursor:
        cursor.executemany(sql, rows)
    spent = [cid for cid, (accrual, ended) in accruals.items() if ended and accrual.zero]
    if spent:
        UsageRecord.objects.filter(session_id__in=spent, kind=UsageRecord.Kind.ACCRUED).delete()


def _write_in_savepoint(batch: Batch, prices: dict[str, ModelPrice]) -> bool:
    """Write one batch, rolled back alone (and logged) if it fails; False then."""
    try:
        with transaction.atomic():
            _write_batch(batch, prices)
    except DatabaseError:
        logger.warning("history: batch of %s failed", batch.conversation_id, exc_info=True)
        return False
    return True


def _create_conversation(batch: Batch) -> Conversation | None:
    """The conversation's row from its start; ``None`` when its user is gone.

    What the start points to may have been deleted while the session was live: a profile or
    the conversation it continues is then forgotten (as their deletion would have done), and a
    deleted user's conversation is not kept at all. Checked here because the foreign keys are
    only checked at commit, where one batch would fail them all.
    """
    start = batch.start
    assert start is not None
    if not get_user_model().objects.filter(pk=start.user_id).exists():
        return None
    profile_id = start.profile_id
    if profile_id is not None and not AssistantProfile.objects.filter(pk=profile_id).exists():
        profile_id = None
    resumed = start.resumed_from
    if resumed is not None and not Conversation.objects.filter(pk=resumed).exists():
        resumed = None
    conversation = Conversation.objects.create(
        pk=batch.conversation_id,
        user_id=start.user_id,
        profile_id=profile_id,
        profile_name=start.profile_name,
        model=start.model,
        started_at=_when(start.started_at),
        transcript_stored=start.store_text,
        resumed_from_id=resumed,
        profile_version=start.profile_version,
        is_draft=start.is_draft,
        worker=start.worker,
    )
    # The session's accrued row, rewritten on every tick from now on (_write_accruals).
    UsageRecord.objects.create(
        kind=UsageRecord.Kind.ACCRUED,
        user_id=start.user_id,
        conversation=conversation,
        session_id=conversation.pk,
        profile_name=start.profile_name,
        profile_version=start.profile_version,
        is_draft=start.is_draft,
        model=start.model[:100],
        created_at=conversation.started_at,
    )
    return conversation


class _Owner(NamedTuple):
    """Whose usage rows these are."""

    user_id: int
    conversation: Conversation | None
    profile_name: str
    profile_version: int | None = None
    is_draft: bool = False


def _orphan_owner(conversation_id: uuid.UUID) -> _Owner | None:
    """The owner of a conversation deleted while live, from its accrued row (None: gone)."""
    row = (
        UsageRecord.objects.filter(session_id=conversation_id, kind=UsageRecord.Kind.ACCRUED)
        .values_list("user_id", "profile_name", "profile_version", "is_draft")
        .first()
    )
    return _Owner(row[0], None, row[1], row[2], row[3]) if row is not None else None


def _write_batch(batch: Batch, prices: dict[str, ModelPrice]) -> None:
    conversation = Conversation.objects.filter(pk=batch.conversation_id).first()
    if conversation is None:
        if batch.start is None:
            # The user deleted it while it was live: no more turns, but the ledger is kept.
            owner = _orphan_owner(batch.conversation_id)
            if owner is not None:
                _write_usage(batch, owner, prices)
            return
        conversation = _create_conversation(batch)
        if conversation is None:
            return  # the user's account was deleted while they talked
    changed: list[str] = []
    if batch.upstream_session_ids:
        conversation.upstream_session_ids = [
            *conversation.upstream_session_ids,
            *batch.upstream_session_ids,
        ]
        changed.append("upstream_session_ids")
    if batch.ended_at is not None:
        conversation.ended_at = _when(batch.ended_at)
        conversation.end_reason = batch.end_reason[:64]
        changed += ["ended_at", "end_reason"]
    if changed:
        conversation.save(update_fields=changed)
    Turn.objects.bulk_create(
        [
            Turn(
                conversation=conversation,
                seq=turn.seq,
                role=turn.role,
                text=turn.text,
                item_id=turn.item_id[:128],
                response_id=turn.response_id[:128],
                started_at=_when(turn.started_at),
                ended_at=_when(turn.ended_at) if turn.ended_at is not None else None,
                interrupted=turn.interrupted,
                heard_ms=turn.heard_ms,
                **_times_fields(turn.times),
            )
            for turn in batch.turns
        ],
    )
    for update in batch.updates:
        Turn.objects.filter(conversation=conversation, seq=update.seq).update(
            interrupted=update.interrupted, heard_ms=update.heard_ms
        )
    for timed in batch.timings:
        Turn.objects.filter(conversation=conversation, seq=timed.seq).update(
            **_times_fields(timed.times)
        )
    ConversationEvent.objects.bulk_create(
        ConversationEvent(
            conversation=conversation,
            kind=event.kind,
            at=_when(event.at),
            detail=event.detail,
            duration_ms=event.duration_ms,
        )
        for event in batch.events
    )
    owner = _Owner(
        conversation.user_id,
        conversation,
        conversation.profile_name,
        conversation.profile_version,
        conversation.is_draft,
    )
    _write_usage(batch, owner, prices)


def _times_fields(times: TurnTimes | None) -> dict[str, int | None]:
    """A turn's timing columns (all None when it was not timed)."""
    if times is None:
        return dict.fromkeys(TIMING_FIELDS)
    return {name: getattr(times, name) for name in TIMING_FIELDS}


def _write_usage(batch: Batch, owner: _Owner, prices: dict[str, ModelPrice]) -> None:
    """One ledger row per response of ``batch``."""
    records = []
    for entry in batch.usage:
        tokens = TokenUsage.from_event(entry.usage)
        records.append(
            UsageRecord(
                user_id=owner.user_id,
                conversation=owner.conversation,
                session_id=batch.conversation_id,
                profile_name=owner.profile_name,
                profile_version=owner.profile_version,
                is_draft=owner.is_draft,
                model=entry.model[:100],
                response_id=entry.response_id[:128],
                created_at=_when(entry.at),
                audio_in_seconds=entry.audio_in_seconds,
                audio_out_seconds=entry.audio_out_seconds,
                typed_seconds=entry.typed_seconds,
                input_tokens=tokens.input_tokens,
                input_text_tokens=tokens.input_text_tokens,
                input_audio_tokens=tokens.input_audio_tokens,
                input_cached_tokens=tokens.input_cached_tokens,
                output_tokens=tokens.output_tokens,
                output_text_tokens=tokens.output_text_tokens,
                output_audio_tokens=tokens.output_audio_tokens,
                estimated_cost=estimate_cost(tokens, prices.get(entry.model)),
            )
        )
    UsageRecord.objects.bulk_create(records)


awrite_batches = database_sync_to_async(write_batches)


class HistoryWriter:
    """One flush task per worker (per event loop) for all its sessions' recorders."""

    def __init__(self) -> None:
        self._members: dict[uuid.UUID, tuple[ConversationRecorder, asyncio.AbstractEventLoop]] = {}
        self._failed: list[tuple[Batch, int]] = []  # (batch, tries so far), oldest first
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None  # set: flush now (the running task's loop)

    def join(self, recorder: ConversationRecorder) -> None:
        """Flush this recorder from the next tick on (starts the task if needed)."""
        loop = asyncio.get_running_loop()
        self._members[recorder.conversation_id] = (recorder, loop)
        task = self._task
        if task is None or task.done() or task.get_loop() is not loop:
            self._task = loop.create_task(self._run(loop))
            self._task.add_done_callback(_log_crash)

    def is_own_task(self, task: asyncio.Task[object]) -> bool:
        """True for the writer's flush task (a worker's task, not a session's)."""
        return task is self._task

    def forget_all(self) -> None:
        """Drop every recorder and failed batch unwritten (tests: the rows they need are gone)."""
        self._members.clear()
        self._failed.clear()

    def flush_soon(self) -> None:
        """Flush now rather than at the next tick (a session ended: its usage counts at once)."""
        task = self._task
        if self._wake is not None and task is not None and not task.done():
            # Called from the loop the task runs on (a session's end, on this worker's loop).
            task.get_loop().call_soon_threadsafe(self._wake.set)

    async def _run(self, loop: asyncio.AbstractEventLoop) -> None:
        self._wake = wake = asyncio.Event()
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(settings.HISTORY_FLUSH_SECONDS):
                    await wake.wait()
            wake.clear()
            for sid in [sid for sid, (_, lp) in self._members.items() if lp is not loop]:
                del self._members[sid]  # a finished loop's (a test's)
            await self.flush()
            if not self._members and not self._failed:
                return

    async def close(self) -> None:
        """The worker stops: end the task and write what is left (callers bound the time)."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.flush()

    async def flush(self) -> None:
        """Drain every recorder and write it all now; ended recorders are let go."""
        pending, self._failed = self._failed, []
        for sid, (recorder, _) in list(self._members.items()):
            pending.append((recorder.drain(), 0))
            if recorder.ended:
                del self._members[sid]
        pending = [(batch, tries) for batch, tries in pending if not batch.empty]
        if not pending:
            return
        dropped = sum(batch.dropped_turns for batch, _ in pending)
        if dropped:
            metrics.HISTORY_DROPPED.labels(kind="turn").inc(dropped)
            for batch, _ in pending:
                batch.dropped_turns = 0
        try:
            failed = await awrite_batches([batch for batch, _ in pending])
        except Exception:
            # The transaction failed as a whole (the database is gone, or a commit-time check):
            # nothing of it was written, so all of it is tried again.
            logger.warning("history: writing %d batches failed", len(pending), exc_info=True)
            failed = [batch for batch, _ in pending]
        if not failed:
            return
        metrics.HISTORY_WRITE_FAILURES.inc()
        again = {id(batch) for batch in failed}
        for batch, tries in pending:
            if id(batch) in again:
                if tries + 1 >= MAX_RETRIES:
                    metrics.HISTORY_DROPPED.labels(kind="batch").inc()
                    logger.error("history: gave up on a batch of %s", batch.conversation_id)
                else:
                    self._failed.append((batch, tries + 1))


def _log_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("history writer crashed", exc_info=task.exception())


history = HistoryWriter()
