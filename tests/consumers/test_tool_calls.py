"""Tool calls through the voice consumer: a fake upstream, the real coordinator, executor,
runner and built-ins (call -> function_call_output -> response.create, as Voice Live wants)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth.models import User

from assistant.models import AssistantProfile, LiveSession
from assistant.tools.models import Tool
from tests.fakes import FakeConnect, FakeConnection
from tests.support.consumer import communicator, next_message, start_session

pytestmark = pytest.mark.django_db(transaction=True)


def call(conn: FakeConnection, name: str, *, call_id: str, args: str = "{}") -> None:
    item = {"type": "function_call", "call_id": call_id, "name": name, "arguments": args}
    conn.push(
        {"type": "response.created", "response": {"id": f"r_{call_id}", "status": "in_progress"}}
    )
    conn.push(
        {
            "type": "response.function_call_arguments.done",
            "response_id": f"r_{call_id}",
            "item_id": f"i_{call_id}",
            "output_index": 0,
            "call_id": call_id,
            "name": name,
            "arguments": args,
        }
    )
    conn.push(
        {
            "type": "response.done",
            "response": {"id": f"r_{call_id}", "status": "completed", "output": [item]},
        }
    )


@database_sync_to_async
def give(profile: AssistantProfile, builtin: str, **fields: Any) -> None:
    # Transactional tests flush the migration's rows: create the built-in's when it is gone.
    tool, _ = Tool.objects.get_or_create(
        name=builtin, defaults={"kind": "builtin", "builtin": builtin}
    )
    for name, value in fields.items():
        setattr(tool, name, value)
    tool.save()
    tool.profiles.add(profile)


async def test_a_call_is_run_by_the_real_tool_and_answered_upstream(
    user: User, default_profile: AssistantProfile, fake_connect: FakeConnect
) -> None:
    await give(default_profile, "get_current_time")
    comm = communicator(user, "/ws/voice/?tz=Europe%2FParis")
    assert (await comm.connect())[0]
    await next_message(comm, "session.ready")
    conn = fake_connect.last
    assert [t["name"] for t in conn.sent_of("session.update")[0]["session"]["tools"]] == [
        "get_current_time"
    ]
    call(conn, "get_current_time", call_id="c1")
    started = await next_message(comm, "tool.started")
    assert started == {
        "type": "tool.started",
        "call_id": "c1",
        "name": "get_current_time",
        "arguments": "",
    }
    finished = await next_message(comm, "tool.finished")
    assert finished["outcome"] == "ok"
    await conn.wait_for("response.create")
    sent = [e for e in conn.sent if e["type"] in ("conversation.item.create", "response.create")]
    assert [e["type"] for e in sent] == ["conversation.item.create", "response.create"]
    output = sent[0]["item"]
    assert output["type"] == "function_call_output"
    assert output["call_id"] == "c1"
    assert json.loads(output["output"])["time_zone"] == "Europe/Paris"
    await comm.disconnect()


async def test_the_pages_approval_lets_the_call_run(
    user: User, default_profile: AssistantProfile, fake_connect: FakeConnect
) -> None:
    await give(default_profile, "get_current_time", requires_approval=True)
    comm = await start_session(user)
    conn = fake_connect.last
    call(conn, "get_current_time", call_id="c1")
    request = await next_message(comm, "tool.approval.request")
    assert request["call_id"] == "c1"
    await asyncio.sleep(0.1)
    assert conn.sent_of("conversation.item.create") == []  # nothing ran
    # An answer for another call changes nothing and is no error.
    await comm.send_json_to({"type": "tool.approval", "call_id": "other", "approved": True})
    await comm.send_json_to({"type": "tool.approval", "call_id": "c1", "approved": True})
    assert (await next_message(comm, "tool.finished"))["outcome"] == "ok"
    await conn.wait_for("response.create")
    await comm.disconnect()


async def test_hand_over_switches_profile_registry_and_upstream(
    user: User, default_profile: AssistantProfile, fake_connect: FakeConnect
) -> None:
    sales = await AssistantProfile.objects.acreate(
        name="Sales", instructions="Sell.", voice="alloy"
    )
    await sales.users.aadd(user)
    await default_profile.users.aadd(user)
    await give(default_profile, "hand_over")
    comm = communicator(user, f"/ws/voice/?profile={default_profile.pk}")
    assert (await comm.connect())[0]
    await next_message(comm, "session.ready")
    conn = fake_connect.last
    call(conn, "hand_over", call_id="c1", args='{"profile": "sales"}')
    handover = await next_message(comm, "profile.handover")
    assert handover["profile"] == {"id": sales.pk, "name": "Sales"}
    await conn.wait_for("response.create")
    update = conn.sent_of("session.update")[-1]["session"]
    assert update["instructions"] == "Sell."
    assert update["tools"] == []  # Sales has no tools
    row = await LiveSession.objects.aget(user=user)
    assert row.profile_id == sales.pk
    await comm.disconnect()
