"""Function calling with the real SDK against a real localvoice (default model, Qwen2.5 1.5B)."""

from __future__ import annotations

import json

import pytest
from azure.ai.voicelive.models import FunctionCallOutputItem, FunctionTool

from tests.localvoice.test_conformance import VAD, collect_response, user_text
from tests.support.audio import silence, speak
from tests.support.localvoice import next_event, send_audio, voicelive_session

pytestmark = [pytest.mark.integration, pytest.mark.models]

WEATHER = FunctionTool(
    name="get_weather",
    description="Get the current weather for a city",
    parameters={
        "type": "object",
        "properties": {"city": {"type": "string", "description": "the city name"}},
        "required": ["city"],
    },
)


async def test_tools_are_echoed_in_session_updated(localvoice_models):
    async with voicelive_session(localvoice_models) as conn:
        await conn.session.update(session={"tools": [WEATHER], "tool_choice": "auto"})
        session = (await next_event(conn, "session.updated")).session
        assert session.tools[0].name == "get_weather"
        assert session.tools[0].parameters["required"] == ["city"]
        assert session.tool_choice == "auto"
        await conn.session.update(session={"tools": [{"type": "function"}]})
        err = (await next_event(conn, "error")).error
        assert err.code == "missing_required_parameter"
        assert err.param == "session.tools[0].name"


async def test_spoken_tool_round(localvoice_models):
    """Spoken request -> function_call item -> client output -> a reply that uses it."""
    session = {"turn_detection": VAD, "tools": [WEATHER], "tool_choice": "auto"}
    async with voicelive_session(localvoice_models, session) as conn:
        await send_audio(
            conn, silence(300) + speak("What is the weather in Paris?") + silence(1200)
        )
        seen: list = []
        done = await next_event(conn, "response.done", timeout=90, seen=seen)
        # The 1.5B model may say a sentence first ("Sure!"): a message item, then the call.
        spoken = [e for e in seen if e.type == "response.audio_transcript.done"]
        assert len(spoken) <= 1
        added = next(
            e
            for e in seen
            if e.type == "response.output_item.added" and e.item.type == "function_call"
        )
        assert added.item.name == "get_weather"
        deltas = [e for e in seen if e.type == "response.function_call_arguments.delta"]
        args_done = next(e for e in seen if e.type == "response.function_call_arguments.done")
        assert "".join(d.delta for d in deltas) == args_done.arguments
        assert args_done.name == "get_weather"
        assert args_done.call_id == added.item.call_id
        assert json.loads(args_done.arguments) == {"city": "Paris"}
        item_done = [e for e in seen if e.type == "response.output_item.done"][-1]
        assert item_done.item.status == "completed"
        assert item_done.item.arguments == args_done.arguments
        assert done.response.status == "completed"
        assert [o.type for o in done.response.output] == ["message"] * len(spoken) + [
            "function_call"
        ]
        assert done.response.output[-1].call_id == args_done.call_id

        output = json.dumps({"city": "Paris", "temperature_c": 18, "sky": "cloudy"})
        await conn.conversation.item.create(
            item=FunctionCallOutputItem(call_id=args_done.call_id, output=output)
        )
        created = await next_event(conn, "conversation.item.created")
        assert created.item["type"] == "function_call_output"
        await conn.response.create()
        events, audio = await collect_response(conn, timeout=90)
        assert events[-1].response.status == "completed"
        assert events[-1].response.output[0].type == "message"
        reply = next(e for e in events if e.type == "response.audio_transcript.done").transcript
        print(f"\nreply using the tool output: {reply!r}")
        assert len(audio) > 24000
        assert "18" in reply or "eighteen" in reply.lower() or "cloud" in reply.lower(), reply


@pytest.mark.parametrize(
    "question", ["What is 2 plus 2?", "What is the capital of France?", "Tell me a joke."]
)
async def test_no_tool_call_for_requests_that_need_none(localvoice_models, question):
    session = {"turn_detection": None, "tools": [WEATHER], "tool_choice": "auto"}
    async with voicelive_session(localvoice_models, session) as conn:
        await conn.conversation.item.create(item=user_text(question))
        await next_event(conn, "conversation.item.created")
        await conn.response.create()
        events, audio = await collect_response(conn, timeout=90)
        types = [e.type for e in events]
        assert "response.function_call_arguments.done" not in types
        assert events[-1].response.output[0].type == "message"
        assert events[-1].response.status == "completed"
        assert len(audio) > 4800


async def test_tool_choice_none_never_calls(localvoice_models):
    session = {"turn_detection": None, "tools": [WEATHER], "tool_choice": "none"}
    async with voicelive_session(localvoice_models, session) as conn:
        await conn.conversation.item.create(item=user_text("What is the weather in Paris?"))
        await next_event(conn, "conversation.item.created")
        await conn.response.create()
        events, _ = await collect_response(conn, timeout=90)
        assert "response.function_call_arguments.done" not in [e.type for e in events]
        assert events[-1].response.output[0].type == "message"
