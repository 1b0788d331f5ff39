"""Relay load benchmark: Daphne + VoiceConsumer vs direct upstream vs a Daphne echo floor.

N simulated browsers (aiohttp websockets, one logged-in Django user each, session cookie +
Origin) stream real-time PCM16 24 kHz through three paths, one after another in the same run
(for ``relay`` the worker's own event-loop lag over the measured window is read from its
/metrics: ``loop99`` is the p99 of ``voice_event_loop_lag_seconds``, ``loopmax<=`` the upper
bound of its highest bucket reached):

* ``relay``  browser -> Daphne + VoiceConsumer -> azure-ai-voicelive SDK -> echo upstream -> back
* ``direct`` browser -> echo upstream (raw JSON + base64 appends, as the SDK sends them)
* ``floor``  browser -> Daphne + a minimal echo consumer (``bench/echo_asgi.py``)

The server under test is pinned to CPU 1; the load generator and the echo upstream to CPU 0
(for ``direct`` the upstream *is* the server, so it moves to CPU 1 for those runs).

Examples::

    .venv/bin/python -m bench.load --frames 20,40,100 --sessions 25,50,100,200,300
    .venv/bin/python -m bench.load --frames 40 --sessions 200 --paths relay --app-dir /tmp/perf-wt
    .venv/bin/python -m bench.load --admission 130 --cap 100 --frames 40   # GB4
    # every user with a quota (checked every heartbeat), a 1 s heartbeat, persistent connections:
    .venv/bin/python -m bench.load --frames 100 --sessions 300 --paths relay,floor \
        --quota-minutes 100000 --server-env VOICE_HEARTBEAT_SECONDS=1 \
        --server-env DJANGO_CONN_MAX_AGE=60
    # tracing on vs off, interleaved in one run, with a collector stub receiving the spans:
    .venv/bin/python -m bench.load --frames 100 --sessions 300 --seconds 20 --warmup 3 \
        --otlp-stub --compare-env 'OTEL_EXPORTER_OTLP_ENDPOINT=;OTEL_EXPORTER_OTLP_ENDPOINT={otlp}'
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import json
import math
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench._common import (
    HOST,
    PYTHON,
    REPO,
    Child,
    Children,
    accounts_create,
    children,
    cpu_seconds,
    daphne_argv,
    free_port,
    git_rev,
    pin,
    rss_mb,
    server_env,
    uptime,
    wait_port,
    wait_quiet,
)
from bench._loadgen import PointResult, Target, run_point
from bench._metrics import WindowScrape

SERVER_CPU = {1}
GEN_CPU = {0}


@dataclasses.dataclass
class Rig:
    """The processes of one benchmark run."""

    kids: Children
    app_dir: Path
    db: Path
    cookie: str
    keys: list[str]
    upstream: Child
    upstream_port: int
    floor: Child | None = None
    floor_port: int = 0
    relay: Child | None = None
    relay_port: int = 0
    relay_cap: int = 0

    relay_dir: Path | None = None
    relay_extra: dict[str, str] = dataclasses.field(default_factory=dict)
    relay_env: dict[str, str] = dataclasses.field(default_factory=dict)  # the running worker's

    def relay_start(self, cap: int, app_dir: Path | None = None) -> None:
        """(Re)start the worker under test, from ``app_dir`` (default: the rig's code)."""
        app_dir = app_dir or self.app_dir
        if (
            self.relay is not None
            and self.relay_cap == cap
            and self.relay_dir == app_dir
            and self.relay_env == self.relay_extra
        ):
            return
        if self.relay is not None:
            self.kids.stop(self.relay)
        self.relay_port = free_port()
        env = server_env(
            app_dir=app_dir,
            db_path=self.db,
            upstream_port=self.upstream_port,
            max_sessions=cap,
            extra=self.relay_extra,
        )
        self.relay = self.kids.start(
            f"relay-{self.relay_port}",
            daphne_argv("voiceproject.asgi:application", self.relay_port),
            cwd=app_dir,
            env=env,
            cpus=SERVER_CPU,
        )
        self.relay_cap = cap
        self.relay_dir = app_dir
        self.relay_env = dict(self.relay_extra)
        wait_port(self.relay_port)

    def floor_start(self) -> None:
        if self.floor is not None:
            return
        self.floor_port = free_port()
        env = dict(os.environ, PYTHONPATH=str(REPO))
        self.floor = self.kids.start(
            f"floor-{self.floor_port}",
            daphne_argv("bench.echo_asgi:application", self.floor_port),
            cwd=REPO,
            env=env,
            cpus=SERVER_CPU,
        )
        wait_port(self.floor_port)


def rig_build(
    kids: Children,
    app_dir: Path,
    workdir: Path,
    accounts: int,
    relay_extra: dict[str, str] | None = None,
    quota_minutes: int = 0,
) -> Rig:
    """Echo upstream (``python -m localvoice --echo``) + bench database with ``accounts`` users.

    ``relay_extra``: the worker's extra settings, also used to log the users in (with
    ``DJANGO_DEBUG=0`` the session cookie has another name).
    """
    db = workdir / "bench.sqlite3"
    upstream_port = free_port()
    argv = [PYTHON, "-m", "localvoice", "--host", HOST, "--port", str(upstream_port), "--echo"]
    argv += ["--log-level", "WARNING", "--no-auth"]  # the relay's cost, not the handshake
    upstream = kids.start(
        f"upstream-{upstream_port}",
        argv,
        cwd=REPO,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        cpus=GEN_CPU,
    )
    env = server_env(
        app_dir=app_dir, db_path=db, upstream_port=upstream_port, max_sessions=1, extra=relay_extra
    )
    cookie, keys = accounts_create(env, app_dir, accounts, quota_minutes)
    wait_port(upstream_port)
    rig = Rig(kids, app_dir, db, cookie, keys, upstream, upstream_port)
    rig.relay_extra = dict(relay_extra or {})
    return rig


def target_for(rig: Rig, path: str, sessions: int) -> tuple[Target, Child, list[Child]]:
    """(target, server process, other processes whose CPU is reported)."""
    if path == "relay":
        assert rig.relay is not None
        origin = f"http://{HOST}:{rig.relay_port}"
        headers = [
            {"Cookie": f"{rig.cookie}={key}", "Origin": origin} for key in rig.keys[:sessions]
        ]
        url = f"ws://{HOST}:{rig.relay_port}/ws/voice/"
        return Target("relay", url, headers, wait_ready=True), rig.relay, [rig.upstream]
    if path == "floor":
        assert rig.floor is not None
        url = f"ws://{HOST}:{rig.floor_port}/ws/echo/"
        return Target("floor", url, [{}], wait_ready=False), rig.floor, []
    url = f"ws://{HOST}:{rig.upstream_port}/voice-live/realtime?api-version=bench&model=echo"
    return Target("direct", url, [{"api-key": "bench"}], wait_ready=False), rig.upstream, []


def measure(
    rig: Rig,
    path: str,
    *,
    sessions: int,
    frame_ms: int,
    seconds: float,
    warmup: float,
    deadline_ms: float,
) -> PointResult:
    target, server, others = target_for(rig, path, sessions)
    if path == "direct":
        pin(rig.upstream.pid, SERVER_CPU)
    load = uptime()
    samples: dict[str, float] = {}
    # The worker's own event-loop lag over exactly the measured window (relay only: the floor
    # and the upstream have no /metrics).
    loop_lag = WindowScrape(rig.relay_port) if path == "relay" else None

    def on_window(start: bool) -> None:
        if loop_lag is not None:
            loop_lag.mark(start)
        tag = "0" if start else "1"
        samples[f"t{tag}"] = time.monotonic()
        samples[f"cpu{tag}"] = cpu_seconds(server.pid)
        for i, other in enumerate(others):
            samples[f"o{i}cpu{tag}"] = cpu_seconds(other.pid)
        if not start:
            samples["rss_live"] = rss_mb(server.pid)

    rss_idle = rss_mb(server.pid)
    try:
        result = asyncio.run(
            run_point(
                target,
                sessions=sessions,
                frame_ms=frame_ms,
                seconds=seconds,
                warmup=warmup,
                deadline_ms=deadline_ms,
                on_window=on_window,
            )
        )
    finally:
        if path == "direct":
            pin(rig.upstream.pid, GEN_CPU)
    span = samples["t1"] - samples["t0"]
    cores = (samples["cpu1"] - samples["cpu0"]) / span
    result.extra = {
        "server_cores": round(cores, 3),
        "cpu_pct_per_session": round(100 * cores / max(1, result.admitted), 3),
        "us_per_frame": round(1e6 * cores * span / max(1, result.sent), 1),
        "rss_idle_mb": round(rss_idle, 1),
        "rss_live_mb": round(samples["rss_live"], 1),
        "upstream_cores": round(
            (samples.get("o0cpu1", 0.0) - samples.get("o0cpu0", 0.0)) / span, 3
        ),
        "load_before": load,
        "load_after": uptime(),
        "server_alive": server.proc.poll() is None,
    }
    lag = loop_lag.result() if loop_lag is not None else None
    result.extra["loop_lag"] = dataclasses.asdict(lag) if lag is not None else None
    result.extra["loop_lag_text"] = lag.text() if lag is not None else ""
    return result


def otlp_stub_start(kids: Children) -> str:
    """Start the collector stub (bench/otlp_stub.py); returns its OTLP/HTTP endpoint."""
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(REPO))
    argv = [str(PYTHON), "-m", "bench.otlp_stub", "--port", str(port), "--every", "1"]
    kids.start("otlp-stub", argv, cwd=REPO, env=env, cpus=GEN_CPU)
    wait_port(port)
    return f"http://{HOST}:{port}"


def otlp_stub_count(kids: Children) -> str:
    """What the stub last said it received (``requests=N spans=M``)."""
    lines = (kids.logdir / "otlp-stub.log").read_text().splitlines()
    return lines[-1] if lines else "nothing"


def fmt(r: PointResult) -> str:
    x = r.extra
    return (
        f"{r.path:6} {r.frame_ms:3d}ms n={r.sessions:3d} adm={r.admitted:3d} ref={r.refused:3d} "
        f"p50={r.p50:7.2f} p95={r.p95:7.2f} p99={r.p99:8.2f} max={r.max:8.1f} "
        f"sent={r.sent} recv={r.received} lost={r.lost} late={r.late} "
        f"srv={x['server_cores']:.3f}c ({x['cpu_pct_per_session']:.2f}%/sess, "
        f"{x['us_per_frame']:.0f}us/frame) up={x['upstream_cores']:.3f}c gen={r.gen_cpu:.2f}c "
        f"lag99={r.sender_lag_p99_ms:.1f}ms rss={x['rss_idle_mb']:.0f}->{x['rss_live_mb']:.0f}MB "
        f"conn95={r.connect_p95_ms:.0f}ms "
        + (f"{x['loop_lag_text']} " if x.get("loop_lag_text") else "")
        + f"[{x['load_before']}]"
    )


def clean(r: PointResult) -> bool:
    return r.lost == 0 and r.late == 0 and r.refused == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", default="20,40,100", help="frame sizes in ms")
    parser.add_argument("--sessions", default="25,50,100,200,300")
    parser.add_argument("--paths", default="relay,direct,floor")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per point")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--deadline-ms", type=float, default=200.0, help="playout deadline")
    parser.add_argument("--refine", type=int, default=0, help="bisection steps after a failure")
    parser.add_argument("--app-dir", type=Path, default=REPO, help="code under test")
    parser.add_argument("--admission", type=int, default=0, help="GB4: sessions offered")
    parser.add_argument("--cap", type=int, default=0, help="GB4: VOICE_MAX_SESSIONS_PER_WORKER")
    parser.add_argument("--max-load", type=float, default=0.0, help="wait for load1 below this")
    parser.add_argument("--out", type=Path, default=None, help="append JSON lines here")
    parser.add_argument(
        "--compare",
        default="",
        help="comma-separated code dirs: each variant's relay per point, --repeat rounds (and "
        "the floor once per round when --paths names it)",
    )
    parser.add_argument(
        "--compare-env",
        default="",
        help="';'-separated settings variants of the worker, e.g. 'HISTORY_RECORDING=1;"
        "HISTORY_RECORDING=0' (each variant a ','-separated KEY=VALUE list): relay only, "
        "each variant per point, --repeat rounds",
    )
    parser.add_argument(
        "--otlp-stub",
        action="store_true",
        help="start a collector stub (bench/otlp_stub.py, on the load generator's CPU) and put "
        "its URL where a --compare-env or --server-env value says {otlp}",
    )
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        help="KEY=VALUE for the worker under test, e.g. VOICE_HEARTBEAT_SECONDS=1 or "
        "DJANGO_CONN_MAX_AGE=60 (repeat for more)",
    )
    parser.add_argument(
        "--quota-minutes",
        type=int,
        default=0,
        help="give every bench user a daily quota of this many minutes (0: none, unlimited "
        "users: their quota is re-checked once a minute instead of every heartbeat)",
    )
    args = parser.parse_args()
    frames = [int(x) for x in args.frames.split(",")]
    counts = [int(x) for x in args.sessions.split(",")]
    paths = args.paths.split(",")
    accounts = max([*counts, args.admission])
    app_dir = args.app_dir.resolve()
    print(
        f"# {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')} app={app_dir} "
        f"rev={git_rev(app_dir)} {uptime()}",
        flush=True,
    )
    os.sched_setaffinity(0, GEN_CPU)
    out = args.out.open("a") if args.out else None

    def record(r: PointResult, tag: str = "") -> None:
        print(fmt(r), flush=True)
        print(f"#   tag={tag}", flush=True)
        if out is not None:
            row = {"tag": tag, "app": str(app_dir), **dataclasses.asdict(r)}
            out.write(json.dumps(row) + "\n")
            out.flush()

    with tempfile.TemporaryDirectory(prefix="relay-bench-") as tmp, children(Path(tmp)) as kids:
        try:
            if args.otlp_stub:
                otlp = otlp_stub_start(kids)
                args.compare_env = args.compare_env.replace("{otlp}", otlp)
                args.server_env = [kv.replace("{otlp}", otlp) for kv in args.server_env]
            extra = dict(kv.split("=", 1) for kv in args.server_env)
            rig = rig_build(kids, app_dir, Path(tmp), accounts, extra, args.quota_minutes)
            if args.max_load:
                print(f"# {wait_quiet(args.max_load)}", flush=True)
            run: Callable[..., PointResult] = lambda path, n, f: measure(  # noqa: E731
                rig,
                path,
                sessions=n,
                frame_ms=f,
                seconds=args.seconds,
                warmup=args.warmup,
                deadline_ms=args.deadline_ms,
            )
            if args.compare_env:
                base = dict(rig.relay_extra)
                settings_variants = [
                    dict(kv.split("=", 1) for kv in v.split(",") if kv)
                    for v in args.compare_env.split(";")
                ]
                for frame in frames:
                    for n in counts:
                        for _ in range(args.repeat):
                            for variant_env in settings_variants:
                                rig.relay_extra = {**base, **variant_env}
                                rig.relay_start(10_000)
                                r = run("relay", n, frame)
                                record(r, f"compare-env {variant_env}")
                                if args.otlp_stub:
                                    print(f"#   otlp stub: {otlp_stub_count(kids)}", flush=True)
                return
            if args.compare:
                variants = [Path(d).resolve() for d in args.compare.split(",")]
                for frame in frames:
                    for n in counts:
                        for _ in range(args.repeat):
                            for variant in variants:
                                rig.relay_start(10_000, variant)
                                r = run("relay", n, frame)
                                record(r, f"compare {variant}")
                            if "floor" in paths:  # the floor in the same round, for the ratio
                                rig.floor_start()
                                record(run("floor", n, frame), "compare floor")
                return
            if args.admission:
                # The same offered load with admission at ``--cap``, then without (contrast).
                for frame in frames:
                    for cap in (args.cap, 10_000):
                        rig.relay_start(cap)
                        r = run("relay", args.admission, frame)
                        record(r, f"admission cap={cap}")
                        print(f"#   refused: {r.refused_codes}", flush=True)
                return
            rig.relay_start(10_000)
            if "floor" in paths:
                rig.floor_start()
            for frame in frames:
                best, worst = 0, 0
                for n in counts:
                    relay = None
                    for path in paths:
                        r = run(path, n, frame)
                        record(r, "sweep")
                        if path == "relay":
                            relay = r
                    if relay is None:
                        continue
                    if clean(relay):
                        best = n
                    else:
                        worst = n
                        break
                lo, hi = best, worst
                for _ in range(args.refine if worst else 0):
                    if hi - lo <= max(5, lo // 20):
                        break
                    mid = int(math.ceil((lo + hi) / 2 / 5) * 5)
                    r = run("relay", mid, frame)
                    record(r, "refine")
                    lo, hi = (mid, hi) if clean(r) else (lo, mid)
                print(
                    f"# frame {frame} ms: highest clean relay point {lo} sessions"
                    + (f", first failing {hi}" if hi else " (no failure in the sweep)"),
                    flush=True,
                )
        finally:
            if out is not None:
                out.close()
            print(f"# end {uptime()}", flush=True)


if __name__ == "__main__":
    main()
