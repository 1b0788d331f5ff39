"""Frame floods against one worker: what an abusive socket costs a victim session (issue 9).

One Daphne worker (DEBUG settings, its own SQLite) in front of ``localvoice --echo``. A victim
session sends 100 ms frames (the talk page's) and times each echo; meanwhile an abuser, in a
process of its own, floods tiny frames as fast as it can and reconnects whenever it is closed.
Printed as JSON: the victim's echo round trip (p50/p99/max, ms) alone and under the flood, the
abuser's frames sent and close codes, the worker's CPU and RSS.

    .venv/bin/python -m bench.frame_flood --seconds 10 --frame-bytes 2
    .venv/bin/python -m bench.frame_flood abuse --ws ws://... --origin http://... --cookie K

The ``abuse`` mode is the abuser alone (used by tests/hardening/test_redteam.py as well).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench._common import REPO, cpu_seconds, rss_mb, uptime
from tests.support.stats import percentile

VICTIM_FRAME_MS = 100


def tone(ms: int) -> bytes:
    """PCM16 24 kHz mono sine, something non-silent to echo."""
    n = 24 * ms
    return b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / 24000))) for i in range(n)
    )


def summary(rtts: list[float]) -> dict[str, float]:
    """p50 / p99 / max of round trips, in ms."""
    return {
        "n": len(rtts),
        "p50_ms": round(percentile(rtts, 50) * 1000, 2),
        "p99_ms": round(percentile(rtts, 99) * 1000, 2),
        "max_ms": round(max(rtts) * 1000, 2) if rtts else float("nan"),
    }


# ----------------------------------------------------------------------------- abuser


async def _read_until_close(ws: aiohttp.ClientWebSocketResponse) -> int:
    while True:
        msg = await ws.receive()
        if msg.type == aiohttp.WSMsgType.CLOSE:
            return int(msg.data)
        if msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
            return ws.close_code or 1006


async def abuse(
    ws_url: str, origin: str, cookie: str, seconds: float, frame_bytes: int, rate: float = 0.0
) -> dict[str, Any]:
    """Flood ``frame_bytes``-byte binary frames for ``seconds``, reconnecting when closed.

    ``rate``: frames per second (sent in batches every 10 ms); 0 for as fast as possible.
    """
    frame = b"\x00" * frame_bytes
    batch = max(1, int(rate / 100)) if rate else 256
    sent = refused = 0
    closes: list[dict[str, float]] = []
    deadline = time.monotonic() + seconds
    headers = {"Cookie": cookie}
    async with aiohttp.ClientSession(headers=headers) as http:
        while time.monotonic() < deadline:
            try:
                ws = await http.ws_connect(
                    ws_url, origin=origin, autoclose=False, max_msg_size=0, heartbeat=None
                )
            except aiohttp.WSServerHandshakeError:
                refused += 1
                await asyncio.sleep(0.2)
                continue
            opened = time.monotonic()
            reader = asyncio.create_task(_read_until_close(ws))
            with contextlib.suppress(ConnectionError, RuntimeError):
                while not reader.done() and time.monotonic() < deadline:
                    for _ in range(batch):
                        await ws.send_bytes(frame)
                    sent += batch
                    # Let the reader see the close; pace the flood when a rate is set.
                    await asyncio.sleep(0.01 if rate else 0)
            code = 0
            if reader.done():
                code = reader.result()
            else:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reader
            if code:
                closes.append({"code": code, "after_s": round(time.monotonic() - opened, 4)})
            with contextlib.suppress(Exception):
                await ws.close()
            # A reconnecting abuser is bounded by the connection rate limits as well.
            await asyncio.sleep(0.05)
    return {"frames_sent": sent, "closes": closes, "refused_handshakes": refused}


def abuser_process(
    ws_url: str, origin: str, cookie: str, seconds: float, frame_bytes: int, rate: float = 0.0
) -> subprocess.Popen[str]:
    """Start the abuser in a process of its own (its result is its stdout's JSON line)."""
    argv = [sys.executable, "-m", "bench.frame_flood", "abuse", "--ws", ws_url]
    argv += ["--origin", origin, "--cookie", cookie, "--seconds", str(seconds)]
    argv += ["--frame-bytes", str(frame_bytes), "--rate", str(rate)]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, cwd=REPO)


# ----------------------------------------------------------------------------- victim


async def victim_round_trips(
    ws_url: str, origin: str, cookie: str, seconds: float, interval: float = 0.1
) -> list[float]:
    """Echo round trips of 100 ms frames, one every ``interval`` seconds, for ``seconds``."""
    pcm = tone(VICTIM_FRAME_MS)
    rtts: list[float] = []
    received_total = 0
    async with (
        aiohttp.ClientSession(headers={"Cookie": cookie}) as http,
        http.ws_connect(ws_url, origin=origin, max_msg_size=0, heartbeat=None) as ws,
    ):
        while True:
            msg = await ws.receive(timeout=10)
            if (
                msg.type == aiohttp.WSMsgType.TEXT
                and json.loads(msg.data)["type"] == "session.ready"
            ):
                break
            if msg.type != aiohttp.WSMsgType.TEXT:
                problem = f"victim closed before session.ready: {msg}"
                raise RuntimeError(problem)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            started = time.monotonic()
            await ws.send_bytes(pcm)
            got = 0
            while got < len(pcm):
                msg = await ws.receive(timeout=5)
                if msg.type == aiohttp.WSMsgType.BINARY:
                    got += len(msg.data)
                elif msg.type != aiohttp.WSMsgType.TEXT:
                    problem = f"victim closed: {msg}"
                    raise RuntimeError(problem)
                elif json.loads(msg.data).get("type") == "error":
                    problem = f"victim got {msg.data}"
                    raise RuntimeError(problem)
            rtts.append(time.monotonic() - started)
            received_total += got
            # Flow control, as the page does it.
            await ws.send_str(json.dumps({"type": "audio.ack", "bytes": received_total}))
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))
        await ws.send_str('{"type":"session.stop"}')
    return rtts


# ----------------------------------------------------------------------------- standalone

USERS_SCRIPT = """
from django.contrib.auth.models import User
User.objects.create_user("victim", password="pw-victim-12345")
User.objects.create_user("abuser", password="pw-abuser-12345")
"""


async def _login(base: str, username: str, password: str) -> str:
    from tests.support.browser import Browser

    async with Browser(base) as browser:
        await browser.login(username, password)
        return f"sessionid={browser.cookie('sessionid')}"


async def run(seconds: float, frame_bytes: int, rate: float) -> dict[str, Any]:
    """Start the stack; measure the victim alone, then under the flood."""
    from tests.support.localvoice import LocalVoiceProcess
    from tests.support.processes import DaphneServer, daphne_env, manage

    tmp = Path(tempfile.mkdtemp(prefix="frame-flood-"))
    localvoice = LocalVoiceProcess("--echo", log_dir=tmp).start(timeout=60)
    try:
        env = daphne_env(
            worker_name="flood",
            database_url=f"sqlite:///{tmp / 'db.sqlite3'}",
            redis_url="",
            upstream_url=localvoice.endpoint,
            # Default connection rate limits: a reconnecting abuser meets them too.
            extra={"ASSISTANT_LOG_LEVEL": "WARNING"},
        )
        manage(env, "migrate", "--noinput")
        manage(env, "shell", "-c", USERS_SCRIPT)
        daphne = DaphneServer("flood", env, tmp).start()
        try:
            ws, origin = daphne.ws_url("/ws/voice/"), daphne.base_url
            victim = await _login(origin, "victim", "pw-victim-12345")
            abuser = await _login(origin, "abuser", "pw-abuser-12345")
            alone = await victim_round_trips(ws, origin, victim, seconds)
            cpu0, rss0 = cpu_seconds(daphne.pid), rss_mb(daphne.pid)
            wall0 = time.monotonic()
            proc = abuser_process(ws, origin, abuser, seconds, frame_bytes, rate)
            await asyncio.sleep(0.3)  # the flood is under way
            flooded = await victim_round_trips(ws, origin, victim, seconds - 0.5)
            out, _ = await asyncio.to_thread(proc.communicate, timeout=seconds + 30)
            wall = time.monotonic() - wall0
            abused = json.loads(out.strip().splitlines()[-1])
            codes: dict[str, int] = {}
            for close in abused["closes"]:
                codes[str(close["code"])] = codes.get(str(close["code"]), 0) + 1
            after = [c["after_s"] for c in abused["closes"]]
            return {
                "frame_bytes": frame_bytes,
                "abuser_rate": rate or "max",
                "seconds": seconds,
                "victim_alone": summary(alone),
                "victim_under_flood": summary(flooded),
                "abuser_frames_sent": abused["frames_sent"],
                "abuser_close_codes": codes,
                "abuser_closed_after_s_max": max(after) if after else None,
                "abuser_refused_handshakes": abused["refused_handshakes"],
                "worker_cpu_share_during_flood": round((cpu_seconds(daphne.pid) - cpu0) / wall, 3),
                "worker_rss_mb": [round(rss0, 1), round(rss_mb(daphne.pid), 1)],
                "machine": uptime(),
            }
        finally:
            daphne.stop()
    finally:
        localvoice.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="mode")
    one = sub.add_parser("abuse", help="flood one worker with tiny frames (the abuser alone)")
    one.add_argument("--ws", required=True)
    one.add_argument("--origin", required=True)
    one.add_argument("--cookie", required=True, help="the Cookie header, e.g. sessionid=...")
    one.add_argument("--seconds", type=float, default=5.0)
    one.add_argument("--frame-bytes", type=int, default=2)
    one.add_argument("--rate", type=float, default=0.0, help="frames/s; 0: as fast as possible")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--frame-bytes", type=int, default=2)
    parser.add_argument("--rate", type=float, default=0.0, help="abuser frames/s; 0: max")
    args = parser.parse_args()
    if args.mode == "abuse":
        result = asyncio.run(
            abuse(args.ws, args.origin, args.cookie, args.seconds, args.frame_bytes, args.rate)
        )
    else:
        result = asyncio.run(run(args.seconds, args.frame_bytes, args.rate))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
