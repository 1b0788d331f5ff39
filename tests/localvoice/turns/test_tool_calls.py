"""A model's tool call: the tools offered, where it starts, its checks, salvaging a cut-off one."""

from __future__ import annotations

import json

import pytest

from localvoice.pipeline.llms import registry
from localvoice.pipeline.llms.base import RawCall
from localvoice.turns.tool_calls import (
    CallScanner,
    ToolCall,
    check_call,
    offered,
    salvage_call,
)
from tests.localvoice.fakes import WEATHER_TOOL

TIMER = {
    "type": "function",
    "name": "set_timer",
    "description": "Start a countdown timer",
    "parameters": {
        "type": "object",
        "properties": {
            "minutes": {"type": "integer", "minimum": 1},
            "unit": {"type": "string", "enum": ["minutes", "seconds"]},
        },
        "required": ["minutes"],
    },
}


def test_check_call_accepts_grounded_schema_valid_calls():
    tools = [WEATHER_TOOL, TIMER]
    call = check_call(RawCall("get_weather", {"city": "New York"}), tools, "weather in new york?")
    assert call == ToolCall("get_weather", json.dumps({"city": "New York"}, separators=(",", ":")))
    timer = check_call(RawCall("set_timer", {"minutes": 5, "unit": "minutes"}), tools, "a timer")
    assert isinstance(timer, ToolCall)


def test_a_purpose_said_as_two_words_meets_it_written_as_one() -> None:
    countdown = {**TIMER, "name": "start", "description": "Start a countdown"}
    call = check_call(RawCall("start", {"minutes": 4}), [countdown], "Count down four minutes")
    assert isinstance(call, ToolCall)
    unrelated = check_call(RawCall("start", {"minutes": 4}), [countdown], "Count to four")
    assert isinstance(unrelated, str)
    assert "does not mention" in unrelated


def test_check_call_puts_identifier_style_strings_back_as_said():
    # Qwen writes "living_room" for "the living room"; an enum value keeps its underscore.
    lights = {
        "type": "function",
        "name": "control_lights",
        "description": "Turn the lights of a room on or off",
        "parameters": {
            "type": "object",
            "properties": {"room": {"type": "string"}, "mode": {"enum": ["all_on", "off"]}},
        },
    }
    call = check_call(
        RawCall("control_lights", {"room": "living_room", "mode": "all_on"}),
        [lights],
        "Switch on the living room lights",
    )
    assert isinstance(call, ToolCall)
    assert json.loads(call.arguments) == {"room": "living room", "mode": "all_on"}


@pytest.mark.parametrize(
    ("raw", "said", "reason"),
    [
        (RawCall("get_players", {}), "how many players", "unknown tool"),
        (RawCall("get_weather", {}), "weather please", "schema"),
        (RawCall("get_weather", {"city": 3}), "weather in 3", "schema"),
        (RawCall("set_timer", {"minutes": 0}), "set a timer", "schema"),
        (RawCall("get_weather", {"city": "London"}), "What is 2 plus 2?", "not said"),
        (RawCall("get_weather", {"city": "Paris"}), "What is the capital of Paris", "does not"),
        (RawCall("set_timer", {"minutes": 5}), "What is 2 plus 2?", "does not mention"),
        (RawCall("get_weather", {"city": "Canada"}), "the biggest city in Canada", "does not"),
    ],
)
def test_check_call_rejects(raw, said, reason):
    verdict = check_call(raw, [WEATHER_TOOL, TIMER], said)
    assert isinstance(verdict, str)
    assert reason in verdict


def test_offered_follows_tool_choice():
    assert offered([WEATHER_TOOL, TIMER], "none") == []
    assert offered([WEATHER_TOOL, TIMER], {"type": "function", "name": "set_timer"}) == [TIMER]
    assert offered([WEATHER_TOOL, {"type": "mcp", "server_label": "x"}], "auto") == [WEATHER_TOOL]


def test_a_tool_without_parameters_is_called_with_none() -> None:
    """The 0.5B model copies the empty schema into the arguments: the call stands, with {}."""
    clock = {
        "type": "function",
        "name": "get_current_time",
        "description": "Get the current date and time.",
        "parameters": {"type": "object", "properties": {}, "additionalProperties": False},
    }
    copied = RawCall("get_current_time", {"type": "object", "properties": {"type": "string"}})
    assert check_call(copied, [clock], "What time is it?") == ToolCall("get_current_time", "{}")


def test_a_cut_off_call_of_a_tool_without_parameters_is_salvaged() -> None:
    tools = [
        {
            "type": "function",
            "name": "get_current_time",
            "description": "The time.",
            "parameters": {"type": "object", "properties": {}},
        },
        {
            "type": "function",
            "name": "search",
            "description": "Search.",
            "parameters": {"type": "object", "properties": {"query": {"type": "string"}}},
        },
    ]
    cut = '{"name": "get_current_time", "arguments": {"type": "object", "properties": {"type": "str'
    assert salvage_call(cut, tools) == RawCall("get_current_time", {})
    assert salvage_call('{"name": "search", "arguments": {"query": "ref', tools) is None
    assert salvage_call('{"name": "unknown", "arg', tools) is None
    assert salvage_call("no call here", tools) is None


def scan(*pieces: str) -> tuple[str, str | None]:
    """(speech, call text) of a reply streamed in ``pieces``, with Qwen2.5's call format."""
    scanner = CallScanner(registry.get("qwen2.5-1.5b").tool_prefix)
    speech = "".join(scanner.feed(piece) for piece in pieces) + scanner.finish()
    return speech, scanner.call_text


@pytest.mark.parametrize(
    ("pieces", "speech", "call"),
    [
        # a call from the first token: nothing spoken
        (["<tool", '_call>{"name"', ": 1}"], "", '<tool_call>{"name": 1}'),
        (['{"name"', ": 1}"], "", '{"name": 1}'),
        # the 1.5B's "Sure! ..." before its call: the sentence is speech, the rest the call
        (["Sure", "!", " <tool", "_call>", "{}"], "Sure!", " <tool_call>{}"),
        (["Sure! Checking", ".\n", '{"name"', ": 1}"], "Sure! Checking.", '\n{"name": 1}'),
        # no call: everything is speech, including what only looked like one for a while
        (["It is ", "a <to", "ad."], "It is a <toad.", None),
        (["Paris is", " the capital", ". "], "Paris is the capital. ", None),
        (["Ends with <to"], "Ends with <to", None),
    ],
)
def test_the_scanner_splits_speech_from_a_call_anywhere(pieces, speech, call):
    assert scan(*pieces) == (speech, call)


def test_the_scanner_releases_speech_as_soon_as_no_call_can_start_in_it() -> None:
    scanner = CallScanner(registry.get("qwen2.5-1.5b").tool_prefix)
    assert scanner.feed("The capital") == "The capital"
    assert scanner.feed(" of France <") == " of France"
    assert scanner.feed("b>") == " <b>"
