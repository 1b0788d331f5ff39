"""Factual accuracy per chat model, and tool-call precision/recall on spoken requests.

Facts: the 32 questions of ``speech_sets.FACTS`` as text, scored "correct" when one accepted
answer appears in the reply. Tools: the 20 tool requests and 20 requests that need none are
spoken (espeak-ng en-us), transcribed by Whisper tiny.en as the engine does, and answered
with the three tools of ``speech_sets.TOOLS`` offered, through the engine's own prompt format,
tool-call parser and validation (``localvoice/turns/tool_calls.py``). Models run one after the
other in one process; SmolLM2 is never offered tools (it cannot call them).

    taskset -c 0,1 .venv/bin/python -m bench.llm_eval
    .venv/bin/python -m bench.llm_eval --models qwen2.5-0.5b,qwen2.5-1.5b
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
import time
from typing import Any

from bench.speech_sets import (
    FACTS,
    NO_TOOL_REQUESTS,
    TOOL_REQUESTS,
    TOOLS,
    synth,
)
from localvoice.pipeline.llm import LlamaChat
from localvoice.pipeline.llms import registry
from localvoice.pipeline.llms.base import ChatFormat
from localvoice.pipeline.stages import ChatStats
from localvoice.pipeline.stt import WhisperStt
from localvoice.pipeline.weights import resolve
from localvoice.protocol.session_config import DEFAULT_INSTRUCTIONS
from localvoice.turns.tool_calls import ToolCall, check_call


async def reply(llm: LlamaChat, messages: list[dict[str, str]]) -> tuple[str, ChatStats, float]:
    stats = ChatStats()
    started = time.process_time()
    text = ""
    async for piece in llm.stream(
        messages, temperature=0.2, max_tokens=60, cancel=threading.Event(), stats=stats
    ):
        text += piece
    return text, stats, time.process_time() - started


async def tool_scores(llm: LlamaChat, fmt: ChatFormat, heard: dict[str, str]) -> dict[str, object]:
    """Tool-call precision and recall, with ``heard`` standing for what the user said."""
    tp = fp = 0
    tool_errors: list[str] = []
    cases: list[tuple[str, str | None, Any]] = [
        *TOOL_REQUESTS,
        *((s, None, None) for s in NO_TOOL_REQUESTS),
    ]
    for spoken, name, args in cases:
        said = heard[spoken]
        history = [{"role": "user", "content": said}]
        tools = TOOLS if fmt.supports_tools else []
        text, _, _ = await reply(llm, fmt.messages(DEFAULT_INSTRUCTIONS, history, tools))
        call = None
        if tools and fmt.tool_prefix(text):
            raw = fmt.parse_call(text)
            verdict = check_call(raw, tools, said) if raw else "unparseable"
            call = verdict if isinstance(verdict, ToolCall) else None
        right = (
            call is not None
            and args is not None
            and call.name == name
            and {k: str(v).lower() for k, v in json.loads(call.arguments).items()}
            == {k: str(v).lower() for k, v in args.items()}
        )
        if name is None:
            fp += call is not None
        elif right:
            tp += 1
        else:
            fp += call is not None  # a call, but the wrong one
        if (name is None) != (call is None) or (name is not None and not right):
            kind = "no tool" if name is None else "missed"
            tool_errors.append(f"{kind}: {said!r} -> {text.strip()[:90]!r}")
    return {
        "precision": round(tp / (tp + fp), 2) if tp + fp else None,
        "recall": round(tp / len(TOOL_REQUESTS), 2),
        "false_calls_on_no_tool_requests": sum(1 for e in tool_errors if e.startswith("no tool:")),
        "errors": tool_errors,
    }


async def evaluate(key: str, heard: dict[str, str]) -> dict[str, object]:
    fmt = registry.get(key)
    assert fmt.weights is not None
    llm = LlamaChat(resolve(fmt.weights), fmt, n_threads=1, n_threads_batch=2)
    correct, ttft, cpu = 0, [], 0.0
    wrong: list[str] = []
    for question, answers in FACTS:
        history = [{"role": "user", "content": question}]
        text, stats, spent = await reply(llm, fmt.messages(DEFAULT_INSTRUCTIONS, history))
        cpu += spent
        ttft.append(stats.first_token_ms or 0.0)
        if any(a in text.lower() for a in answers):
            correct += 1
        else:
            wrong.append(f"{question} -> {text.strip()[:80]}")
    ttft.sort()
    return {
        "facts_correct": f"{correct}/{len(FACTS)}",
        "facts_wrong_examples": wrong[:4],
        "ttft_p50_ms": round(ttft[len(ttft) // 2]),
        "cpu_s_per_answer": round(cpu / len(FACTS), 2),
        "tools_spoken": await tool_scores(llm, fmt, heard),
        # The same requests as written: what the model does when the words arrive intact.
        "tools_typed": await tool_scores(llm, fmt, {s: s for s in heard}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="smollm2-135m,qwen2.5-0.5b,qwen2.5-1.5b")
    args = parser.parse_args()
    stt = WhisperStt(model="tiny.en", cpu_threads=1)
    spoken = [r[0] for r in TOOL_REQUESTS] + NO_TOOL_REQUESTS
    heard = {s: stt.transcribe(synth(s, "en-us")) for s in spoken}
    misheard = sum(1 for s in spoken if heard[s].strip(" .?!").lower() != s.lower())
    print(f"{len(spoken)} spoken requests, {misheard} transcribed differently from the text")
    for key in args.models.split(","):
        try:
            result = asyncio.run(evaluate(key, heard))
        except Exception as exc:  # e.g. the quality model's packages are not installed
            print(f"{key}: skipped ({exc})")
            continue
        print(f"{key}: {json.dumps(result)}")


if __name__ == "__main__":
    main()
