"""The replay of one turn (assistant/evaluation/replay.py) against a scripted connection."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from typing import Any

import pytest
from azure.ai.voicelive.models import ServerEventType

from assistant.evaluation.replay import (
    AUDIO_CHUNK_BYTES,
    TOOL_NOT_RUN,
    ReplayError,
    UserTurn,
    replay_session,
    replay_turn,
)
from assistant.voicelive.config import SessionTool
from assistant.voicelive.session_request import session_request_build
from tests.support.session_configs import session_config


class Event(dict[str, Any]):
    def __init__(self, kind: ServerEventType, **fields: Any) -> None:
        super().__init__(fields)
        self.type = kind


class ScriptedConnection:
    """Answers every ``response.create`` with the next scripted list of events, and a commit
    of the input audio with ``on_commit`` (before the response), or ``after_reply`` (after it:
    Azure's transcription may come after the reply)."""

    def __init__(
        self,
        *responses: list[Event],
        on_commit: list[Event] = (),  # type: ignore[assignment]
        after_reply: list[Event] = (),  # type: ignore[assignment]
    ) -> None:
        self.responses = list(responses)
        self.on_commit = list(on_commit)
        self.after_reply = list(after_reply)
        self.sent: list[dict[str, Any]] = []
        self.queue: list[Event] = []

    async def send(self, message: Any) -> None:
        message = dict(message)
        self.sent.append(message)
        if message["type"] == "input_audio_buffer.commit":
            self.queue.extend(self.on_commit)
        if message["type"] == "response.create":
            self.queue.extend(self.responses.pop(0))
            if not self.responses:
                self.queue.extend(self.after_reply)

    async def recv(self) -> Event:
        return self.queue.pop(0)


def done(output_tokens: int) -> Event:
    usage = {"input_tokens": 10, "output_tokens": output_tokens}
    return Event(ServerEventType.RESPONSE_DONE, response={"usage": usage})


def order_the_book() -> list[Event]:
    """A reply that is one call of ``place_order`` (call id ``c1``) for a book."""
    call = Event(
        ServerEventType.RESPONSE_FUNCTION_CALL_ARGUMENTS_DONE,
        name="place_order",
        call_id="c1",
        arguments='{"item": "book"}',
    )
    return [call, done(5)]


async def test_a_tool_call_is_reported_and_answered_without_running_the_tool() -> None:
    conn = ScriptedConnection(
        order_the_book(),
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


# -- a recorded turn ---------------------------------------------------------------------------

RECORDING = bytes(range(256)) * 200  # 51,200 bytes: three appends


def transcribed(text: str) -> Event:
    return Event(
        ServerEventType.CONVERSATION_ITEM_INPUT_AUDIO_TRANSCRIPTION_COMPLETED,
        item_id="item_1",
        content_index=0,
        transcript=text,
    )


async def test_a_recorded_turn_is_sent_as_audio_and_what_was_heard_is_kept() -> None:
    conn = ScriptedConnection(
        [Event(ServerEventType.RESPONSE_TEXT_DELTA, delta="Rome."), done(3)],
        on_commit=[transcribed(" What is the capital of Italy? ")],
    )
    turn = UserTurn("capital of Italy (label)", RECORDING)
    answer = await replay_turn(conn, turn, turn_timeout=5)
    kinds = [m["type"] for m in conn.sent]
    assert kinds == ["input_audio_buffer.append"] * 3 + [
        "input_audio_buffer.commit",
        "response.create",
    ], "the label is not sent: the recording is the turn"
    appended = b"".join(base64.b64decode(m["audio"]) for m in conn.sent[:3])
    assert appended == RECORDING
    assert max(len(base64.b64decode(m["audio"])) for m in conn.sent[:3]) == AUDIO_CHUNK_BYTES
    assert answer.heard == "What is the capital of Italy?"
    assert answer.text == "Rome."
    assert answer.as_json()["heard"] == "What is the capital of Italy?"


async def test_a_transcript_that_comes_after_the_reply_is_waited_for() -> None:
    conn = ScriptedConnection(
        [Event(ServerEventType.RESPONSE_TEXT_DELTA, delta="Rome."), done(3)],
        after_reply=[transcribed("capital of Italy")],
    )
    answer = await replay_turn(conn, UserTurn("label", RECORDING), turn_timeout=5)
    assert (answer.heard, answer.text) == ("capital of Italy", "Rome.")


async def test_a_failed_transcription_is_reported_not_hidden() -> None:
    failed = Event(
        ServerEventType.CONVERSATION_ITEM_INPUT_AUDIO_TRANSCRIPTION_FAILED,
        item_id="item_1",
        error={"message": "audio unreadable"},
    )
    conn = ScriptedConnection(
        [Event(ServerEventType.RESPONSE_TEXT_DELTA, delta="Sorry?"), done(3)],
        on_commit=[failed],
    )
    answer = await replay_turn(conn, UserTurn("label", RECORDING), turn_timeout=5)
    assert answer.as_json() | {"latency_ms": 0} == {
        "text": "Sorry?",
        "tool_calls": [],
        "latency_ms": 0,
        "input_tokens": 10,
        "output_tokens": 3,
        "heard": "",
        "heard_error": "audio unreadable",
    }


async def test_without_transcription_a_recorded_turn_says_nothing_was_heard() -> None:
    conn = ScriptedConnection([Event(ServerEventType.RESPONSE_TEXT_DELTA, delta="Hi."), done(3)])
    answer = await replay_turn(
        conn, UserTurn("label", RECORDING), turn_timeout=5, transcript_expected=False
    )
    assert (answer.heard, answer.text) == ("", "Hi.")
    assert "speech recognition is off" in answer.heard_error


async def test_a_text_turn_has_no_heard() -> None:
    conn = ScriptedConnection([Event(ServerEventType.RESPONSE_TEXT_DELTA, delta="Hi."), done(3)])
    answer = await replay_turn(conn, UserTurn("Hello"), turn_timeout=5)
    assert "heard" not in answer.as_json()
    assert [m["type"] for m in conn.sent] == ["conversation.item.create", "response.create"]


def test_a_replay_with_recordings_turns_turn_detection_off() -> None:
    config = session_config()
    assert session_request_build(config)["turn_detection"] is not None
    text_only = replay_session(config, [UserTurn("Hello")])
    assert text_only is config, "text replays are configured as before"
    spoken = replay_session(config, [UserTurn("Hello"), UserTurn("label", RECORDING)])
    assert session_request_build(spoken)["turn_detection"] is None
    assert (
        session_request_build(spoken)["input_audio_transcription"]
        == (session_request_build(config)["input_audio_transcription"])
    ), "the profile's speech recognition is what is evaluated"


def test_a_replay_never_offers_mcp_servers() -> None:
    """Voice Live calls an MCP server itself: a replay could not stop it, so it is not offered."""
    mcp = SessionTool(
        "orders", {"type": "mcp", "server_label": "orders", "server_url": "https://mcp.test"}
    )
    clock = SessionTool("get_current_time", {"type": "function", "name": "get_current_time"})
    config = replace(session_config(), tools=(clock, mcp))
    for turns in ([UserTurn("Hello")], [UserTurn("label", RECORDING)]):
        offered = session_request_build(replay_session(config, turns))["tools"]
        assert [tool["type"] for tool in offered] == ["function"], turns
    assert replay_session(replace(config, tools=(clock,)), [UserTurn("Hi")]).tools == (clock,)
