"""Turn latency as simultaneous localvoice sessions grow: 1, 2, 4 sessions speaking at once.

Every session streams its turns in real time at the same moments, so the sessions' turns end
together: the worst case for a 2-core machine where STT, LLM and TTS each have one worker.

    .venv/bin/python -m bench.concurrency --levels 1,2,4 --turns 4 --silence-ms 400
"""

from __future__ import annotations

import argparse
import asyncio
import json

from bench.turn_latency import (
    SENTENCES,
    Turn,
    machine_load,
    peak_rss_mb,
    run_session,
)
from tests.support.localvoice import LocalVoiceProcess
from tests.support.stats import percentile


async def level(endpoint: str, sessions: int, turns: int, silence_ms: int) -> list[list[Turn]]:
    """Run ``sessions`` sessions at once; each speaks ``turns`` sentences."""
    plans = [
        [SENTENCES[(s * 3 + t) % len(SENTENCES)] for t in range(turns)] for s in range(sessions)
    ]
    return list(await asyncio.gather(*(run_session(endpoint, plan, silence_ms) for plan in plans)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="1,2,4")
    parser.add_argument("--turns", type=int, default=4, help="turns per session")
    parser.add_argument("--silence-ms", type=int, default=400)
    parser.add_argument("--endpoint", help="use this localvoice instead of starting one")
    parser.add_argument("--threads", type=int, default=2, help="--threads for the server")
    parser.add_argument("--server-flags", default="", help="more localvoice flags, one string")
    args = parser.parse_args()
    flags = ["--threads", str(args.threads), *args.server_flags.split()]
    server = None if args.endpoint else LocalVoiceProcess(*flags).start(timeout=180)
    endpoint = args.endpoint or (server.endpoint if server else "")
    rows = []
    try:
        for sessions in (int(x) for x in args.levels.split(",")):
            results = asyncio.run(level(endpoint, sessions, args.turns, args.silence_ms))
            latencies = [t.latency_ms for session in results for t in session]
            per_session = [
                round(percentile([t.latency_ms for t in session], 50)) for session in results
            ]
            row = {
                "sessions": sessions,
                "turns": len(latencies),
                "p50_ms": round(percentile(latencies, 50)),
                "p95_ms": round(percentile(latencies, 95)),
                "max_ms": round(max(latencies)),
                "per_session_p50_ms": per_session,
                "machine_load_after": machine_load(),
            }
            rows.append(row)
            print(json.dumps(row))
        rss = peak_rss_mb(server.process.pid) if server and server.process else None
    finally:
        if server:
            server.stop()
    print(f"silence_duration_ms={args.silence_ms} server_peak_rss_mb={round(rss) if rss else None}")
    print("| sessions | turns | p50 ms | p95 ms | max ms | per-session p50 ms |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['sessions']} | {r['turns']} | {r['p50_ms']} | {r['p95_ms']} | {r['max_ms']} "
            f"| {', '.join(map(str, r['per_session_p50_ms']))} |"
        )


if __name__ == "__main__":
    main()
