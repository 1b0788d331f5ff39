"""The replay of one turn (assistant/evaluation/replay.py) against a scripted connection."""

from __future__ import annotations

import json
from typing import Any

import pytest
from azure.ai.voicelive.models import ServerEventType

from assistant.evaluation.replay import TOOL_NOT_RUN, ReplayError, replay_turn


class Event(dict[str, Any]):
    def __init__(self, kind: ServerEventType, **fields: Any) -> None:
        super().__init__(fields)
        self.type = kind


class ScriptedConnection:
    """Answers every ``response.create`` with the next scripted list of events."""

    def __init__(self, *responses: list[Event]) -> None:
        self.responses = list(responses)
        self.sent: list[dict[str, Any]] = []
        self.queue: list[Event] = []

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)
        if message["type"] == "response.create":
            self.queue.extend(self.responses.pop(0))

    async def recv(self) -> Event:
        return self.queue.pop(0)


def done(output_tokens: int) -> Event:
    usage = {"input_tokens": 10, "output_tokens": output_tokens}
    return Event(ServerEventType.RESPONSE_DONE, response={"usage": usage})


async def test_a_tool_call_is_reported_and_answered_without_running_the_tool() -> None:
    conn = ScriptedConnection(
        [
            Event(
                ServerEventType.RESPONSE_FUNCTION_CALL_ARGUMENTS_DONE,
                name="place_order",
                call_id="c1",
                arguments='{"item": "book"}',
            ),
            done(5),
        ],
        [Event(ServerEventType.RESPONSE_TEXT_DELTA, delta="I could not "), done(7)],
    )
    answer = await replay_turn(conn, "Order the book.", turn_timeout=5)
    assert answer.tool_calls == [
        {"name": "place_order", "arguments": {"item": "book"}, "answered": "not run"}
    ]
    assert answer.text == "I could not"
    assert (answer.input_tokens, answer.output_tokens) == (20, 12)
    assert answer.latency_ms is not None
    outputs = [m for m in conn.sent if m["type"] == "conversation.item.create"]
    assert outputs[0]["item"]["content"][0]["text"] == "Order the book."
    assert outputs[1]["item"] == {
        "type": "function_call_output",
        "call_id": "c1",
        "output": TOOL_NOT_RUN,
    }
    assert json.loads(TOOL_NOT_RUN)["replay"]
    assert [m["response"]["modalities"] for m in conn.sent if m["type"] == "response.create"] == [
        ["text"],
        ["text"],
    ]


async def test_an_engine_error_fails_the_replay() -> None:
    error = {"code": "invalid_request", "message": "no"}
    conn = ScriptedConnection([Event(ServerEventType.ERROR, error=error)])
    with pytest.raises(ReplayError, match="invalid_request"):
        await replay_turn(conn, "Hello", turn_timeout=5)


async def test_each_call_is_answered_by_the_replays_tool_rule() -> None:
    conn = ScriptedConnection(
        [
            Event(
                ServerEventType.RESPONSE_FUNCTION_CALL_ARGUMENTS_DONE,
                name="get_current_time",
                call_id="c1",
                arguments="{}",
            ),
            done(5),
        ],
        [Event(ServerEventType.RESPONSE_TEXT_DELTA, delta="It is noon."), done(7)],
    )
    asked: list[tuple[str, str]] = []

    async def tools(name: str, raw: str) -> tuple[str, str]:
        asked.append((name, raw))
        return '{"time": "12:00"}', "ran"

    answer = await replay_turn(conn, "What time is it?", turn_timeout=5, tools=tools)
    assert asked == [("get_current_time", "{}")]
    assert answer.tool_calls == [{"name": "get_current_time", "arguments": {}, "answered": "ran"}]
    output = next(m for m in conn.sent if m.get("item", {}).get("type") == "function_call_output")
    assert output["item"]["output"] == '{"time": "12:00"}'
