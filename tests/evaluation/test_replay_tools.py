"""The replay's tool rule: built-ins run as a dry run, HTTP tools are never called."""

from __future__ import annotations

import json
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from assistant.evaluation.replay import NOT_RUN, TOOL_NOT_RUN, never_run
from assistant.evaluation.replay_tools import (
    RAN,
    RAN_WOULD_END,
    RAN_WOULD_HAND_OVER,
    replay_tool_answer,
)
from assistant.models import AssistantProfile
from assistant.tools.models import Tool
from assistant.tools.session_tools import session_tools
from tests.support.session_configs import session_config

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
