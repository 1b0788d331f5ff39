"""The chat model alone: N replies asked at the same moment, time to each one's first chunk.

What ``bench/concurrency.py`` measures end to end, without speech recognition and synthesis:
N conversations (the default instructions and tools, one question each) have their prompt
prefilled, then all N replies are asked at once; the time to each reply's first three words
(the first spoken chunk) and to its end is recorded. ``--compare-with DIR`` runs another
checkout's ``LlamaChat`` in its own process, alternating with this one's at every round.

    taskset -c 0,1 .venv/bin/python -m bench.llm_concurrency --levels 1,2,4,8 --rounds 2 \\
        --compare-with /tmp/llm-base
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

QUESTIONS = [
    "What is the capital of France",
    "Tell me a joke about computers",
    "How do I make a cup of tea",
    "Can you recommend a good book about history",
    "How many people live in London",
    "What is the weather like in Paris today",
    "Please set a timer for ten minutes",
    "What time does the sun set tonight",
]
FIRST_CHUNK_WORDS = 3


async def one_level(llm: Any, fmt: Any, sessions: int) -> list[dict[str, float]]:
    """Prefill ``sessions`` conversations, then ask all their replies at once."""
    from bench.speech_sets import TOOLS
    from localvoice.pipeline.stages import ChatStats
    from localvoice.protocol.session_config import DEFAULT_INSTRUCTIONS

    prompts = []
    for n in range(sessions):
        question = QUESTIONS[n % len(QUESTIONS)] + f" (conversation {n})"
        prompts.append(
            fmt.messages(DEFAULT_INSTRUCTIONS, [{"role": "user", "content": question}], TOOLS)
        )
        llm.prefill(prompts[-1])
    await asyncio.sleep(0.5 + 1.5 * sessions)  # the users are still speaking

    async def ask(messages: list[dict[str, str]]) -> dict[str, float]:
        started = time.perf_counter()
        first_chunk = None
        text = ""
        async for piece in llm.stream(
            messages, temperature=0.2, max_tokens=60, cancel=threading.Event(), stats=ChatStats()
        ):
            text += piece
            if first_chunk is None and len(text.split()) > FIRST_CHUNK_WORDS:
                first_chunk = time.perf_counter()
        done = time.perf_counter()
        return {
            "first_chunk_ms": ((first_chunk or done) - started) * 1000,
            "reply_ms": (done - started) * 1000,
        }

    return list(await asyncio.gather(*(ask(p) for p in prompts)))


def child(levels: list[int]) -> None:
    """Load this process's ``LlamaChat`` and print one JSON line per level."""
    from localvoice.pipeline.llm import LlamaChat
    from localvoice.pipeline.llms import registry
    from localvoice.pipeline.weights import resolve

    fmt = registry.get("qwen2.5-0.5b")
    assert fmt.weights is not None
    llm = LlamaChat(resolve(fmt.weights), fmt, n_threads=1, n_threads_batch=2)
    for sessions in levels:
        replies = asyncio.run(one_level(llm, fmt, sessions))
        print(json.dumps({"sessions": sessions, "replies": replies}), flush=True)


def run(tree: Path | None, levels: list[int]) -> dict[int, list[dict[str, float]]]:
    """One child process (another checkout's code with ``tree``); its replies per level."""
    # The script by its path, -P: the other checkout's packages come first, even ``bench``.
    argv = [sys.executable, "-P", __file__, "--child", "--levels"]
    env = {**os.environ, "PYTHONPATH": str(tree) if tree else str(Path.cwd())}
    out = subprocess.run(
        [*argv, ",".join(map(str, levels))], env=env, capture_output=True, text=True, check=True
    )
    rows = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    return {r["sessions"]: r["replies"] for r in rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="1,2,4,8")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--compare-with", type=Path, metavar="DIR")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    if args.child:
        child(levels)
        return
    from bench.turn_latency import machine_load
    from tests.support.stats import percentile

    trees: dict[str, Path | None] = {"new": None}
    if args.compare_with:
        trees = {"old": args.compare_with.resolve(), "new": None}
    results: dict[tuple[str, int], list[dict[str, float]]] = {}
    for round_index in range(args.rounds):
        names = list(trees) if round_index % 2 == 0 else list(reversed(trees))
        for name in names:
            for sessions, replies in run(trees[name], levels).items():
                results.setdefault((name, sessions), []).extend(replies)
            print(json.dumps({"round": round_index, "server": name, "load": machine_load()}))
    print("| code | replies at once | first chunk p50 / p95 ms | whole reply p50 ms |")
    print("|---|---|---|---|")
    for (name, sessions), replies in sorted(results.items(), key=lambda kv: kv[0][::-1]):
        chunks = [r["first_chunk_ms"] for r in replies]
        whole = [r["reply_ms"] for r in replies]
        print(
            f"| {name} | {sessions} | {percentile(chunks, 50):.0f} / {percentile(chunks, 95):.0f} "
            f"| {percentile(whole, 50):.0f} |"
        )


if __name__ == "__main__":
    main()
