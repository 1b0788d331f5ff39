"""Tool-call accuracy of the offline engine on spoken requests, with the product's built-ins.

Each request is spoken by espeak-ng (several voices), streamed to a localvoice started here
with its real models, through the real SDK, in a fresh session that offers the four built-in
tools exactly as the service does (``get_current_time``, ``search_knowledge_base``,
``end_conversation``, ``hand_over``). 24 requests should call a given tool, 24 must call none.
A call is right when its tool is the expected one. Precision = right calls / all calls;
recall = right calls / requests that should call.

    taskset -c 0,1 .venv/bin/python -m bench.tool_accuracy
    .venv/bin/python -m bench.tool_accuracy --limit 4      # a quick look
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import time
from pathlib import Path
from typing import Any

from assistant.tools.builtin import BUILTINS
from tests.support.audio import silence, speak
from tests.support.localvoice import LocalVoiceProcess, voicelive_session

VOICES = ["en-us", "en-gb", "en-us+f3", "en-gb-scotland"]
VAD = {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300, "silence_duration_ms": 500}
INSTRUCTIONS = "You are a helpful voice assistant. Keep answers short."

#: (request, the tool it should call). None of these was used to tune the engine.
SHOULD_CALL = [
    ("What time is it?", "get_current_time"),
    ("What is the time right now?", "get_current_time"),
    ("What day of the week is it today?", "get_current_time"),
    ("What is today's date?", "get_current_time"),
    ("Can you tell me the time please?", "get_current_time"),
    ("Which day is it today?", "get_current_time"),
    ("Search the handbook for the refund policy.", "search_knowledge_base"),
    ("Look up the holiday policy in the documents.", "search_knowledge_base"),
    ("What does the handbook say about expenses?", "search_knowledge_base"),
    ("Search the documents for the travel policy.", "search_knowledge_base"),
    ("Find the parking rules in the handbook.", "search_knowledge_base"),
    ("Check the policies for sick leave.", "search_knowledge_base"),
    ("Goodbye.", "end_conversation"),
    ("Goodbye, thank you for your help.", "end_conversation"),
    ("That is all, goodbye!", "end_conversation"),
    ("Please end the conversation.", "end_conversation"),
    ("Stop talking, we are done. Goodbye.", "end_conversation"),
    ("I want to end this conversation now.", "end_conversation"),
    ("Hand me over to Sales.", "hand_over"),
    ("Please hand the conversation over to Support.", "hand_over"),
    ("Can I talk to the Billing assistant?", "hand_over"),
    ("Transfer me to the Sales assistant please.", "hand_over"),
    ("Hand over to Support please.", "hand_over"),
    ("I would like another assistant, Billing please.", "hand_over"),
]
MUST_NOT_CALL = [
    "What is the capital of France?",
    "How many legs does a spider have?",
    "Tell me a joke about cats.",
    "What is two plus two?",
    "Who wrote Romeo and Juliet?",
    "How do I boil an egg?",
    "What is the largest ocean?",
    "Can you recommend a good book?",
    "How far is the moon from the earth?",
    "What colour is the sky?",
    "Thank you, that was helpful.",
    "How are you doing today?",
    "What is the boiling point of water?",
    "Translate good morning into French.",
    "Which planet is closest to the sun?",
    "What does a red traffic light mean?",
    "How many continents are there?",
    "Say hello to my friend Anna.",
    "What is the speed of light?",
    "Who painted the Mona Lisa?",
    "Is a tomato a fruit?",
    "What is your favourite colour?",
    "Explain what a rainbow is.",
    "How many minutes are in an hour?",
]


def session_tools() -> list[dict[str, Any]]:
    """The built-ins as ``session.update`` lists them (what ToolSpec.session_tool() sends)."""
    return [
        {
            "type": "function",
            "name": tool.name,
            "description": tool.description,
            "parameters": dict(tool.parameters),
        }
        for tool in BUILTINS.values()
    ]


async def one(endpoint: str, text: str, voice: str) -> tuple[str | None, str, float]:
    """(the tool called or None, what was heard, seconds to the response's end)."""
    session = {
        "turn_detection": VAD,
        "instructions": INSTRUCTIONS,
        "tools": session_tools(),
        "tool_choice": "auto",
    }
    pcm = silence(300) + speak(text, voice=voice) + silence(1200)
    async with voicelive_session(endpoint, session) as conn:
        started = time.monotonic()
        step = 24_000 * 2 // 50  # 20 ms
        for offset in range(0, len(pcm), step):
            await conn.input_audio_buffer.append(
                audio=base64.b64encode(pcm[offset : offset + step]).decode()
            )
        heard, called = "", None
        async with asyncio.timeout(180):
            while True:
                event = await conn.recv()
                if event.type == "conversation.item.input_audio_transcription.completed":
                    heard = event.transcript
                elif event.type == "response.function_call_arguments.done":
                    called = event.name
                elif event.type == "response.done":
                    return called, heard, time.monotonic() - started


async def run(endpoint: str, limit: int | None) -> dict[str, Any]:
    should = SHOULD_CALL[:limit]
    must_not = MUST_NOT_CALL[:limit]
    right = wrong_tool = missed = false_calls = 0
    rows = []
    for index, (text, expected) in enumerate(should):
        called, heard, seconds = await one(endpoint, text, VOICES[index % len(VOICES)])
        right += called == expected
        wrong_tool += called is not None and called != expected
        missed += called is None
        rows.append({"said": text, "heard": heard, "expected": expected, "called": called})
        print(f"{seconds:5.1f} s  {expected:22} {called or '-':22} {heard!r}", flush=True)
    for index, text in enumerate(must_not):
        called, heard, seconds = await one(endpoint, text, VOICES[index % len(VOICES)])
        false_calls += called is not None
        rows.append({"said": text, "heard": heard, "expected": None, "called": called})
        print(f"{seconds:5.1f} s  {'(none)':22} {called or '-':22} {heard!r}", flush=True)
    calls = right + wrong_tool + false_calls
    return {
        "requests_that_should_call": len(should),
        "requests_that_must_not": len(must_not),
        "right_calls": right,
        "wrong_tool": wrong_tool,
        "missed": missed,
        "false_calls": false_calls,
        "precision": round(right / calls, 2) if calls else None,
        "recall": round(right / len(should), 2) if should else None,
        "rows": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="requests of each kind")
    parser.add_argument("--out", type=Path, help="write the full result as JSON here")
    args = parser.parse_args()
    server = LocalVoiceProcess().start(timeout=180)
    try:
        result = asyncio.run(run(server.endpoint, args.limit))
    finally:
        server.stop()
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))
    summary = {k: v for k, v in result.items() if k != "rows"}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
