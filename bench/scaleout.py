"""Scale-out with a drain: two Daphne workers behind the project's nginx, one drained mid-run.

The rig: one Redis (private), one database (PostgreSQL on 127.0.0.1:5432 when it answers,
else SQLite), an echo upstream (``localvoice --echo``), workers ``A`` and ``B`` started with
the deployment's Daphne flags, and nginx running ``deploy/nginx.conf`` with
``deploy/nginx/voice-locations.conf`` (only its listen address, upstream servers and file
paths changed). ``2 x --sessions`` simulated browsers connect through nginx (``least_conn``
splits them) and stream real-time frames; ``--drain-at`` seconds into the measured window
worker A gets SIGTERM. Its browsers get 4001 ``server_draining`` and reconnect, with the talk
page's backoff, through nginx to B. The report says, per worker and phase (before the drain,
during the reconnect storm, after), how many frames came back late or not at all, how the
drained sessions closed and where they came back, what the registry's live-session count
(the Container Apps scale rule's query, on PostgreSQL) said, and the workers' event-loop lag.

Examples::

    .venv/bin/python -m bench.scaleout --sessions 20 --seconds 15 --drain-at 5   # a quick look
    .venv/bin/python -m bench.scaleout                    # 200 per worker, 30 s, drain at 10 s
    .venv/bin/python -m bench.scaleout --sessions 200 --cap 300 --out scaleout.jsonl

Everything binds 127.0.0.1; every process is a child killed on exit; the run is bounded by
``--timeout``. Exit status 1 when a check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

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
    server_env,
    uptime,
    wait_port,
)
from bench._loadgen import BYTES_PER_MS
from bench._metrics import scrape
from bench._reconnect import Browser, stream
from bench._scaleout_report import Timeline, drained_sessions, report, tally_frames
from tests.support.processes import NGINX, Database, RedisServer, throwaway_database

DEPLOY = REPO / "deploy"
# The deployment's Daphne flags (deploy/README.md): the drain needs the application close.
DAPHNE_FLAGS = [
    *("--proxy-headers", "--ping-interval", "20", "--ping-timeout", "30"),
    *("--websocket_timeout", "86400", "--application-close-timeout", "10"),
]


def nginx_conf(prefix: Path, listen: int, workers: list[int]) -> Path:
    """``deploy/nginx.conf`` for this run: local listen, upstreams, paths; nothing else."""
    text = (DEPLOY / "nginx.conf").read_text()
    servers = "\n".join(f"        server {HOST}:{p} max_fails=3 fail_timeout=10s;" for p in workers)
    swaps = {
        "        server web:8000 max_fails=3 fail_timeout=10s;": servers,
        "listen 80 default_server;": f"listen {HOST}:{listen} default_server;",
        "include /etc/nginx/voice-locations.conf;": (
            f"include {DEPLOY / 'nginx' / 'voice-locations.conf'};"
        ),
        "pid /tmp/nginx.pid;": f"pid {prefix / 'nginx.pid'};\ndaemon off;",
        "access_log /dev/stdout;": "access_log off;",
        "http {": "http {\n"
        + "".join(
            f"    {kind}_temp_path {prefix / kind};\n"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        ),
    }
    for old, new in swaps.items():
        assert text.count(old) == 1, f"deploy/nginx.conf changed: {old!r}"
        text = text.replace(old, new)
    prefix.mkdir(parents=True, exist_ok=True)
    conf = prefix / "nginx.conf"
    conf.write_text(text)
    argv = [str(NGINX), "-t", "-q", "-p", str(prefix), "-e", str(prefix / "error.log")]
    test = subprocess.run(
        [*argv, "-c", str(conf)], capture_output=True, text=True, timeout=30, check=False
    )
    assert test.returncode == 0, test.stderr
    return conf


def keda_query() -> str:
    """The Container Apps rule's live-session query (deploy/azure/modules/app.bicep)."""
    app = (DEPLOY / "azure" / "modules" / "app.bicep").read_text()
    window = re.search(r"^var liveWindowSeconds = (\d+)", app, re.M)
    query = re.search(r"^var liveSessionsQuery = '(.*)'$", app, re.M)
    assert window, "app.bicep: no liveWindowSeconds"
    assert query, "app.bicep: no liveSessionsQuery"
    return query.group(1).replace("\\'", "'").replace("${liveWindowSeconds}", window.group(1))


def registry(db: Database) -> dict[str, str]:
    """username -> worker of every registry row."""
    rows = db.query(
        "SELECT u.username, s.worker FROM assistant_livesession s "
        "JOIN auth_user u ON u.id = s.user_id"
    )
    return {str(user): str(worker) for user, worker in rows}


def live_count(db: Database) -> int | None:
    """What the scale rule would read now (PostgreSQL only: the query is PostgreSQL's)."""
    return int(db.query(keda_query())[0][0]) if db.kind == "postgresql" else None


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process and its direct children (nginx: master and workers)."""
    total = cpu_seconds(pid)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError):
                stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
                if int(stat[1]) == pid:
                    total += cpu_seconds(int(entry))
    return total


class Rig:
    """The processes of one run."""

    def __init__(
        self, kids: Children, tmp: Path, db: Database, redis: RedisServer, args: argparse.Namespace
    ) -> None:
        self.redis = redis
        self.upstream_port = free_port()
        argv = [PYTHON, "-m", "localvoice", "--host", HOST, "--port", str(self.upstream_port)]
        self.upstream = kids.start(
            "upstream",
            [*argv, "--echo", "--log-level", "WARNING", "--no-auth"],
            cwd=REPO,
            env=dict(os.environ, PYTHONPATH=str(REPO)),
        )
        cap = args.cap or 2 * args.sessions + 10
        extra = dict(kv.split("=", 1) for kv in args.server_env)
        self.env = {
            name: server_env(
                app_dir=args.app_dir,
                db_path=tmp / "unused.sqlite3",
                upstream_port=self.upstream_port,
                max_sessions=cap,
                extra={
                    # As every deployment here sets it: without, each database call reconnects.
                    "DJANGO_CONN_MAX_AGE": "60",
                    "DATABASE_URL": db.url,
                    "REDIS_URL": self.redis.url,
                    "VOICE_WORKER_NAME": name,
                    **extra,
                },
            )
            for name in ("A", "B")
        }
        self.cookie, self.keys = accounts_create(self.env["A"], args.app_dir, 2 * args.sessions)
        self.ports = {name: free_port() for name in ("A", "B")}
        self.workers: dict[str, Child] = {}
        for name, port in self.ports.items():
            argv = daphne_argv("voiceproject.asgi:application", port)
            argv[-1:-1] = DAPHNE_FLAGS
            self.workers[name] = kids.start(
                f"daphne-{name}", argv, cwd=args.app_dir, env=self.env[name]
            )
        self.nginx_port = free_port()
        conf = nginx_conf(tmp / "nginx", self.nginx_port, list(self.ports.values()))
        self.nginx = kids.start(
            "nginx",
            [
                str(NGINX),
                "-p",
                str(conf.parent),
                "-e",
                str(conf.parent / "error.log"),
                "-c",
                str(conf),
            ],
            cwd=tmp,
            env=dict(os.environ),
        )
        for port in (self.upstream_port, *self.ports.values(), self.nginx_port):
            wait_port(port, timeout=60)

    def cpu(self) -> dict[str, float]:
        """CPU seconds so far of every process of the rig (0 once gone)."""
        out = {}
        for name, child in [*self.workers.items(), ("upstream", self.upstream)]:
            with contextlib.suppress(OSError):
                out[name] = cpu_seconds(child.pid)
        with contextlib.suppress(OSError):
            out["nginx"] = tree_cpu(self.nginx.pid)
        out["gen"] = time.process_time()
        return out


async def run(rig: Rig, db: Database, args: argparse.Namespace) -> dict[str, Any]:
    """Connect, stream, drain A, measure; the report as a dict."""
    period = args.frame_ms / 1000.0
    total_frames = int((args.warmup + args.seconds) / period) + 1
    window_start = int(args.warmup / period)
    drain_seq = int((args.warmup + args.drain_at) / period)
    url = f"ws://{HOST}:{rig.nginx_port}/ws/voice/"
    origin = f"http://{HOST}:{rig.nginx_port}"
    browsers = [
        Browser(i, f"bench{i:04d}", {"Cookie": f"{rig.cookie}={k}", "Origin": origin}, total_frames)
        for i, k in enumerate(rig.keys)
    ]
    stopping, gate = asyncio.Event(), asyncio.Semaphore(16)
    loop = asyncio.get_running_loop()
    marks: dict[str, dict[str, Any]] = {}
    exits: dict[str, float] = {}

    def mark(name: str) -> None:
        # /metrics and /proc off the loop: scrapes in threads, joined at the end.
        entry: dict[str, Any] = {"t": time.monotonic(), "cpu": rig.cpu()}
        marks[name] = entry
        for worker, port in rig.ports.items():
            entry[worker] = loop.run_in_executor(None, _scrape_or_empty, port)
        entry["live"] = loop.run_in_executor(None, live_count, db)

    def on_frame(seq: int) -> None:
        if seq == window_start:
            mark("start")
        elif seq == drain_seq:
            mark("drain")
            rig.workers["A"].proc.send_signal(signal.SIGTERM)  # Daphne itself: the drain
            exits["sigterm"] = time.monotonic()
            watch_exit = loop.create_task(_watch_exit(rig.workers["A"], exits))
            tasks.append(watch_exit)

    tasks: list[asyncio.Task[Any]] = []
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    async with aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar()) as s:
        frame_bytes = args.frame_ms * BYTES_PER_MS
        runs = [
            asyncio.create_task(
                b.run(
                    s,
                    url,
                    frame_bytes=frame_bytes,
                    stopping=stopping,
                    gate=gate,
                    jitter=args.jitter,
                )
            )
            for b in browsers
        ]
        try:
            async with asyncio.timeout(120):
                await asyncio.gather(*(b.first_ready.wait() for b in browsers))
            homes = await asyncio.to_thread(registry, db)
            print(f"# connected: {_count(homes)} ({uptime()})", flush=True)
            t0 = loop.time() + 0.3
            await stream(browsers, frame_ms=args.frame_ms, t0=t0, on_frame=on_frame)
            mark("end")
            await asyncio.sleep(2.0)  # stragglers
            finals = await asyncio.to_thread(registry, db)
        finally:
            exits["stop"] = time.monotonic()
            stopping.set()
            for b in browsers:
                if b.ws is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(b.ws.close(), 2.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*runs, return_exceptions=True), 15.0)
            for task in [*runs, *tasks]:
                task.cancel()
    for entry in marks.values():
        for key in ("A", "B", "live"):
            entry[key] = await entry[key]
    drained, back_at = drained_sessions(
        browsers, homes, finals, "A", exits["sigterm"], exits["stop"]
    )
    timeline = Timeline(t0, period, window_start, exits["sigterm"], back_at)
    tallies = tally_frames(browsers, homes, timeline, args.deadline_ms)
    return {
        "browsers": browsers,
        "homes_by_user": homes,
        "homes": _count(homes),
        "finals": _count(finals),
        "drained": drained,
        "tallies": tallies,
        "timeline": timeline,
        "marks": marks,
        "exit": exits,
        "exit_code": rig.workers["A"].proc.poll(),
    }


def _scrape_or_empty(port: int) -> dict[str, float]:
    try:
        return scrape(port)
    except OSError:
        return {}  # the drained worker is gone


async def _watch_exit(child: Child, exits: dict[str, float]) -> None:
    # A thread waits for the process, so the exit time is exact and the loop is free.
    await asyncio.to_thread(child.proc.wait)
    exits["exited"] = time.monotonic()


def _count(mapping: dict[str, str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for worker in mapping.values():
        out[worker] = out.get(worker, 0) + 1
    return dict(sorted(out.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", type=int, default=200, help="sessions per worker")
    parser.add_argument("--frame-ms", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=30.0, help="measured streaming time")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--drain-at", type=float, default=10.0, help="SIGTERM to A, s into it")
    parser.add_argument("--deadline-ms", type=float, default=200.0, help="playout deadline")
    parser.add_argument("--cap", type=int, default=0, help="per worker (default 2 x sessions)")
    parser.add_argument(
        "--jitter",
        type=float,
        default=0.0,
        help="add up to this many seconds at random to each reconnect backoff (0: as the page)",
    )
    parser.add_argument("--sqlite", action="store_true", help="SQLite even if PostgreSQL answers")
    parser.add_argument("--app-dir", type=Path, default=REPO, help="code under test")
    parser.add_argument("--server-env", action="append", default=[], help="KEY=VALUE, workers")
    parser.add_argument("--logs", type=Path, default=None, help="keep the process logs here")
    parser.add_argument("--out", type=Path, default=None, help="append a JSON line here")
    parser.add_argument("--timeout", type=float, default=900.0, help="the whole run, seconds")
    args = parser.parse_args()
    args.app_dir = args.app_dir.resolve()
    assert 0 < args.drain_at < args.seconds, "--drain-at must fall inside --seconds"
    assert NGINX.exists(), "nginx is needed (apt-get install nginx-light)"
    print(
        f"# {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')} app={args.app_dir} "
        f"rev={git_rev(args.app_dir)} {os.cpu_count()} cpus {uptime()}",
        flush=True,
    )
    # Left in reverse: every child (workers, nginx, upstream), Redis, then the database.
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="scaleout-bench-")))
        logs = args.logs.resolve() if args.logs else tmp
        logs.mkdir(parents=True, exist_ok=True)
        if args.sqlite:
            path = tmp / "bench.sqlite3"
            db = Database(url=f"sqlite:///{path}", kind="sqlite", name=str(path))
        else:
            db = stack.enter_context(throwaway_database(tmp))
        redis = RedisServer(logs).start()
        stack.callback(redis.stop)
        kids = stack.enter_context(children(logs))  # stopped before Redis: no spurious errors
        print(f"# database: {db.kind}; logs in {logs}", flush=True)
        rig = Rig(kids, logs, db, redis, args)
        result = asyncio.run(asyncio.wait_for(run(rig, db, args), args.timeout))
        ok = report(result, args, logs)
        print(f"# end {uptime()}", flush=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
