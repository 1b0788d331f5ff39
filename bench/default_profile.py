"""The default profile's instructions on localvoice's chat model: old text vs migration 0013's.

Typed questions (no speech), one model in one process, through the engine's own prompt format,
tool-call parser and checks (``localvoice/turns/tool_calls.py``), both instruction texts taken
from ``assistant`` migration 0013:

* **facts**: the 32 questions of ``speech_sets.FACTS`` without tools (as ``llm_eval.py`` scores
  them);
* **unknowable**: questions no model can answer without a tool (the time, the weather, the
  news...), without tools and with the default profile's built-ins (clock, goodbye) offered;
  "declined" when the reply says it cannot know;
* **tools**: with the built-ins offered, accepted calls on time questions and goodbyes, and false
  calls on ``speech_sets.NO_TOOL_REQUESTS``.

    taskset -c 0,1 .venv/bin/python -m bench.default_profile
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voiceproject.settings")
django.setup()

from assistant.tools.builtin import clock, goodbye  # noqa: E402
from assistant.tools.builtin.tool import BuiltinTool  # noqa: E402
from bench.llm_eval import reply  # noqa: E402
from bench.speech_sets import FACTS, NO_TOOL_REQUESTS  # noqa: E402
from localvoice.pipeline.llm import LlamaChat  # noqa: E402
from localvoice.pipeline.llms import registry  # noqa: E402
from localvoice.pipeline.llms.base import ChatFormat  # noqa: E402
from localvoice.pipeline.weights import resolve  # noqa: E402
from localvoice.turns.tool_calls import ToolCall, check_call  # noqa: E402

MIGRATION = importlib.import_module("assistant.migrations.0013_default_instructions")
UNKNOWABLE = [
    "What time is it?",
    "What's the date today?",
    "What day of the week is it?",
    "What's the weather like right now?",
    "What's in the news today?",
    "Is it raining outside?",
    "What year is it?",
    "How late is it?",
    "Who won the game last night?",
    "What's the stock market doing today?",
    "Will it snow tomorrow?",
]
TIME_QUESTIONS = [
    "What time is it?",
    "What's the date today?",
    "What day of the week is it?",
    "What year is it?",
    "Can you tell me the time?",
    "What's today's date?",
]
GOODBYES = ["Goodbye!", "Thanks, that's all, bye.", "Please end the call.", "I must go now, bye."]
DECLINES = ("no way to know", "can't know", "cannot know", "don't know", "not able", "unable")


def spec(tool: BuiltinTool) -> dict[str, Any]:
    return {
        "type": "function",
        "name": str(tool.name),
        "description": tool.description,
        "parameters": tool.parameters,
    }


TOOLS = [spec(clock.TOOL), spec(goodbye.TOOL)]


async def answer(
    llm: LlamaChat, fmt: ChatFormat, instructions: str, question: str, tools: list[dict[str, Any]]
) -> tuple[str, str | None]:
    """The reply's text and the accepted tool call's name (None: no call, or a rejected one)."""
    history = [{"role": "user", "content": question}]
    text, _, _ = await reply(llm, fmt.messages(instructions, history, tools))
    if not tools or not fmt.tool_prefix(text):
        return text, None
    raw = fmt.parse_call(text)
    verdict = check_call(raw, tools, question) if raw else "unparseable"
    return text, verdict.name if isinstance(verdict, ToolCall) else None


async def evaluate(model: str, instructions: str) -> dict[str, object]:
    fmt = registry.get(model)
    assert fmt.weights is not None
    llm = LlamaChat(resolve(fmt.weights), fmt, n_threads=1, n_threads_batch=2)
    facts = 0
    for question, accepted in FACTS:
        text, _ = await answer(llm, fmt, instructions, question, [])
        facts += any(a in text.lower() for a in accepted)
    declined: dict[str, int] = {}
    for label, tools in (("without tools", []), ("with the built-ins", TOOLS)):
        declined[label] = 0
        for question in UNKNOWABLE:
            text, call = await answer(llm, fmt, instructions, question, tools)
            declined[label] += call is None and any(d in text.lower() for d in DECLINES)
    calls: dict[str, list[str | None]] = {}
    for label, questions in (
        ("time", TIME_QUESTIONS),
        ("goodbye", GOODBYES),
        ("no tool", NO_TOOL_REQUESTS),
    ):
        calls[label] = [(await answer(llm, fmt, instructions, q, TOOLS))[1] for q in questions]
    return {
        "facts": f"{facts}/{len(FACTS)}",
        "unknowable declined": {k: f"{v}/{len(UNKNOWABLE)}" for k, v in declined.items()},
        "clock called on time questions": f"{calls['time'].count('get_current_time')}/"
        f"{len(TIME_QUESTIONS)}",
        "end_conversation called on goodbyes": f"{calls['goodbye'].count('end_conversation')}/"
        f"{len(GOODBYES)}",
        "false calls on no-tool requests": f"{sum(c is not None for c in calls['no tool'])}/"
        f"{len(NO_TOOL_REQUESTS)}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="qwen2.5-0.5b")
    args = parser.parse_args()
    for name, text in (
        ("old", MIGRATION.OLD_INSTRUCTIONS),
        ("new (migration 0013)", MIGRATION.NEW_INSTRUCTIONS),
    ):
        print(f"{name}: {asyncio.run(evaluate(args.model, text))}", flush=True)


if __name__ == "__main__":
    main()
