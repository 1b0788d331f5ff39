"""The evaluation runner: a process of its own that executes queued evaluation runs.

Replays never run in a web worker: this process claims queued runs from the database (one at a
time), at a lowered CPU priority (``os.nice``), so live sessions keep the web workers and the
CPU first. It holds each run with a lease it renews; if it dies, another runner (or this one
restarted) takes the run over once the lease expires and resumes after the last stored turn.
SIGTERM/SIGINT stop it after the current turn and hand the run back at once.
Run one or more of them beside the web workers (Procfile, deploy/README.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
from typing import Any

from asgiref.sync import sync_to_async
from django.core.management.base import BaseCommand, CommandError, CommandParser

from assistant.evaluation import runs
from assistant.evaluation.runner import run_execute


class Command(BaseCommand):
    help = (
        "Execute queued profile evaluations (issue 23) in this process, at a lowered CPU "
        "priority, until stopped (or, with --once, until none is queued)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--nice", type=int, default=10, help="raise the niceness by this much (default 10)"
        )
        parser.add_argument(
            "--lease-seconds",
            type=float,
            default=30.0,
            help="how long a claimed run stays this runner's without a heartbeat (default 30)",
        )
        parser.add_argument(
            "--poll-seconds", type=float, default=2.0, help="how often to look for runs"
        )
        parser.add_argument("--once", action="store_true", help="exit when no run is queued")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["lease_seconds"] < 3:
            msg = "--lease-seconds must be at least 3"
            raise CommandError(msg)
        if options["nice"] > 0:
            niceness = os.nice(options["nice"])
            self.stdout.write(f"Evaluation runner at niceness {niceness}.")
        owner = f"{socket.gethostname()}:{os.getpid()}"
        asyncio.run(
            _serve(
                owner,
                lease_seconds=options["lease_seconds"],
                poll_seconds=options["poll_seconds"],
                once=options["once"],
                say=self.stdout.write,
            )
        )


async def _serve(
    owner: str, *, lease_seconds: float, poll_seconds: float, once: bool, say: Any
) -> None:
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    say(f"Evaluation runner {owner} waiting for runs.")
    while not stopping.is_set():
        run = await sync_to_async(runs.run_claim)(owner, lease_seconds)
        if run is None:
            if once:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), timeout=poll_seconds)
            continue
        say(f"Run {run.pk} claimed (profile {run.profile_id}, claim {run.attempts}).")
        outcome = await run_execute(
            run, owner=owner, lease_seconds=lease_seconds, should_stop=stopping.is_set
        )
        say(f"Run {run.pk}: {outcome}.")
