"""History over the whole real path: a browser client, Daphne, the SDK, localvoice's models.

A spoken conversation leaves its conversation, turns and usage rows; a worker killed mid-
conversation (SIGKILL) keeps every turn finished a flush interval before; a continued
conversation seeds the new session's upstream with the earlier one.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.servers import Browser, DaphneServer, Database, wait_until
from tests.support.talking import create_user, model_worker, say

pytestmark = [pytest.mark.integration, pytest.mark.models]

PASSWORD = "history-pw-123"
FLUSH_SECONDS = 0.5


@pytest.fixture(scope="module")
def stack(
    localvoice_models: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[DaphneServer, Database]]:
    logs = tmp_path_factory.mktemp("history-real")
    with model_worker(
        "hist",
        logs,
        upstream_url=localvoice_models,
        setup=create_user("zoe", PASSWORD),
        extra={"HISTORY_FLUSH_SECONDS": str(FLUSH_SECONDS)},
    ) as worker:
        yield worker.daphne, worker.database


def key(database: Database, conversation_id: str) -> Any:
    """A conversation id as the database compares it (SQLite keeps UUIDs as 32 hex digits)."""
    value = uuid.UUID(conversation_id)
    return value.hex if database.kind == "sqlite" else value


def turns_of(database: Database, conversation_id: str) -> list[tuple[str, str]]:
    rows = database.query(
        "SELECT role, text FROM assistant_turn WHERE conversation_id = %s ORDER BY seq",
        (key(database, conversation_id),),
    )
    return [(r[0], r[1]) for r in rows]


def conversation_row(database: Database, conversation_id: str) -> tuple[Any, ...] | None:
    rows = database.query(
        "SELECT end_reason, ended_at, upstream_session_ids, resumed_from_id "
        "FROM assistant_conversation WHERE id = %s",
        (key(database, conversation_id),),
    )
    return rows[0] if rows else None


def usage_of(database: Database, conversation_id: str) -> list[tuple[Any, ...]]:
    return database.query(
        "SELECT input_tokens, output_tokens, audio_in_seconds, audio_out_seconds "
        "FROM assistant_usagerecord WHERE session_id = %s",
        (key(database, conversation_id),),
    )


async def test_a_spoken_conversation_is_recorded_then_continued(
    stack: tuple[DaphneServer, Database],
) -> None:
    server, database = stack
    async with Browser(server.base_url) as browser:
        await browser.login("zoe", PASSWORD)
        socket = await browser.websocket(server.ws_url("/ws/voice/"))
        first_id = (await socket.expect("session.ready", timeout=20))["session_id"]
        turn = await say(socket, "Hello. My name is Zoe.")
        assert "zoe" in turn["user"].lower(), turn
        await socket.send_json({"type": "session.stop"})
        assert await socket.expect_close() == 1000

        wait_until(
            lambda: (row := conversation_row(database, first_id)) is not None and row[1],
            timeout=10,
            what="the ended conversation written",
        )
        end_reason, _, upstream_ids, _ = conversation_row(database, first_id) or ()
        assert end_reason == "stopped"
        assert upstream_ids, "the upstream session id is kept"
        assert upstream_ids != "[]", "the upstream session id is kept"
        turns = turns_of(database, first_id)
        assert [role for role, _ in turns][:2] == ["user", "assistant"], turns
        assert "zoe" in turns[0][1].lower()
        assert turns[1][1] == turn["assistant"]
        usage = usage_of(database, first_id)
        assert usage, "a usage row per response"
        assert usage[0][0] > 0, usage
        assert usage[0][1] > 0, usage
        assert sum(u[2] for u in usage) > 1.0, "the spoken seconds, counted"
        assert sum(u[3] for u in usage) > 0.5, "the reply's seconds, counted"

        # Continue it: the new session's upstream starts with the earlier turns.
        socket = await browser.websocket(server.ws_url(f"/ws/voice/?resume={first_id}"))
        second_id = (await socket.expect("session.ready", timeout=20))["session_id"]
        resumed = await socket.expect("conversation.resumed")
        assert resumed["messages"] == len([t for t in turns if t[1]])
        answer = await say(socket, "What is my name?")
        await socket.send_json({"type": "session.stop"})
        await socket.expect_close()
        assert "zoe" in answer["assistant"].lower(), answer
        wait_until(
            lambda: (row := conversation_row(database, second_id)) is not None and row[1],
            timeout=10,
            what="the continued conversation written",
        )
        resumed_from = (conversation_row(database, second_id) or ())[3]
        assert uuid.UUID(str(resumed_from)) == uuid.UUID(first_id)


async def test_a_killed_worker_keeps_the_finished_turns(
    stack: tuple[DaphneServer, Database],
) -> None:
    server, database = stack
    try:
        async with Browser(server.base_url) as browser:
            await browser.login("zoe", PASSWORD)
            socket = await browser.websocket(server.ws_url("/ws/voice/"))
            session_id = (await socket.expect("session.ready", timeout=20))["session_id"]
            turn = await say(socket, "What is the weather like in Paris today")
            finished = time.monotonic()
            # The worker dies a few flush intervals after the turn, mid-conversation.
            await asyncio.sleep(FLUSH_SECONDS * 3)
            server.kill()
            server.wait_exit(timeout=5)
        turns = turns_of(database, session_id)
        assert ("assistant", turn["assistant"]) in turns, (turns, time.monotonic() - finished)
        assert any(role == "user" and "paris" in text.lower() for role, text in turns), turns
        row = conversation_row(database, session_id)
        assert row is not None
        assert not row[1], "never ended: the worker died"
        assert usage_of(database, session_id), "the finished reply's usage was written"
    finally:
        server.restart()
