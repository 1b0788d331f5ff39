"""Connect/leave churn of one user against one worker: what a browser leaving costs (issue 8).

One logged-in browser connects to ``/ws/voice/`` and leaves ``--cycles`` times, at every stage
of a session's start (tests/support/churn.py), half of the time abruptly. Reported: cycles per
second, the upstream-error counters that moved, the worker-log lines that mean a failure went
unseen or a resource leaked, and what was still open at the end.

    .venv/bin/python -m bench.churn --cycles 1000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

import aiohttp

from bench._common import REPO, git_rev, uptime
from tests.support.browser import Browser
from tests.support.churn import UPSTREAM_ERROR_SERIES, bad_lines, churn, series
from tests.support.localvoice import LocalVoiceProcess
from tests.support.servers import DaphneServer, daphne_env, manage

USERS = """
from django.contrib.auth.models import User
User.objects.create_user("c", password="pw-c-12345")
"""


async def metrics_text(base: str) -> str:
    async with aiohttp.ClientSession() as http, http.get(f"{base}/metrics") as resp:
        return await resp.text()


async def run(cycles: int, tmp: Path) -> dict[str, object]:
    localvoice = LocalVoiceProcess("--echo", log_dir=tmp).start(timeout=60)
    env = daphne_env(
        worker_name="churn",
        database_url=f"sqlite:///{tmp / 'db.sqlite3'}",
        redis_url="",
        upstream_url=localvoice.endpoint,
        extra={
            "VOICE_CONNECTIONS_PER_MINUTE_PER_USER": "1000000",
            "VOICE_CONNECTIONS_PER_MINUTE_PER_IP": "1000000",
            "ASSISTANT_LOG_LEVEL": "WARNING",
        },
    )
    daphne = DaphneServer("churn", env, tmp)
    daphne.env["DJANGO_CSRF_TRUSTED_ORIGINS"] = daphne.base_url
    try:
        manage(env, "migrate", "--noinput")
        manage(env, "shell", "-c", USERS)
        daphne.start()
        before = await metrics_text(daphne.base_url)
        started = time.monotonic()
        async with Browser(daphne.base_url) as browser:
            await browser.login("c", "pw-c-12345")
            result = await churn(browser, daphne.ws_url("/ws/voice/"), cycles)
        took = time.monotonic() - started
        await asyncio.sleep(2.0)  # let the last releases finish
        after = await metrics_text(daphne.base_url)
        log = (tmp / "daphne-churn.log").read_text(errors="replace")
        return {
            "rev": git_rev(REPO),
            "cycles": result.cycles,
            "abrupt": result.abrupt,
            "ready_seen": result.ready_seen,
            "by_moment": result.by_moment,
            "cycles_per_s": round(result.cycles / took, 1),
            "counters_moved": {
                n: series(after, n) - series(before, n) for n in UPSTREAM_ERROR_SERIES
            },
            "log_lines": bad_lines(log),
            "active_sessions_after": series(after, "voice_active_sessions"),
            "load": uptime(),
        }
    finally:
        daphne.stop()
        localvoice.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="churn-") as tmp:
        print(json.dumps(asyncio.run(run(args.cycles, Path(tmp))), indent=2))


if __name__ == "__main__":
    main()
