"""Profile versions over the real path: the admin over HTTP, Daphne, the SDK, localvoice.

Publishing from the admin's change form reaches a live session (``profile.updated``) and the
next conversation records the new version; a rollback is one more version; a draft tried by
staff is recorded as a draft, and refused to anyone else with ``draft_forbidden``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.browser import form_fields
from tests.support.servers import Browser, DaphneServer, Database, wait_until
from tests.support.talking import create_user, model_worker

pytestmark = pytest.mark.integration

PASSWORD = "versions-pw-123"
SETUP = create_user("talker", PASSWORD) + (
    f"User.objects.create_superuser('boss', password={PASSWORD!r})\n"
)


@pytest.fixture(scope="module")
def stack(
    localvoice_echo: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[DaphneServer, Database]]:
    logs = tmp_path_factory.mktemp("versions-real")
    with model_worker(
        "versions",
        logs,
        upstream_url=localvoice_echo,
        setup=SETUP,
        extra={"HISTORY_FLUSH_SECONDS": "0.3"},
    ) as worker:
        yield worker.daphne, worker.database


def recorded(database: Database, conversation_id: str) -> tuple[Any, ...] | None:
    """The ended conversation's (profile_version, is_draft), or None before it is written."""
    value = uuid.UUID(conversation_id)
    rows = database.query(
        "SELECT profile_version, is_draft FROM assistant_conversation "
        "WHERE id = %s AND ended_at IS NOT NULL",
        (value.hex if database.kind == "sqlite" else value,),
    )
    return (rows[0][0], bool(rows[0][1])) if rows else None


async def converse(browser: Browser, server: DaphneServer, query: str = "") -> str:
    """Start a session, stop it; returns its conversation id."""
    socket = await browser.websocket(server.ws_url(f"/ws/voice/{query}"))
    session_id = (await socket.expect("session.ready", timeout=20))["session_id"]
    await socket.send_json({"type": "session.stop"})
    assert await socket.expect_close(timeout=10) == 1000
    return str(session_id)


def version_of(database: Database, conversation_id: str) -> tuple[Any, ...]:
    wait_until(
        lambda: recorded(database, conversation_id) is not None,
        timeout=10,
        what="the conversation written",
    )
    row = recorded(database, conversation_id)
    assert row is not None
    return row


async def edit(admin: Browser, profile_id: int, instructions: str, *extra: tuple[str, str]) -> None:
    """Submit the profile's change form with new instructions (and ``extra`` fields)."""
    path = f"/admin/assistant/assistantprofile/{profile_id}/change/"
    fields = form_fields(await admin.get_text(path), form_id="assistantprofile_form")
    fields = [(k, instructions if k == "instructions" else v) for k, v in fields]
    assert await admin.post_form(path, [*fields, *extra]) == 302, "the change form was refused"


async def test_publish_rollback_and_a_draft_are_recorded_on_the_next_conversations(
    stack: tuple[DaphneServer, Database],
) -> None:
    server, database = stack
    async with Browser(server.base_url) as admin, Browser(server.base_url) as user:
        await admin.login("boss", PASSWORD)
        await user.login("talker", PASSWORD)
        live = await user.websocket(server.ws_url("/ws/voice/"))
        ready = await live.expect("session.ready", timeout=20)
        profile_id = int(ready["profile"]["id"])

        # A draft: nothing reaches the live session or the next conversation.
        await edit(admin, profile_id, "Always answer in French.")
        await live.send_json({"type": "session.stop"})
        assert await live.expect_close(timeout=10) == 1000
        assert not live.texts("profile.updated"), "a draft save reaches no session"
        assert version_of(database, str(ready["session_id"])) == (1, False)
        assert version_of(database, await converse(user, server)) == (1, False)

        # Staff try the draft; a user may not.
        tried = await converse(admin, server, f"?profile={profile_id}&draft=1")
        assert version_of(database, tried) == (1, True)
        refused = await user.websocket(server.ws_url(f"/ws/voice/?profile={profile_id}&draft=1"))
        error = await refused.expect("error", timeout=10)
        assert error["code"] == "draft_forbidden"
        await refused.expect_close(timeout=5)

        # Publish: the live session is told, the next conversation runs on version 2.
        live = await user.websocket(server.ws_url("/ws/voice/"))
        await live.expect("session.ready", timeout=20)
        published = time.monotonic()
        await edit(
            admin,
            profile_id,
            "Always answer in French.",
            ("_publish", "1"),
            ("publish_note", "French"),
        )
        updated = await live.expect("profile.updated", timeout=5)
        print(f"publish (form GET + POST) -> profile.updated: {time.monotonic() - published:.3f} s")
        assert updated["profile"]["id"] == profile_id
        await live.send_json({"type": "session.stop"})
        await live.expect_close(timeout=10)
        assert version_of(database, await converse(user, server)) == (2, False)
        rows = database.query(
            "SELECT number, note FROM assistant_profileversion WHERE profile_id = %s "
            "ORDER BY number",
            (profile_id,),
        )
        assert [tuple(r) for r in rows][-1] == (2, "French")

        # Roll back to version 1: published again as version 3.
        rollback = f"/admin/assistant/assistantprofile/{profile_id}/versions/1/rollback/"
        await admin.get_text(f"/admin/assistant/assistantprofile/{profile_id}/versions/")
        assert await admin.post_form(rollback, {"note": "back"}) == 302
        after = await converse(user, server)
        assert version_of(database, after) == (3, False)
        instructions = database.query(
            "SELECT instructions FROM assistant_assistantprofile WHERE id = %s", (profile_id,)
        )[0][0]
        assert "French" not in instructions
