"""The replay's tool rule: built-ins run as a dry run, HTTP tools are never called (an HTTP
tool that declares its answer during evaluations gets it instead)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from azure.ai.voicelive.models import ServerEventType
from django.core.exceptions import ValidationError

from assistant.evaluation.replay import NOT_RUN, TOOL_NOT_RUN, never_run, replay_turn
from assistant.evaluation.replay_tools import (
    DRY_RUN_DECLARED,
    RAN,
    RAN_WOULD_END,
    RAN_WOULD_HAND_OVER,
    declared_answers,
    replay_tool_answer,
)
from assistant.models import AssistantProfile
from assistant.tools.models import Tool
from assistant.tools.session_tools import session_tools
from tests.support.session_configs import session_config
from tests.test_replay import Event, ScriptedConnection, done, order_the_book

pytestmark = pytest.mark.django_db(transaction=True)


def builtin(name: str) -> Tool:
    tool, _ = Tool.objects.update_or_create(
        name=name, defaults={"kind": Tool.Kind.BUILTIN, "builtin": name}
    )
    return tool


def profile_with_tools() -> AssistantProfile:
    profile = AssistantProfile.objects.create(name="Replayed")
    AssistantProfile.objects.create(name="Billing")
    for name in ("get_current_time", "end_conversation", "hand_over"):
        builtin(name).profiles.add(profile)
    Tool.objects.create(
        name="place_order",
        kind=Tool.Kind.HTTP,
        description="Place an order.",
        url_template="https://api.example.com/orders",
        http_method=Tool.Method.POST,
        parameters={"type": "object", "properties": {"item": {"type": "string"}}},
    ).profiles.add(profile)
    return profile


async def answers(profile: AssistantProfile, calls: list[tuple[str, dict[str, Any]]]) -> list:
    tools = await sync_to_async(session_tools)(profile.pk)
    config = session_config(profile_id=profile.pk, tools=tools)
    answer = await sync_to_async(replay_tool_answer)(config)
    return [await answer(name, json.dumps(arguments)) for name, arguments in calls]


async def test_builtins_run_and_say_what_they_would_have_done() -> None:
    profile = await sync_to_async(profile_with_tools)()
    clock, goodbye, handover, missing = await answers(
        profile,
        [
            ("get_current_time", {}),
            ("end_conversation", {}),
            ("hand_over", {"profile": "Billing"}),
            ("hand_over", {"profile": "Nobody"}),
        ],
    )
    assert clock[1] == RAN
    assert {"date", "time", "time_zone"} <= set(json.loads(clock[0]))
    assert json.loads(clock[0])["time_zone"] == "UTC", "a replay has no user: UTC"
    assert goodbye[1] == RAN_WOULD_END
    assert handover == (json.dumps({"handed_over_to": "Billing"}), RAN_WOULD_HAND_OVER)
    assert missing[1] == RAN
    assert json.loads(missing[0])["error"] == "no such assistant"


async def test_http_tools_and_tools_the_profile_lacks_are_never_called() -> None:
    profile = await sync_to_async(profile_with_tools)()
    order, unknown = await answers(profile, [("place_order", {"item": "book"}), ("nope", {})])
    assert order == (TOOL_NOT_RUN, NOT_RUN)
    assert unknown == (TOOL_NOT_RUN, NOT_RUN)


async def test_a_profile_without_builtins_answers_every_call_not_run() -> None:
    profile = await sync_to_async(AssistantProfile.objects.create)(name="Bare")
    config = session_config(profile_id=profile.pk)
    assert await sync_to_async(replay_tool_answer)(config) is never_run


# -- a dry run the tool declares ----------------------------------------------------------------

ORDER_PLACED = json.dumps({"order": "A-17", "status": "placed"})


def http_tool(**fields: Any) -> Tool:
    values: dict[str, Any] = {
        "name": "place_order",
        "kind": Tool.Kind.HTTP,
        "description": "Place an order.",
        "url_template": "https://api.example.com/orders",
        "http_method": Tool.Method.POST,
        "parameters": {"type": "object", "properties": {"item": {"type": "string"}}},
    }
    return Tool(**(values | fields))


def declaring_profile() -> AssistantProfile:
    profile = AssistantProfile.objects.create(name="Shop")
    tool = http_tool(evaluation_answer=ORDER_PLACED)
    tool.full_clean()
    tool.save()
    tool.profiles.add(profile)
    mailer = http_tool(name="send_mail", url_template="https://mail.example.com/send")
    mailer.save()
    mailer.profiles.add(profile)
    return profile


async def test_an_http_tool_that_declares_its_answer_gets_it_instead_of_being_called() -> None:
    profile = await sync_to_async(declaring_profile)()
    order, mail = await answers(
        profile, [("place_order", {"item": "book"}), ("send_mail", {"to": "x"})]
    )
    assert order == (ORDER_PLACED, DRY_RUN_DECLARED)
    assert mail == (TOOL_NOT_RUN, NOT_RUN), "a tool that declares nothing is still not run"


async def test_a_disabled_tool_declares_nothing() -> None:
    profile = await sync_to_async(declaring_profile)()
    await Tool.objects.filter(name="place_order").aupdate(is_enabled=False)
    tools = await sync_to_async(session_tools)(profile.pk)
    config = session_config(profile_id=profile.pk, tools=tools)
    assert await sync_to_async(declared_answers)(config) == {}


async def test_the_declared_answer_reaches_the_model_through_the_replay() -> None:
    profile = await sync_to_async(declaring_profile)()
    tools = await sync_to_async(session_tools)(profile.pk)
    config = session_config(profile_id=profile.pk, tools=tools)
    answer = await sync_to_async(replay_tool_answer)(config)
    conn = ScriptedConnection(
        order_the_book(),
        [Event(ServerEventType.RESPONSE_TEXT_DELTA, delta="Order A-17 is placed."), done(7)],
    )
    replayed = await replay_turn(conn, "Order the book.", turn_timeout=5, tools=answer)
    assert replayed.tool_calls == [
        {"name": "place_order", "arguments": {"item": "book"}, "answered": DRY_RUN_DECLARED}
    ]
    outputs = [
        m["item"] for m in conn.sent if m.get("item", {}).get("type") == "function_call_output"
    ]
    assert outputs == [{"type": "function_call_output", "call_id": "c1", "output": ORDER_PLACED}]
    assert replayed.text == "Order A-17 is placed."


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"evaluation_answer": "placed!"}, "Write the answer as JSON"),
        ({"evaluation_answer": '{"status": '}, "Write the answer as JSON"),
        (
            {
                "kind": Tool.Kind.MCP,
                "mcp_server_url": "https://mcp.example.com",
                "url_template": "",
                "evaluation_answer": "{}",
            },
            "Only an HTTP tool can declare",
        ),
    ],
)
def test_a_declared_answer_is_validated(fields: dict[str, Any], error: str) -> None:
    with pytest.raises(ValidationError) as caught:
        http_tool(**fields).full_clean()
    assert error in " ".join(caught.value.message_dict["evaluation_answer"])


def test_the_tool_admin_offers_the_answer_with_its_help() -> None:
    from django.contrib.auth.models import User
    from django.test import Client
    from django.urls import reverse

    client = Client()
    client.force_login(User.objects.create_superuser("admin", password="pw"))
    page = client.get(reverse("admin:tools_tool_add")).content.decode()
    assert 'name="evaluation_answer"' in page
    assert "no order is placed and no mail sent" in page
