"""Turn latency as simultaneous localvoice sessions grow: 1, 2, 4, 8 sessions speaking at once.

Every session streams its turns in real time at the same moments, so the sessions' turns end
together: the worst case for a 2-core machine where STT and TTS each have one worker and the
chat model serves every session from one thread. Between turns each session listens to its
reply (silence streamed until it has played out) and waits for the others. ``--spreads N``
starts session i of n i * N / n ms late instead, as users who talk at the same time but not in
step (``--spreads 0,3000`` runs both at every level, interleaved, to compare them in one run).

    .venv/bin/python -m bench.concurrency --levels 1,2,4,8 --turns 3 --silence-ms 400

``--compare-with DIR`` runs a second server from another checkout of the repository (say the
code before a change: ``git worktree add /tmp/llm-base <commit>``) with this checkout's
environment, and alternates the two at every level and round, so both see the same machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench.turn_latency import (
    SENTENCES,
    Turn,
    machine_load,
    peak_rss_mb,
    run_session,
)
from tests.support.localvoice import LocalVoiceProcess
from tests.support.stats import percentile

#: A turn whose reply had more silence inside it than this counts as stalled.
STALL_MS = 200


class CheckoutLocalVoice(LocalVoiceProcess):
    """localvoice run from another checkout's source (the installed packages are this one's)."""

    def __init__(self, tree: Path, *flags: str) -> None:
        super().__init__(*flags)
        self.tree = tree

    def _spawn(self, argv: list[str], env: Mapping[str, str] | None = None) -> None:
        # -P: the working directory (this checkout) is not put before PYTHONPATH.
        argv = [argv[0], "-P", *argv[1:]]
        super()._spawn(argv, {**(env or os.environ), "PYTHONPATH": str(self.tree)})


async def level(
    endpoint: str, sessions: int, turns: int, silence_ms: int, spread_ms: int = 0
) -> tuple[list[Turn], int]:
    """Run ``sessions`` sessions at once; each speaks ``turns`` sentences.

    Session i starts ``i * spread_ms / sessions`` ms after the first (0: all in step).
    Returns the measured turns and the sessions that failed (an error or a timeout).
    """
    plans = [
        [SENTENCES[(s * 3 + t) % len(SENTENCES)] for t in range(turns)] for s in range(sessions)
    ]

    # In step: every session speaks its next turn once all the replies have played out.
    in_step = asyncio.Barrier(sessions) if spread_ms == 0 else None

    async def session(index: int, plan: list[str]) -> list[Turn]:
        await asyncio.sleep(index * spread_ms / sessions / 1000)
        try:
            return await run_session(
                endpoint, plan, silence_ms, between_turns=in_step.wait if in_step else None
            )
        except BaseException:
            if in_step is not None:
                await in_step.abort()  # the others stop waiting for this one
            raise

    results = await asyncio.gather(
        *(session(i, plan) for i, plan in enumerate(plans)), return_exceptions=True
    )
    measured = [t for r in results if not isinstance(r, BaseException) for t in r]
    return measured, sum(isinstance(r, BaseException) for r in results)


def row(name: str, sessions: int, turns: list[Turn], failed: int) -> dict[str, Any]:
    """The figures of one server (and spread) at one level."""
    latencies: list[float | None] = [t.latency_ms for t in turns]
    return {
        "server": name,
        "sessions": sessions,
        "turns": len(turns),
        "failed_sessions": failed,
        "silent_replies": sum(not t.reply.strip() for t in turns),
        "p50_ms": _percentile(latencies, 50),
        "p95_ms": _percentile(latencies, 95),
        "max_ms": _percentile(latencies, 100),
        "llm_first_token_p50_ms": _percentile([t.stages.get("llm_first_token") for t in turns], 50),
        # Silence inside replies (audio late for its playback): the price of a short first chunk.
        "stall_ms_mean": round(sum(t.stall_ms for t in turns) / len(turns)) if turns else None,
        "turns_stalled_over_200_ms": sum(t.stall_ms > STALL_MS for t in turns),
        # Where the time goes: each stage's p50 (ms from the response's creation).
        "stages_p50_ms": {
            name: _percentile([t.stages.get(name) for t in turns], 50)
            for name in sorted({k for t in turns for k in t.stages})
        },
    }


def _percentile(values: list[float | None], p: float) -> int | None:
    """``None`` when no turn was measured (every session failed)."""
    present = [v for v in values if v is not None]
    if not present:
        return None
    return round(max(present) if p == 100 else percentile(present, p))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="1,2,4")
    parser.add_argument("--turns", type=int, default=4, help="turns per session")
    parser.add_argument("--rounds", type=int, default=1, help="interleaved rounds")
    parser.add_argument("--silence-ms", type=int, default=400)
    parser.add_argument(
        "--spreads",
        default="0",
        help="comma-separated ms over which the sessions' starts are spread (0: in step)",
    )
    parser.add_argument("--endpoint", help="use this localvoice instead of starting one")
    parser.add_argument("--threads", type=int, default=2, help="--threads for the server")
    parser.add_argument("--server-flags", default="", help="more localvoice flags, one string")
    parser.add_argument(
        "--compare-with", type=Path, metavar="DIR", help="also run the server of this checkout"
    )
    args = parser.parse_args()
    flags = ["--threads", str(args.threads), *args.server_flags.split()]
    spreads = [int(x) for x in args.spreads.split(",")]
    servers: dict[str, LocalVoiceProcess] = {}
    endpoints: dict[str, str] = {}
    try:
        if args.endpoint:
            endpoints["given"] = args.endpoint
        else:
            if args.compare_with:
                servers["old"] = CheckoutLocalVoice(args.compare_with.resolve(), *flags)
            servers["new" if args.compare_with else "this"] = LocalVoiceProcess(*flags)
            for server in servers.values():
                server.start(timeout=300)
            endpoints = {name: server.endpoint for name, server in servers.items()}
        results: dict[tuple[str, int], tuple[list[Turn], int]] = {}
        for round_index in range(args.rounds):
            for sessions in (int(x) for x in args.levels.split(",")):
                runs = [(name, spread) for spread in spreads for name in endpoints]
                if round_index % 2:
                    runs.reverse()
                for run_server, spread in runs:
                    name = run_server if spreads == [0] else f"{run_server} spread {spread} ms"
                    endpoint = endpoints[run_server]
                    turns, failed = asyncio.run(
                        level(endpoint, sessions, args.turns, args.silence_ms, spread)
                    )
                    kept, lost = results.get((name, sessions), ([], 0))
                    results[(name, sessions)] = (kept + turns, lost + failed)
                    out = row(name, sessions, turns, failed)
                    print(json.dumps({**out, "round": round_index, "load": machine_load()}))
        rss = {
            name: round(peak_rss_mb(s.process.pid) or 0) for name, s in servers.items() if s.process
        }
    finally:
        for server in servers.values():
            server.stop()
    print(f"silence_duration_ms={args.silence_ms} server_peak_rss_mb={rss}")
    print(f"load after: {machine_load()}")
    print(
        "| server | sessions | turns | failed | p50 ms | p95 ms | max ms | LLM first token p50 "
        "| stall ms, mean | turns stalled > 200 ms |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for (name, sessions), (turns, failed) in sorted(results.items(), key=lambda kv: kv[0][::-1]):
        r = row(name, sessions, turns, failed)
        print(
            f"| {name} | {sessions} | {r['turns']} | {failed + r['silent_replies']} "
            f"| {r['p50_ms']} | {r['p95_ms']} | {r['max_ms']} | {r['llm_first_token_p50_ms']} "
            f"| {r['stall_ms_mean']} | {r['turns_stalled_over_200_ms']} |"
        )


if __name__ == "__main__":
    main()
