"""Tool calls of a live session: the real VoiceLiveSession and coordinator, a fake SDK
connection and a fake executor. Asserts what goes upstream, in which order, and what the page
is told (call -> function_call_output item -> response.create)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Any

import pytest

from assistant import metrics
from assistant.voicelive.config import SessionTool
from assistant.voicelive.session import VoiceLiveSession
from assistant.voicelive.toolcall_text import (
    CANCELLED,
    DECLINED,
    TOO_MANY_ROUNDS,
    arguments_summary,
    result_summary,
    spoken_answer,
)
from assistant.voicelive.toolcalls import CallResult, FunctionCall
from tests.fakes import FakeConnect, FakeConnection
from tests.voicelive.test_session import CONFIG, UPSTREAM, RecordingSink


def counted(tool: str, outcome: str) -> float:
    """``voice_tool_calls_total`` for one tool and outcome."""
    return float(metrics.TOOL_CALLS.labels(tool=tool, outcome=outcome)._value.get())


def function_tool(name: str, **kwargs: Any) -> SessionTool:
    definition = {"type": "function", "name": name, "description": name, "parameters": {}}
    return SessionTool(name=name, definition=definition, **kwargs)


TOOLS = (
    function_tool("get_current_time"),
    function_tool("slow", timeout_seconds=0.5),
    function_tool("guarded", requires_approval=True),
    function_tool("with_phrase", interim_phrase="Let me check."),
    function_tool("end_conversation"),
    function_tool("hand_over"),
    function_tool("broken"),
)


class FakeExecutor:
    """Records calls; answers by tool name (``slow`` waits until released or cancelled)."""

    def __init__(self) -> None:
        self.calls: list[tuple[FunctionCall, int]] = []
        self.handovers: list[int] = []
        self.ended = 0
        self.release = asyncio.Event()
        self.slow_cancelled = False

    async def run_call(self, call: FunctionCall, profile_id: int) -> CallResult:
        self.calls.append((call, profile_id))
        if call.name == "slow":
            try:
                await self.release.wait()
            except asyncio.CancelledError:
                self.slow_cancelled = True
                raise
            return CallResult('{"slow": "done"}')
        if call.name == "broken":
            msg = "the database went away"
            raise RuntimeError(msg)
        if call.name == "end_conversation":
            return CallResult('"Say goodbye."', end_session=True)
        if call.name == "hand_over":
            return CallResult('{"handed_over_to": "Sales"}', handover_profile_id=7)
        return CallResult('{"time": "10:42"}')

    async def hand_over(self, profile_id: int) -> bool:
        self.handovers.append(profile_id)
        return True

    async def end_conversation(self) -> None:
        self.ended += 1


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


@pytest.fixture
def executor() -> FakeExecutor:
    return FakeExecutor()


@pytest.fixture
async def session(fake_connect: FakeConnect, sink: RecordingSink, executor: FakeExecutor) -> Any:
    config = dataclasses.replace(CONFIG, tools=TOOLS)
    voice = VoiceLiveSession(config=config, upstream=UPSTREAM, sink=sink, tools=executor)
    await voice.start()
    yield voice
    await voice.aclose()
    assert not voice.tool_calls.busy  # nothing left running


def ask_for(
    conn: FakeConnection, name: str, *, call_id: str, response_id: str, args: str = "{}"
) -> None:
    """The model's response calls ``name``, the way Voice Live (and localvoice) report it."""
    item = {
        "id": f"item_{call_id}",
        "type": "function_call",
        "call_id": call_id,
        "name": name,
        "arguments": args,
        "status": "completed",
    }
    conn.push(
        {"type": "response.created", "response": {"id": response_id, "status": "in_progress"}}
    )
    conn.push(
        {
            "type": "response.function_call_arguments.done",
            "response_id": response_id,
            "item_id": item["id"],
            "output_index": 0,
            "call_id": call_id,
            "name": name,
            "arguments": args,
        }
    )
    conn.push(
        {
            "type": "response.output_item.done",
            "response_id": response_id,
            "output_index": 0,
            "item": item,
        }
    )
    conn.push(
        {
            "type": "response.done",
            "response": {"id": response_id, "status": "completed", "output": [item]},
        }
    )


def reply(conn: FakeConnection, response_id: str, status: str = "completed") -> None:
    conn.push(
        {"type": "response.created", "response": {"id": response_id, "status": "in_progress"}}
    )
    conn.push(
        {"type": "response.done", "response": {"id": response_id, "status": status, "output": []}}
    )


def after_setup(conn: FakeConnection) -> list[dict[str, Any]]:
    return [event for event in conn.sent if event["type"] != "session.update"]


def outputs(conn: FakeConnection) -> list[dict[str, Any]]:
    return [
        e["item"]
        for e in conn.sent_of("conversation.item.create")
        if e["item"]["type"] == "function_call_output"
    ]


async def test_the_session_update_offers_the_profiles_tools(
    session: VoiceLiveSession, fake_connect: FakeConnect
) -> None:
    update = fake_connect.last.sent_of("session.update")[0]["session"]
    assert [tool["name"] for tool in update["tools"]] == [tool.name for tool in TOOLS]
    assert update["tool_choice"] == "auto"


async def test_a_call_is_run_answered_then_a_reply_is_asked_for(
    session: VoiceLiveSession,
    fake_connect: FakeConnect,
    sink: RecordingSink,
    executor: FakeExecutor,
) -> None:
    conn = fake_connect.last
    ask_for(conn, "get_current_time", call_id="call_1", response_id="r1")
    await conn.wait_for("response.create")
    assert after_setup(conn) == [
        {
            "type": "conversation.item.create",
            "item": {
                "type": "function_call_output",
                "call_id": "call_1",
                "output": '{"time": "10:42"}',
            },
        },
        {"type": "response.create"},
    ]
    assert [(call.name, profile) for call, profile in executor.calls] == [("get_current_time", 1)]
    started, finished = (m for m in sink.messages if m["type"].startswith("tool."))
    assert started == {
        "type": "tool.started",
        "call_id": "call_1",
        "name": "get_current_time",
        "arguments": "",
    }
    assert finished["outcome"] == "ok"
    assert finished["summary"] == '{"time": "10:42"}'
    # The call is answered once, although it was reported three ways.
    assert len(outputs(conn)) == 1


async def test_rounds_are_bounded_per_user_turn(
    session: VoiceLiveSession, fake_connect: FakeConnect, executor: FakeExecutor
) -> None:
    conn = fake_connect.last
    refused = counted("get_current_time", "too_many_rounds")
    for n in range(1, 6):
        ask_for(conn, "get_current_time", call_id=f"call_{n}", response_id=f"r{n}")
        await conn.wait_for("response.create", count=n)
    assert len(executor.calls) == 4
    assert counted("get_current_time", "too_many_rounds") == refused + 1
    assert outputs(conn)[-1] == {
        "type": "function_call_output",
        "call_id": "call_5",
        "output": TOO_MANY_ROUNDS,
    }
    # A new user turn counts afresh.
    conn.push({"type": "input_audio_buffer.speech_started", "item_id": "u2", "audio_start_ms": 0})
    ask_for(conn, "get_current_time", call_id="call_6", response_id="r6")
    await conn.wait_for("response.create", count=6)
    assert len(executor.calls) == 5


async def test_barge_in_cancels_a_running_tool_and_answers_its_call(
    session: VoiceLiveSession,
    fake_connect: FakeConnect,
    sink: RecordingSink,
    executor: FakeExecutor,
) -> None:
    conn = fake_connect.last
    cancelled = counted("slow", "cancelled")
    ask_for(conn, "slow", call_id="call_s", response_id="r1")
    await sink.until(lambda: any(m["type"] == "tool.started" for m in sink.messages))
    assert session.tool_calls.busy
    conn.push({"type": "input_audio_buffer.speech_started", "item_id": "u2", "audio_start_ms": 0})
    await sink.until(lambda: any(m["type"] == "tool.finished" for m in sink.messages))
    assert executor.slow_cancelled
    assert not session.tool_calls.busy
    assert outputs(conn) == [
        {"type": "function_call_output", "call_id": "call_s", "output": CANCELLED}
    ]
    assert conn.sent_of("response.create") == []  # the user's new turn gets the reply
    finished = next(m for m in sink.messages if m["type"] == "tool.finished")
    assert finished["outcome"] == "cancelled"
    assert counted("slow", "cancelled") == cancelled + 1


async def test_the_browsers_cancel_stops_a_running_tool(
    session: VoiceLiveSession,
    fake_connect: FakeConnect,
    sink: RecordingSink,
    executor: FakeExecutor,
) -> None:
    conn = fake_connect.last
    ask_for(conn, "slow", call_id="call_s", response_id="r1")
    await sink.until(lambda: any(m["type"] == "tool.started" for m in sink.messages))
    await session.cancel_response()
    assert executor.slow_cancelled
    assert outputs(conn)[0]["output"] == CANCELLED


async def test_closing_the_session_cancels_a_running_tool(
    fake_connect: FakeConnect, sink: RecordingSink, executor: FakeExecutor
) -> None:
    voice = VoiceLiveSession(
        config=dataclasses.replace(CONFIG, tools=TOOLS),
        upstream=UPSTREAM,
        sink=sink,
        tools=executor,
    )
    await voice.start()
    ask_for(fake_connect.last, "slow", call_id="call_s", response_id="r1")
    await sink.until(lambda: any(m["type"] == "tool.started" for m in sink.messages))
    await voice.aclose()
    assert executor.slow_cancelled
    assert not voice.tool_calls.busy


async def test_a_tool_that_raises_becomes_an_error_output_and_the_session_goes_on(
    session: VoiceLiveSession, fake_connect: FakeConnect, sink: RecordingSink
) -> None:
    conn = fake_connect.last
    errors = counted("broken", "error")
    ask_for(conn, "broken", call_id="call_b", response_id="r1")
    await conn.wait_for("response.create")
    assert json.loads(outputs(conn)[0]["output"]) == {"error": "the tool failed"}
    assert counted("broken", "error") == errors + 1
    assert sink.lost == []
    ask_for(conn, "get_current_time", call_id="call_t", response_id="r2")
    await conn.wait_for("response.create", count=2)


async def test_a_cancelled_response_gets_its_calls_answered_without_a_new_reply(
    session: VoiceLiveSession, fake_connect: FakeConnect, executor: FakeExecutor
) -> None:
    conn = fake_connect.last
    conn.push({"type": "response.created", "response": {"id": "r1", "status": "in_progress"}})
    conn.push(
        {
            "type": "response.function_call_arguments.done",
            "response_id": "r1",
            "item_id": "i1",
            "output_index": 0,
            "call_id": "call_c",
            "name": "get_current_time",
            "arguments": "{}",
        }
    )
    conn.push(
        {"type": "response.done", "response": {"id": "r1", "status": "cancelled", "output": []}}
    )
    await conn.wait_for("conversation.item.create")
    assert outputs(conn)[0]["output"] == CANCELLED
    assert executor.calls == []
    assert conn.sent_of("response.create") == []


async def test_nothing_runs_until_the_user_approves(
    session: VoiceLiveSession,
    fake_connect: FakeConnect,
    sink: RecordingSink,
    executor: FakeExecutor,
) -> None:
    conn = fake_connect.last
    ask_for(conn, "guarded", call_id="call_g", response_id="r1", args='{"order": "42"}')
    await sink.until(lambda: any(m["type"] == "tool.approval.request" for m in sink.messages))
    request = next(m for m in sink.messages if m["type"] == "tool.approval.request")
    assert request == {
        "type": "tool.approval.request",
        "call_id": "call_g",
        "name": "guarded",
        "arguments": "order: 42",
        "timeout_s": 30,
    }
    await asyncio.sleep(0.05)
    assert executor.calls == []
    # Speech while it waits may be the answer: it does not cancel the call.
    conn.push({"type": "input_audio_buffer.speech_started", "item_id": "u2", "audio_start_ms": 0})
    await asyncio.sleep(0.05)
    assert session.tool_calls.awaiting_approval
    assert session.tool_calls.answer_approval("call_g", True)
    await conn.wait_for("response.create")
    assert [call.name for call, _ in executor.calls] == ["guarded"]


async def test_a_spoken_no_declines_and_the_model_is_told(
    session: VoiceLiveSession,
    fake_connect: FakeConnect,
    sink: RecordingSink,
    executor: FakeExecutor,
) -> None:
    conn = fake_connect.last
    declined = counted("guarded", "declined")
    ask_for(conn, "guarded", call_id="call_g", response_id="r1")
    await sink.until(lambda: session.tool_calls.awaiting_approval)
    conn.push(
        {
            "type": "conversation.item.input_audio_transcription.completed",
            "item_id": "u2",
            "content_index": 0,
            "transcript": "No, don't do that.",
        }
    )
    await conn.wait_for("response.create")
    assert executor.calls == []
    assert counted("guarded", "declined") == declined + 1
    assert outputs(conn)[0]["output"] == DECLINED
    assert next(m for m in sink.messages if m["type"] == "tool.finished")["outcome"] == "declined"


async def test_no_answer_in_time_is_a_no(
    fake_connect: FakeConnect, sink: RecordingSink, executor: FakeExecutor
) -> None:
    voice = VoiceLiveSession(
        config=dataclasses.replace(CONFIG, tools=TOOLS),
        upstream=UPSTREAM,
        sink=sink,
        tools=executor,
    )
    voice.tool_calls._approval_seconds = 0.1
    await voice.start()
    try:
        ask_for(fake_connect.last, "guarded", call_id="call_g", response_id="r1")
        await fake_connect.last.wait_for("response.create")
        assert outputs(fake_connect.last)[0]["output"] == DECLINED
        assert executor.calls == []
    finally:
        await voice.aclose()


async def test_the_interim_phrase_is_spoken_before_the_tool_answers(
    session: VoiceLiveSession, fake_connect: FakeConnect
) -> None:
    conn = fake_connect.last
    ask_for(conn, "with_phrase", call_id="call_p", response_id="r1")
    await conn.wait_for("response.create", count=2)
    kinds = [(e["type"], e.get("response") is not None) for e in after_setup(conn)]
    assert kinds == [
        ("response.create", True),
        ("conversation.item.create", False),
        ("response.create", False),
    ]
    spoken = after_setup(conn)[0]["response"]["pre_generated_assistant_message"]
    assert spoken == {
        "type": "message",
        "role": "assistant",
        "content": [{"type": "text", "text": "Let me check."}],
    }


async def test_goodbye_ends_the_session_after_the_goodbye_reply(
    session: VoiceLiveSession, fake_connect: FakeConnect, executor: FakeExecutor
) -> None:
    conn = fake_connect.last
    ask_for(conn, "end_conversation", call_id="call_e", response_id="r1")
    await conn.wait_for("response.create")
    assert executor.ended == 0  # not before the goodbye was said
    reply(conn, "r2")
    async with asyncio.timeout(3):
        while executor.ended == 0:
            await asyncio.sleep(0.02)
    assert executor.ended == 1


async def test_hand_over_switches_before_the_model_answers(
    session: VoiceLiveSession, fake_connect: FakeConnect, executor: FakeExecutor
) -> None:
    conn = fake_connect.last
    ask_for(conn, "hand_over", call_id="call_h", response_id="r1", args='{"profile": "Sales"}')
    await conn.wait_for("response.create")
    assert executor.handovers == [7]


async def test_without_an_executor_calls_are_answered_not_available(
    fake_connect: FakeConnect, sink: RecordingSink
) -> None:
    voice = VoiceLiveSession(
        config=dataclasses.replace(CONFIG, tools=TOOLS), upstream=UPSTREAM, sink=sink
    )
    await voice.start()
    unknown = counted("unknown", "error")
    try:
        ask_for(fake_connect.last, "get_current_time", call_id="c1", response_id="r1")
        await fake_connect.last.wait_for("response.create")
        assert "not available" in outputs(fake_connect.last)[0]["output"]
        # A name the session never offered is counted as "unknown": the labels stay few.
        ask_for(fake_connect.last, "made_up_by_the_model", call_id="c2", response_id="r2")
        await fake_connect.last.wait_for("response.create", count=2)
        assert counted("unknown", "error") == unknown + 1
        assert counted("made_up_by_the_model", "error") == 0
    finally:
        await voice.aclose()


def test_summaries_are_short_and_readable() -> None:
    assert (
        arguments_summary('{"query": "refund policy", "limit": 3}')
        == "query: refund policy, limit: 3"
    )
    assert arguments_summary("{not json") == "(arguments that are not JSON)"
    assert len(arguments_summary(json.dumps({"q": "x" * 500}))) == 120
    assert (
        result_summary('{"error": "the tool did not answer in time"}')
        == "the tool did not answer in time"
    )


@pytest.mark.parametrize(
    ("said", "answer"),
    [
        ("Yes, please.", True),
        ("Okay go ahead", True),
        ("No.", False),
        ("Don't.", False),
        ("What?", None),
        ("yes no", None),
    ],
)
def test_spoken_answers(said: str, answer: bool | None) -> None:
    assert spoken_answer(said) is answer


async def test_a_typed_yes_answers_the_approval_and_is_not_sent_as_a_message(
    session: VoiceLiveSession, fake_connect: FakeConnect, executor: FakeExecutor
) -> None:
    conn = fake_connect.last
    ask_for(conn, "guarded", call_id="call_g", response_id="r1")
    async with asyncio.timeout(2):
        while not session.tool_calls.awaiting_approval:
            await asyncio.sleep(0.01)
    await session.send_text("yes please")
    await conn.wait_for("response.create")
    assert [call.name for call, _ in executor.calls] == ["guarded"]
    assert [e["item"]["type"] for e in conn.sent_of("conversation.item.create")] == [
        "function_call_output"
    ]


async def test_the_reply_to_a_spoken_yes_is_cancelled_and_the_tools_answer_follows(
    session: VoiceLiveSession, fake_connect: FakeConnect, executor: FakeExecutor
) -> None:
    conn = fake_connect.last
    ask_for(conn, "guarded", call_id="call_g", response_id="r1")
    async with asyncio.timeout(2):
        while not session.tool_calls.awaiting_approval:
            await asyncio.sleep(0.01)
    # The user's "yes" turn: its transcript, then the reply the turn starts by itself.
    conn.push(
        {
            "type": "conversation.item.input_audio_transcription.completed",
            "item_id": "u2",
            "content_index": 0,
            "transcript": "Yes.",
        }
    )
    conn.push({"type": "response.created", "response": {"id": "r_yes", "status": "in_progress"}})
    await conn.wait_for("response.cancel")
    await conn.wait_for("response.create")
    kinds = [e["type"] for e in after_setup(conn)]
    assert kinds.index("response.cancel") < kinds.index("response.create")
    assert [call.name for call, _ in executor.calls] == ["guarded"]
    assert not session.tool_calls.drop_turn_reply
