"""The relay's own CPU per audio frame, in process, in seconds: a cheap check of a change.

N logged-in browsers (the whole ASGI application: cookie, Origin, session and auth
middleware, ``VoiceConsumer``, the call, the real SDK over aiohttp) each send one 100 ms frame
and wait for its echo (``localvoice --echo`` in another process, not counted) before the next,
so the relay never merges frames (faster than real time: the audio budgets are raised so that
they never refuse); browsers acknowledge audio as the talk page does. What is
measured is this process's CPU time over the measured round trips, divided by them: the relay's
work per frame both ways, without Daphne's socket handling (the floor's part, see
``bench/load.py``). Each variant runs in a fresh process, variants alternate round by round.

Under heavy shared load CPU time still drifts with the machine (caches, frequency): compare
variants of one run, not numbers across runs. ``--callgrind`` counts instructions instead
(valgrind, about 50x slower; repeatable under any load; the collector is off while counting).

Examples::

    .venv/bin/python -m bench.frame_path                       # this checkout, 3 rounds
    .venv/bin/python -m bench.frame_path --compare /tmp/relay-base,$PWD --rounds 5
    .venv/bin/python -m bench.frame_path --compare /tmp/relay-base,$PWD --callgrind \\
        --sessions 10 --frames 40 --rounds 1
    # the collector's time per frame at 300 sessions, two settings variants:
    .venv/bin/python -m bench.frame_path --sessions 300 --frames 30 \\
        --compare-env 'VOICE_GC_FREEZE=0;VOICE_GC_FREEZE=1,VOICE_GC_THRESHOLDS=20000:20:100'
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
PYTHON = sys.executable
HOST = "127.0.0.1"
# 100 ms of PCM16 at 24 kHz, the talk page's frame.
FRAME = bytes(range(256)) * 18 + bytes(192)
AUDIO_ACK_BYTES = 96_000  # static/js/voice-socket.js


async def _browser(app: Any, cookie: str, origin: str) -> Any:
    from channels.testing import WebsocketCommunicator

    comm = WebsocketCommunicator(
        app,
        "/ws/voice/",
        headers=[
            (b"host", origin.split("//", 1)[1].encode()),
            (b"origin", origin.encode()),
            (b"cookie", cookie.encode()),
        ],
    )
    connected, _ = await comm.connect(timeout=30)
    if not connected:
        msg = "the relay refused a bench browser"
        raise RuntimeError(msg)
    while True:  # until session.ready
        out = await comm.receive_output(30)
        if out["type"] == "websocket.close":
            msg = f"closed before ready: {out}"
            raise RuntimeError(msg)
        if '"session.ready"' in (out.get("text") or ""):
            return comm


async def _round_trips(comm: Any, frames: int, got: list[int]) -> None:
    """Send a frame, wait for its echo (text frames skipped), ``frames`` times."""
    put, get = comm.input_queue.put, comm.output_queue.get
    for _ in range(frames):
        await put({"type": "websocket.receive", "bytes": FRAME})
        back = 0
        while back < len(FRAME):
            async with asyncio.timeout(30):
                out = await get()
            data = out.get("bytes")
            if data is None:
                text = out.get("text") or ""
                if out["type"] == "websocket.close" or '"error"' in text[:20]:
                    msg = f"refused or closed mid-run: {out}"
                    raise RuntimeError(msg)
                continue
            back += len(data)
            got[0] += len(data)
            if got[0] - got[1] >= AUDIO_ACK_BYTES:
                got[1] = got[0]
                await put(
                    {
                        "type": "websocket.receive",
                        "text": f'{{"type":"audio.ack","bytes":{got[0]}}}',
                    }
                )


def _instrument(on: bool) -> None:
    """Under callgrind: count from here (on) or stop counting (off)."""
    if os.environ.get("FRAME_PATH_CALLGRIND"):
        subprocess.run(
            ["callgrind_control", "-i", "on" if on else "off", str(os.getpid())],
            check=True,
            capture_output=True,
            timeout=120,
        )


async def _child(
    sessions: int, frames: int, warmup: int, cookie_name: str, keys: list[str]
) -> None:
    import django

    django.setup()
    from voiceproject.asgi import application

    origin = f"http://{HOST}:8000"
    comms = [await _browser(application, f"{cookie_name}={key}", origin) for key in keys[:sessions]]
    counters = [[0, 0] for _ in comms]
    await asyncio.gather(
        *(_round_trips(c, warmup, n) for c, n in zip(comms, counters, strict=True))
    )
    collections = _GcClock()
    counting = bool(os.environ.get("FRAME_PATH_CALLGRIND"))
    if counting:
        # A collection or two in a short counted window would be most of its noise: the
        # instructions are the frames' own; the CPU runs report the collector's share.
        gc.collect()
        gc.disable()
    _instrument(True)
    cpu, wall = time.process_time(), time.perf_counter()
    gc.callbacks.append(collections.callback)
    await asyncio.gather(
        *(_round_trips(c, frames, n) for c, n in zip(comms, counters, strict=True))
    )
    gc.callbacks.remove(collections.callback)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    _instrument(False)
    if counting:
        gc.enable()
    for comm in comms:
        await comm.send_input({"type": "websocket.disconnect", "code": 1000})
    for comm in comms:
        await comm.wait(5)
    total = sessions * frames
    print(
        json.dumps(
            {
                "cpu_us_per_frame": cpu / total * 1e6,
                "wall_s": wall,
                "frames": total,
                "gc_us_per_frame": collections.seconds / total * 1e6,
                "gc_collections": collections.counts,
                "gc_max_ms": collections.longest * 1e3,
            }
        )
    )


class _GcClock:
    """Time spent in the garbage collector, and collections per generation."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.longest = 0.0
        self.counts = [0, 0, 0]
        self._start = 0.0

    def callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
            return
        took = time.perf_counter() - self._start
        self.seconds += took
        self.longest = max(self.longest, took)
        self.counts[info["generation"]] += 1


def _run_child(
    app_dir: Path,
    env: dict[str, str],
    args: argparse.Namespace,
    keys: list[str],
    cookie: str,
    callgrind: Path | None,
) -> dict[str, Any]:
    argv = [
        PYTHON,
        str(BENCH_DIR / "frame_path.py"),
        "--child",
        "--sessions",
        str(args.sessions),
        "--frames",
        str(args.frames),
        "--warmup",
        str(args.warmup),
        "--cookie",
        cookie,
        "--keys",
        ",".join(keys),
    ]
    child_env = dict(env)
    if callgrind is not None:
        argv = [
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={callgrind}",
            *argv,
        ]
        child_env["FRAME_PATH_CALLGRIND"] = "1"
    out = subprocess.run(
        argv, cwd=app_dir, env=child_env, capture_output=True, text=True, timeout=3600, check=False
    )
    if out.returncode != 0:
        sys.stderr.write(out.stderr[-4000:])
        msg = f"the bench child failed ({out.returncode})"
        raise RuntimeError(msg)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    if callgrind is not None:
        summary = [
            line
            for line in callgrind.read_text().splitlines()
            if line.startswith(("summary:", "totals:"))
        ]
        instructions = int(summary[-1].split()[1])
        result["instructions_per_frame"] = instructions / result["frames"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--frames", type=int, default=100, help="measured round trips each")
    parser.add_argument("--warmup", type=int, default=20, help="round trips each, not measured")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--compare", default="", help="comma-separated code dirs (default: this)")
    parser.add_argument(
        "--compare-env",
        default="",
        help="';'-separated settings variants (each a ','-separated KEY=VALUE list), e.g. "
        "'VOICE_GC_FREEZE=0;VOICE_GC_FREEZE=1': each code dir runs with each",
    )
    parser.add_argument("--callgrind", action="store_true", help="count instructions (valgrind)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--cookie", default="", help=argparse.SUPPRESS)
    parser.add_argument("--keys", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        # Run as a script: its own folder first on the path would shadow nothing, but out.
        if sys.path and Path(sys.path[0]).resolve() == BENCH_DIR:
            sys.path.pop(0)
        asyncio.run(
            _child(args.sessions, args.frames, args.warmup, args.cookie, args.keys.split(","))
        )
        return

    sys.path.insert(0, str(REPO))
    from bench._common import (
        Children,
        accounts_create,
        children,
        free_port,
        server_env,
        uptime,
        wait_port,
    )

    dirs = [Path(d).resolve() for d in args.compare.split(",")] if args.compare else [REPO]
    settings_variants = [
        dict(kv.split("=", 1) for kv in v.split(",") if kv) for v in args.compare_env.split(";")
    ]
    variants = [
        (f"{d}" + (f" {extra}" if extra else ""), d, extra)
        for d in dirs
        for extra in settings_variants
    ]
    print(f"# {uptime()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="frame-path-") as tmp, children(Path(tmp)) as kids:
        kids_: Children = kids
        port = free_port()
        kids_.start(
            f"upstream-{port}",
            [PYTHON, "-m", "localvoice", "--host", HOST, "--port", str(port), "--echo"]
            + ["--log-level", "WARNING", "--no-auth"],
            cwd=REPO,
            env=dict(os.environ, PYTHONPATH=str(REPO)),
        )
        results: dict[str, list[dict[str, Any]]] = {label: [] for label, _, _ in variants}
        accounts = {}
        for d in dirs:
            env = server_env(
                app_dir=d,
                db_path=Path(tmp) / f"{d.name}.sqlite3",
                upstream_port=port,
                max_sessions=10_000,
            )
            # Frames go as fast as they come back: the budgets are checked, never spent.
            env["VOICE_AUDIO_RATE_LIMIT"] = "100000"
            env["VOICE_AUDIO_FRAMES_PER_SECOND"] = "1000000"
            accounts[d] = (env, *accounts_create(env, d, args.sessions))
        wait_port(port)
        for r in range(args.rounds):
            for i, (label, d, extra) in enumerate(variants):
                env, cookie, keys = accounts[d]
                grind = Path(tmp) / f"callgrind.{i}.{r}" if args.callgrind else None
                res = _run_child(d, {**env, **extra}, args, keys, cookie, grind)
                results[label].append(res)
                line = f"round {r + 1} {label}: {res['cpu_us_per_frame']:7.1f} µs CPU/frame"
                if "instructions_per_frame" in res:
                    line += f" {res['instructions_per_frame'] / 1e3:8.1f} k instr/frame"
                line += (
                    f", gc {res['gc_us_per_frame']:.1f} µs/frame {res['gc_collections']}"
                    f" longest {res['gc_max_ms']:.1f} ms"
                    f" ({res['frames']} frames, {res['wall_s']:.1f} s) [{uptime()}]"
                )
                print(line, flush=True)
        for label, runs in results.items():
            cpu = [x["cpu_us_per_frame"] for x in runs]
            gc_us = [x["gc_us_per_frame"] for x in runs]
            line = (
                f"median {label}: {statistics.median(cpu):7.1f} µs CPU/frame, "
                f"gc {statistics.median(gc_us):.1f} µs/frame"
            )
            if args.callgrind:
                ins = [x["instructions_per_frame"] for x in runs]
                line += f", {statistics.median(ins) / 1e3:8.1f} k instructions/frame"
            print(line, flush=True)


if __name__ == "__main__":
    main()
