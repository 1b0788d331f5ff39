"""The history writer: batched, off the loop, retried on failure, nothing lost at the end."""

from __future__ import annotations

import asyncio
import time
import uuid
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import DatabaseError, connection
from django.test.utils import CaptureQueriesContext

from assistant import metrics
from assistant.history import writer as writer_module
from assistant.history.models import Conversation, ModelPrice, Turn, UsageRecord
from assistant.history.recorder import (
    AUDIO_BYTES_PER_SECOND,
    ConversationRecorder,
    ConversationStart,
)
from assistant.history.writer import MAX_RETRIES, HistoryWriter
from assistant.models import AssistantProfile

pytestmark = pytest.mark.django_db(transaction=True)


def new_recorder(user: User, **start: Any) -> ConversationRecorder:
    fields = {
        "user_id": user.pk,
        "profile_id": None,
        "profile_name": "Friendly",
        "model": "gpt-realtime",
        "started_at": time.time(),
    } | start
    return ConversationRecorder(uuid.uuid4(), ConversationStart(**fields))


def talk(rec: ConversationRecorder, question: str, answer: str, n: int) -> None:
    rec.outgoing("speech.stopped", {"item_id": f"u{n}"})
    rec.outgoing("transcript.user.done", {"item_id": f"u{n}", "transcript": question})
    rec.audio_in(AUDIO_BYTES_PER_SECOND)
    rec.outgoing("audio.start", {"item_id": f"a{n}", "response_id": f"r{n}"})
    rec.audio_out(AUDIO_BYTES_PER_SECOND)
    rec.outgoing(
        "transcript.assistant.done",
        {"item_id": f"a{n}", "response_id": f"r{n}", "transcript": answer},
    )
    usage = {
        "input_tokens": 1000,
        "output_tokens": 500,
        "input_token_details": {"text_tokens": 1000},
        "output_token_details": {"audio_tokens": 500},
    }
    rec.response_usage(f"r{n}", usage)


@pytest.fixture
def user() -> User:
    return User.objects.create_user("lee")


async def test_a_conversation_is_written_over_ticks_and_ended(user: User, settings: Any) -> None:
    settings.HISTORY_FLUSH_SECONDS = 0.05
    await ModelPrice.objects.acreate(
        model="gpt-realtime", text_input=Decimal(4), audio_output=Decimal(64)
    )
    writer = HistoryWriter()
    rec = new_recorder(user)
    writer.join(rec)
    rec.upstream_session("sess_a")
    talk(rec, "What is the capital of France?", "Paris.", 1)
    await asyncio.sleep(0.3)
    conversation = await Conversation.objects.aget(pk=rec.conversation_id)
    assert conversation.ended_at is None
    assert await Turn.objects.filter(conversation=conversation).acount() == 2
    rec.upstream_session("sess_b")  # a rollover
    talk(rec, "And of Italy?", "Rome.", 2)
    rec.interrupted("a2", 300)
    rec.end("user_stop")
    await writer.close()
    conversation = await Conversation.objects.aget(pk=rec.conversation_id)
    assert conversation.end_reason == "user_stop"
    assert conversation.upstream_session_ids == ["sess_a", "sess_b"]
    turns = [t async for t in Turn.objects.filter(conversation=conversation).order_by("seq")]
    assert [(t.role, t.text) for t in turns] == [
        ("user", "What is the capital of France?"),
        ("assistant", "Paris."),
        ("user", "And of Italy?"),
        ("assistant", "Rome."),
    ]
    assert (turns[3].interrupted, turns[3].heard_ms) == (True, 300)
    records = [r async for r in UsageRecord.objects.filter(session_id=rec.conversation_id)]
    assert len(records) == 2
    # 1000 text in at 4/M + 500 audio out at 64/M
    assert {r.estimated_cost for r in records} == {Decimal("0.036")}
    assert {r.audio_in_seconds for r in records} == {1.0}
    assert rec.conversation_id not in writer._members


async def test_a_flush_before_anything_was_said_keeps_the_conversation(user: User) -> None:
    """The first batch carries the start: flushed alone, it creates the row the rest need."""
    writer = HistoryWriter()
    rec = new_recorder(user)
    writer.join(rec)
    await writer.flush()  # the session has just started: nothing said yet
    assert await Conversation.objects.filter(pk=rec.conversation_id).aexists()
    talk(rec, "Hello?", "Hi.", 1)
    rec.end("stopped")
    await writer.close()
    conversation = await Conversation.objects.aget(pk=rec.conversation_id)
    assert conversation.end_reason == "stopped"
    assert await Turn.objects.filter(conversation=conversation).acount() == 2


async def test_a_failed_write_is_counted_and_retried_without_losing_anything(
    user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = HistoryWriter()
    rec = new_recorder(user)
    writer._members[rec.conversation_id] = (rec, asyncio.get_running_loop())
    talk(rec, "one", "two", 1)
    real = writer_module.awrite_batches
    fail = {"left": 2}

    async def flaky(batches: Any) -> None:
        if fail["left"]:
            fail["left"] -= 1
            raise ConnectionError("database went away")
        await real(batches)

    monkeypatch.setattr(writer_module, "awrite_batches", flaky)
    failures = metrics.HISTORY_WRITE_FAILURES._value.get()
    await writer.flush()
    talk(rec, "three", "four", 2)
    await writer.flush()
    assert metrics.HISTORY_WRITE_FAILURES._value.get() == failures + 2
    assert not await Conversation.objects.filter(pk=rec.conversation_id).aexists()
    await writer.flush()
    texts = [t.text async for t in Turn.objects.filter(conversation_id=rec.conversation_id)]
    assert texts == ["one", "two", "three", "four"]


async def test_a_batch_is_dropped_and_counted_after_its_retries(
    user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = HistoryWriter()
    rec = new_recorder(user)
    writer._members[rec.conversation_id] = (rec, asyncio.get_running_loop())
    rec.typed("lost")

    async def broken(batches: Any) -> None:
        raise ConnectionError("down for good")

    monkeypatch.setattr(writer_module, "awrite_batches", broken)
    dropped = metrics.HISTORY_DROPPED.labels(kind="batch")._value.get()
    for _ in range(MAX_RETRIES):
        await writer.flush()
    assert metrics.HISTORY_DROPPED.labels(kind="batch")._value.get() == dropped + 1
    assert writer._failed == []


async def test_a_conversation_deleted_while_live_is_not_brought_back(user: User) -> None:
    writer = HistoryWriter()
    rec = new_recorder(user)
    writer._members[rec.conversation_id] = (rec, asyncio.get_running_loop())
    rec.typed("first")
    await writer.flush()
    await Conversation.objects.filter(pk=rec.conversation_id).adelete()
    rec.typed("second")
    rec.end("user_stop")
    await writer.flush()
    assert not await Conversation.objects.filter(pk=rec.conversation_id).aexists()


async def test_what_a_live_session_points_to_may_be_deleted_meanwhile(user: User) -> None:
    """A deleted user, profile or continued conversation neither fails the batch nor the others.

    The foreign keys are only checked at commit, so such a batch would otherwise fail the whole
    transaction, every tick, until it was dropped.
    """
    gone = await User.objects.acreate(username="gone")
    profile = await AssistantProfile.objects.acreate(name="Short-lived")
    writer = HistoryWriter()
    orphan = new_recorder(gone)
    kept = new_recorder(user, profile_id=profile.pk, resumed_from=uuid.uuid4())
    for rec in (orphan, kept):
        writer._members[rec.conversation_id] = (rec, asyncio.get_running_loop())
        talk(rec, "hello", "hi", 1)
    await gone.adelete()
    await profile.adelete()
    failures = metrics.HISTORY_WRITE_FAILURES._value.get()
    await writer.flush()
    assert metrics.HISTORY_WRITE_FAILURES._value.get() == failures
    assert writer._failed == []
    assert not await Conversation.objects.filter(pk=orphan.conversation_id).aexists()
    conversation = await Conversation.objects.aget(pk=kept.conversation_id)
    assert (conversation.profile_id, conversation.resumed_from_id) == (None, None)
    assert conversation.profile_name == "Friendly"
    assert await Turn.objects.filter(conversation=conversation).acount() == 2


async def test_a_failing_batch_is_retried_alone_and_keeps_its_order(
    user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other conversations are written in the same tick; the failed one, and what it said
    after, are written in order on the next."""
    writer = HistoryWriter()
    bad, good = new_recorder(user), new_recorder(user)
    for rec in (bad, good):
        writer._members[rec.conversation_id] = (rec, asyncio.get_running_loop())
        talk(rec, "one", "two", 1)
    real = writer_module._write_batch
    fail = {"left": 1}

    def flaky(batch: Any, prices: Any) -> None:
        if batch.conversation_id == bad.conversation_id and fail["left"]:
            fail["left"] -= 1
            real(batch, prices)  # written, then rolled back to the batch's savepoint
            raise DatabaseError("value too long for type character varying(64)")
        real(batch, prices)

    monkeypatch.setattr(writer_module, "_write_batch", flaky)
    failures = metrics.HISTORY_WRITE_FAILURES._value.get()
    await writer.flush()
    assert metrics.HISTORY_WRITE_FAILURES._value.get() == failures + 1
    assert await Turn.objects.filter(conversation_id=good.conversation_id).acount() == 2
    assert not await Conversation.objects.filter(pk=bad.conversation_id).aexists()
    talk(bad, "three", "four", 2)
    await writer.flush()
    texts = [
        t.text
        async for t in Turn.objects.filter(conversation_id=bad.conversation_id).order_by("seq")
    ]
    assert texts == ["one", "two", "three", "four"]
    assert writer._failed == []


async def seconds_of(rec: ConversationRecorder, kind: str | None = None) -> list[float]:
    rows = UsageRecord.objects.filter(session_id=rec.conversation_id)
    if kind is not None:
        rows = rows.filter(kind=kind)
    return [r.audio_in_seconds + r.audio_out_seconds + r.typed_seconds async for r in rows]


async def test_usage_is_written_as_it_accrues_and_never_counted_twice(user: User) -> None:
    """Each flush rewrites the session's one accrued row; a response takes what it holds.

    At every flush the ledger's rows of the session add up to everything used until then: a
    worker that dies loses at most what came after its last flush.
    """
    writer = HistoryWriter()
    rec = new_recorder(user)
    writer._members[rec.conversation_id] = (rec, asyncio.get_running_loop())
    rec.audio_in(3 * AUDIO_BYTES_PER_SECOND)  # speaking, no reply yet
    await writer.flush()
    assert await seconds_of(rec, "accrued") == [3.0]
    rec.audio_in(AUDIO_BYTES_PER_SECOND)
    rec.typed_time(2.0)
    await writer.flush()
    assert await seconds_of(rec, "accrued") == [6.0]  # the same row, rewritten
    talk(rec, "q", "a", 1)  # 1 s more in, 1 s out, then the response takes all of it
    rec.audio_out(AUDIO_BYTES_PER_SECOND // 2)  # the next reply starts
    await writer.flush()
    [response] = [r async for r in UsageRecord.objects.filter(kind="response")]
    assert (response.audio_in_seconds, response.audio_out_seconds) == (5.0, 1.0)
    assert response.typed_seconds == 2.0
    assert await seconds_of(rec, "accrued") == [0.5]
    assert sum(await seconds_of(rec)) == pytest.approx(8.5)  # all of it, once
    rec.end("stopped")
    await writer.flush()
    assert await seconds_of(rec, "accrued") == [0.5]  # left over at the end: kept
    assert await UsageRecord.objects.acount() == 2


async def test_an_accrued_row_with_nothing_left_at_the_end_is_removed(user: User) -> None:
    writer = HistoryWriter()
    rec = new_recorder(user)
    writer._members[rec.conversation_id] = (rec, asyncio.get_running_loop())
    await writer.flush()
    assert await seconds_of(rec, "accrued") == [0.0]
    talk(rec, "q", "a", 1)
    rec.end("stopped")
    await writer.flush()
    assert await seconds_of(rec, "accrued") == []
    assert await seconds_of(rec) == [2.0]


async def test_usage_of_a_conversation_deleted_while_live_is_still_kept(user: User) -> None:
    """Deleting the transcript stops the recording of turns, not the ledger (billing)."""
    writer = HistoryWriter()
    rec = new_recorder(user)
    writer._members[rec.conversation_id] = (rec, asyncio.get_running_loop())
    rec.typed("first")
    await writer.flush()
    await Conversation.objects.filter(pk=rec.conversation_id).adelete()
    talk(rec, "q", "a", 1)
    rec.audio_in(AUDIO_BYTES_PER_SECOND)
    rec.end("user_stop")
    await writer.flush()
    assert not await Conversation.objects.filter(pk=rec.conversation_id).aexists()
    rows = [r async for r in UsageRecord.objects.filter(session_id=rec.conversation_id)]
    assert {(r.kind, r.conversation_id, r.user_id) for r in rows} == {
        ("response", None, user.pk),
        ("accrued", None, user.pk),
    }
    assert sum(await seconds_of(rec)) == 3.0


def test_the_accruals_of_all_sessions_cost_one_statement(user: User) -> None:
    """Per tick, the database work for sessions that only accrued does not grow with them."""

    def statements(sessions: int) -> int:
        recorders = [new_recorder(user) for _ in range(sessions)]
        writer_module.write_batches([rec.drain() for rec in recorders])  # their rows
        for rec in recorders:
            rec.audio_in(AUDIO_BYTES_PER_SECOND)
        with CaptureQueriesContext(connection) as queries:
            writer_module.write_batches([rec.drain() for rec in recorders])
        # The transaction's own statements are not the work.
        return len([q for q in queries if q["sql"] not in ("BEGIN", "COMMIT")])

    assert statements(1) == statements(25) == 1  # one executemany UPDATE
    assert UsageRecord.objects.filter(kind="accrued", audio_in_seconds=1.0).count() == 26


async def test_an_accrual_waits_for_its_conversation_row(
    user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first batch failed: the accruals after it are kept and written once it is."""
    writer = HistoryWriter()
    rec = new_recorder(user)
    writer._members[rec.conversation_id] = (rec, asyncio.get_running_loop())
    real = writer_module._write_batch
    fail = {"left": 1}

    def flaky(batch: Any, prices: Any) -> None:
        if fail["left"]:
            fail["left"] -= 1
            raise DatabaseError("the start failed")
        real(batch, prices)

    monkeypatch.setattr(writer_module, "_write_batch", flaky)
    rec.audio_in(AUDIO_BYTES_PER_SECOND)
    await writer.flush()
    assert await seconds_of(rec) == []
    await writer.flush()  # nothing new: the retried batches carry the accrual
    assert await seconds_of(rec, "accrued") == [1.0]
    assert writer._failed == []
