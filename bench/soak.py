"""Relay soak: many sessions for minutes with zero loss and flat memory, then churn.

Phase 1: ``--sessions`` browsers stream real-time audio through Daphne + VoiceConsumer to the
echo upstream for ``--minutes``; the worker's RSS and open fds are sampled every
``--sample`` seconds (start/end/max and a least-squares slope are reported).
Phase 2: ``--cycles`` connect/stream/close cycles of ``--cycle-sessions`` browsers each;
RSS and fds before and after (and after a settle pause).

    .venv/bin/python -m bench.soak --sessions 50 --minutes 10 --frame-ms 40 --cycles 100
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import tempfile
import time
from pathlib import Path

from bench._common import REPO, children, cpu_seconds, fd_count, git_rev, rss_mb, uptime
from bench._loadgen import PointResult, run_point
from bench.load import GEN_CPU, Rig, rig_build, target_for


def slope_mb_per_min(samples: list[tuple[float, float]]) -> float:
    if len(samples) < 2:
        return 0.0
    n = len(samples)
    mx = sum(t for t, _ in samples) / n
    my = sum(v for _, v in samples) / n
    den = sum((t - mx) ** 2 for t, _ in samples)
    return 60.0 * sum((t - mx) * (v - my) for t, v in samples) / den if den else 0.0


async def sampler(pid: int, period: float, out: list[dict[str, float]]) -> None:
    t0 = time.monotonic()
    cpu0 = cpu_seconds(pid)
    while True:
        now = time.monotonic()
        out.append(
            {
                "t": round(now - t0, 1),
                "rss_mb": round(rss_mb(pid), 2),
                "fds": fd_count(pid),
                "cpu_s": round(cpu_seconds(pid) - cpu0, 2),
            }
        )
        await asyncio.sleep(period)


async def soak(rig: Rig, args: argparse.Namespace) -> tuple[PointResult, list[dict[str, float]]]:
    target, server, _ = target_for(rig, "relay", args.sessions)
    samples: list[dict[str, float]] = []
    task = asyncio.create_task(sampler(server.pid, args.sample, samples))
    try:
        result = await run_point(
            target,
            sessions=args.sessions,
            frame_ms=args.frame_ms,
            seconds=args.minutes * 60.0,
            warmup=2.0,
            deadline_ms=args.deadline_ms,
        )
    finally:
        task.cancel()
    samples.append({"t": -1, "rss_mb": round(rss_mb(server.pid), 2), "fds": fd_count(server.pid)})
    return result, samples


async def churn(rig: Rig, args: argparse.Namespace) -> dict[str, object]:
    target, server, _ = target_for(rig, "relay", args.cycle_sessions)
    before = {"rss_mb": rss_mb(server.pid), "fds": fd_count(server.pid)}
    sent = received = late = refused = 0
    for _ in range(args.cycles):
        r = await run_point(
            target,
            sessions=args.cycle_sessions,
            frame_ms=args.frame_ms,
            seconds=args.cycle_seconds,
            warmup=0.0,
            deadline_ms=args.deadline_ms,
            grace=0.3,
        )
        sent, received, late, refused = (
            sent + r.sent,
            received + r.received,
            late + r.late,
            refused + r.refused,
        )
    after = {"rss_mb": rss_mb(server.pid), "fds": fd_count(server.pid)}
    await asyncio.sleep(args.settle)
    settled = {"rss_mb": rss_mb(server.pid), "fds": fd_count(server.pid)}
    return {
        "cycles": args.cycles,
        "sessions_per_cycle": args.cycle_sessions,
        "sent": sent,
        "received": received,
        "lost": sent - received,
        "late": late,
        "refused": refused,
        "before": before,
        "after": after,
        "after_settle": settled,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--frame-ms", type=int, default=40)
    parser.add_argument("--sample", type=float, default=10.0)
    parser.add_argument("--deadline-ms", type=float, default=200.0)
    parser.add_argument("--cycles", type=int, default=100)
    parser.add_argument("--cycle-sessions", type=int, default=10)
    parser.add_argument("--cycle-seconds", type=float, default=1.0)
    parser.add_argument("--settle", type=float, default=10.0)
    parser.add_argument("--cap", type=int, default=10_000, help="VOICE_MAX_SESSIONS_PER_WORKER")
    parser.add_argument("--app-dir", type=Path, default=REPO)
    parser.add_argument(
        "--server-env", action="append", default=[], help="KEY=VALUE for the worker under test"
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    app_dir = args.app_dir.resolve()
    stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    print(f"# {stamp} app={app_dir} rev={git_rev(app_dir)} {uptime()}", flush=True)
    os.sched_setaffinity(0, GEN_CPU)
    report: dict[str, object] = {"args": {k: str(v) for k, v in vars(args).items()}}
    with tempfile.TemporaryDirectory(prefix="relay-soak-") as tmp, children(Path(tmp)) as kids:
        extra = dict(kv.split("=", 1) for kv in args.server_env)
        accounts = max(args.sessions, args.cycle_sessions)
        rig = rig_build(kids, app_dir, Path(tmp), accounts, extra)
        rig.relay_start(args.cap)
        assert rig.relay is not None
        pid = rig.relay.pid
        report["idle"] = {"rss_mb": rss_mb(pid), "fds": fd_count(pid), "load": uptime()}
        if args.minutes > 0:
            result, samples = asyncio.run(soak(rig, args))
            live = [s for s in samples if s["t"] >= 0]
            rss = [s["rss_mb"] for s in live]
            report["soak"] = {
                "sessions": result.admitted,
                "refused": result.refused,
                "sent": result.sent,
                "received": result.received,
                "lost": result.lost,
                "late": result.late,
                "p50": result.p50,
                "p99": result.p99,
                "max": result.max,
                "rss_start": rss[0],
                "rss_first_live": rss[1] if len(rss) > 1 else rss[0],
                "rss_end": rss[-1],
                "rss_max": max(rss),
                # slope over the streaming part, after the first minute of warm-up
                "rss_slope_mb_per_min": round(
                    slope_mb_per_min([(s["t"], s["rss_mb"]) for s in live if s["t"] >= 60]), 3
                ),
                "after_close": samples[-1],
                "server_cores": round(live[-1]["cpu_s"] / max(1.0, live[-1]["t"]), 3),
                "load_end": uptime(),
            }
            report["samples"] = samples
            print(json.dumps(report["soak"]), flush=True)
        if args.cycles > 0:
            report["churn"] = asyncio.run(churn(rig, args))
            print(json.dumps(report["churn"]), flush=True)
        report["end"] = {"rss_mb": rss_mb(pid), "fds": fd_count(pid), "load": uptime()}
        print(json.dumps(report["end"]), flush=True)
    if args.out is not None:
        args.out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
