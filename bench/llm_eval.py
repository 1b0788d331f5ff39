"""Factual accuracy per chat model (strict), and tool-call precision/recall.

Facts: the everyday questions of ``bench/facts.json`` as text, scored strictly by
``bench/facts.py``: right when an accepted answer appears and none of the question's wrong claims
does (a reply that also states something false is wrong). Tools: the 20 tool requests and 20
requests that need none are spoken (espeak-ng en-us), transcribed by Whisper tiny.en as the
engine does, and answered with the three tools of ``speech_sets.TOOLS`` offered, through the
engine's own prompt format, call detection (a call may follow a sentence), parser and validation
(``localvoice/turns/tool_calls.py``); and once more as written. Models run one after the other
in one process; SmolLM2 is never offered tools (it cannot call them).

    taskset -c 0,1 .venv/bin/python -m bench.llm_eval --models qwen2.5-0.5b,qwen2.5-1.5b
    .venv/bin/python -m bench.llm_eval --models qwen2.5-0.5b --rule " Answer in one short sentence."
    .venv/bin/python -m bench.llm_eval --instructions profile --no-tools --json out.json
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import threading
import time
from pathlib import Path
from typing import Any

from bench import facts
from bench.speech_sets import (
    HELD_OUT_NO_TOOL_REQUESTS,
    HELD_OUT_TOOL_REQUESTS,
    NO_TOOL_REQUESTS,
    TOOL_REQUESTS,
    TOOLS,
    synth,
)
from localvoice.pipeline.llm import LlamaChat
from localvoice.pipeline.llms import registry
from localvoice.pipeline.llms.base import ChatFormat
from localvoice.pipeline.stages import ChatStats
from localvoice.pipeline.weights import resolve
from localvoice.protocol.session_config import DEFAULT_INSTRUCTIONS
from localvoice.turns.response_spec import MAX_REPLY_TOKENS
from localvoice.turns.tool_calls import CallScanner, ToolCall, check_call


async def reply(
    llm: LlamaChat, messages: list[dict[str, str]], *, tools_offered: bool = False
) -> tuple[str, ChatStats, float]:
    stats = ChatStats()
    started = time.process_time()
    text = ""
    async for piece in llm.stream(
        messages,
        temperature=0.2,
        max_tokens=MAX_REPLY_TOKENS,
        cancel=threading.Event(),
        stats=stats,
        tools_offered=tools_offered,
    ):
        text += piece
    return text, stats, time.process_time() - started


def split_call(fmt: ChatFormat, text: str) -> tuple[str, str | None]:
    """(the speech, the call's text or None) as the engine splits a finished reply."""
    scanner = CallScanner(fmt.tool_prefix)
    speech = scanner.feed(text) + scanner.finish()
    return speech, scanner.call_text


async def tool_scores(
    llm: LlamaChat,
    fmt: ChatFormat,
    instructions: str,
    heard: dict[str, str],
    *,
    held_out: bool = False,
) -> dict[str, object]:
    """Tool-call precision and recall, with ``heard`` standing for what the user said."""
    tp = fp = after_speech = refused = 0
    tool_errors: list[str] = []
    requests = HELD_OUT_TOOL_REQUESTS if held_out else TOOL_REQUESTS
    no_tool = HELD_OUT_NO_TOOL_REQUESTS if held_out else NO_TOOL_REQUESTS
    cases: list[tuple[str, str | None, Any]] = [*requests, *((s, None, None) for s in no_tool)]
    for spoken, name, args in cases:
        said = heard[spoken]
        history = [{"role": "user", "content": said}]
        tools = TOOLS if fmt.supports_tools else []
        text, _, _ = await reply(
            llm, fmt.messages(instructions, history, tools), tools_offered=bool(tools)
        )
        call = None
        speech, call_text = split_call(fmt, text) if tools else (text, None)
        if call_text is not None:
            raw = fmt.parse_call(call_text)
            verdict = check_call(raw, tools, said) if raw else "unparseable"
            call = verdict if isinstance(verdict, ToolCall) else None
            after_speech += call is not None and bool(speech.strip())
            # The engine answers a refused call again without tools: a slower, right reply.
            refused += call is None and name is None
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
        "recall": round(tp / len(requests), 2),
        "false_calls_on_no_tool_requests": sum(1 for e in tool_errors if e.startswith("no tool:")),
        "refused_calls_on_no_tool_requests": refused,
        "calls_after_a_sentence": after_speech,
        "errors": tool_errors,
    }


async def fact_scores(llm: LlamaChat, fmt: ChatFormat, instructions: str) -> dict[str, object]:
    """Strict accuracy on ``bench/facts.json``, first-token time and CPU per answer."""
    questions = facts.load()
    right, ttft, cpu, words = 0, [], 0.0, 0
    wrong: list[str] = []
    for fact in questions:
        history = [{"role": "user", "content": fact.question}]
        text, stats, spent = await reply(llm, fmt.messages(instructions, history))
        cpu += spent
        words += len(text.split())
        ttft.append(stats.first_token_ms or 0.0)
        verdict = facts.verdict(fact, text)
        if verdict == "right":
            right += 1
        else:
            wrong.append(f"[{verdict}] {fact.question} -> {text.strip()[:110]}")
    ttft.sort()
    return {
        "facts_right": f"{right}/{len(questions)}",
        "facts_pct": round(100 * right / len(questions), 1),
        "facts_wrong": wrong,
        "ttft_p50_ms": round(ttft[len(ttft) // 2]),
        "cpu_s_per_answer": round(cpu / len(questions), 2),
        "words_per_answer": round(words / len(questions), 1),
    }


async def evaluate(
    key: str,
    instructions: str,
    rule: str | None,
    heard: dict[str, str] | None,
    *,
    facts_too: bool = True,
    spoken_too: bool = True,
    call_bias: float | None = None,
    held_out: bool = False,
) -> dict[str, object]:
    fmt = registry.get(key)
    if rule is not None:
        fmt.rule = rule  # this instance only: a candidate prompt rule
    if call_bias is not None:
        fmt.call_bias = call_bias  # this instance only: a candidate bias
    assert fmt.weights is not None
    llm = LlamaChat(resolve(fmt.weights), fmt, n_threads=1, n_threads_batch=2)
    result = await fact_scores(llm, fmt, instructions) if facts_too else {}
    if heard is not None:
        if spoken_too:
            result["tools_spoken"] = await tool_scores(llm, fmt, instructions, heard)
        # The same requests as written: what the model does when the words arrive intact.
        result["tools_typed"] = await tool_scores(llm, fmt, instructions, {s: s for s in heard})
        if held_out:
            typed = {
                s: s for s in [r[0] for r in HELD_OUT_TOOL_REQUESTS] + HELD_OUT_NO_TOOL_REQUESTS
            }
            result["tools_typed_held_out"] = await tool_scores(
                llm, fmt, instructions, typed, held_out=True
            )
    return result


def instructions_text(name: str) -> str:
    """``localvoice``: its own default; ``profile``: the product's default profile's."""
    if name == "localvoice":
        return DEFAULT_INSTRUCTIONS
    migration = importlib.import_module("assistant.migrations.0013_default_instructions")
    return str(migration.NEW_INSTRUCTIONS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="qwen2.5-0.5b,qwen2.5-1.5b")
    parser.add_argument("--instructions", choices=("localvoice", "profile"), default="localvoice")
    parser.add_argument("--rule", help="replace the model's prompt rule (a candidate)")
    parser.add_argument("--no-tools", action="store_true", help="facts only")
    parser.add_argument("--no-facts", action="store_true", help="tool calls only")
    parser.add_argument("--typed-only", action="store_true", help="tool requests as written only")
    parser.add_argument("--json", type=Path, help="write every result here")
    parser.add_argument(
        "--call-bias", type=float, help="replace the models' first-token bias towards a call"
    )
    parser.add_argument(
        "--held-out", action="store_true", help="also the written requests kept out of tuning"
    )
    args = parser.parse_args()
    heard: dict[str, str] | None = None
    if not args.no_tools:
        from localvoice.pipeline.stt import WhisperStt

        stt = WhisperStt(model="tiny.en", cpu_threads=1)
        spoken = [r[0] for r in TOOL_REQUESTS] + NO_TOOL_REQUESTS
        heard = {s: stt.transcribe(synth(s, "en-us")) for s in spoken}
        misheard = sum(1 for s in spoken if heard[s].strip(" .?!").lower() != s.lower())
        print(f"{len(spoken)} spoken requests, {misheard} transcribed differently from the text")
    instructions = instructions_text(args.instructions)
    results = {}
    for key in args.models.split(","):
        try:
            result = asyncio.run(
                evaluate(
                    key,
                    instructions,
                    args.rule,
                    heard,
                    facts_too=not args.no_facts,
                    spoken_too=not args.typed_only,
                    call_bias=args.call_bias,
                    held_out=args.held_out,
                )
            )
        except Exception as exc:  # e.g. the quality model's packages are not installed
            print(f"{key}: skipped ({exc})")
            continue
        results[key] = result
        print(f"{key}: {json.dumps(result, indent=1)}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
