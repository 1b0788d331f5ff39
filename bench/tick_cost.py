"""What a worker's periodic work costs per tick, in process: on the event loop and in the thread.

For N live sessions (all users with a minute quota, all logged in through the database
session engine), built from the service's own objects with the upstream faked, it times
(median of ``--ticks``):

* on the loop: the heartbeat's beat collection, the checks task's questions and the hand-out
  of its answers, the history writer's drains;
* in the database thread (run here in the main thread: the same Python): the batched quota
  check and login re-validation against the per-session calls they replace, the registry's
  heartbeat write and the history flush, with their query counts.

Examples::

    .venv/bin/python -m bench.tick_cost --sessions 300,500
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/tickcost .venv/bin/python -m bench.tick_cost
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from bench._tick_cost_django import DATABASE

# isort: split
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from assistant.calls.supervisor import CallSupervisor
from assistant.codes import State
from assistant.history.ledger import QuotaCheck
from assistant.history.live import SessionHistory
from assistant.history.models import UsageQuota, UsageRecord
from assistant.history.quotas import LiveQuota, quota_status, quota_statuses
from assistant.history.writer import history, write_batches
from assistant.live import registry
from assistant.live.admission import logins_still_valid, session_user
from assistant.models import LiveSession


class Voice:
    """The counters and state a live session's supervisor, quota and history read."""

    def __init__(self) -> None:
        self.audio_in_bytes = 0
        self.audio_out_bytes = 0
        self.typed_seconds = 0.0
        self.upstream_session_id = "up-1"
        self.state = State.LISTENING
        self.reply_running = False


class Call:
    """A call as its supervisor and its quota see it (``assistant/calls/supervisor.py``)."""

    def __init__(self) -> None:
        self.voice = Voice()
        self.quota: LiveQuota | None = None
        self.state = State.LISTENING
        self.ended = False
        self.last_activity = time.monotonic()

    async def end(self, *args: Any, **kwargs: Any) -> None:
        msg = "nobody ends here"
        raise AssertionError(msg)

    async def send_message(self, message: Any) -> None:
        pass


def populate(n: int) -> list[tuple[Any, str, uuid.UUID]]:
    """N users with a quota, a login session, a registry row and an accrued ledger row."""
    User = get_user_model()
    made = []
    for i in range(n):
        user = User.objects.create_user(f"tick{n}-{i}", password="x")
        UsageQuota.objects.create(user=user, minutes_per_day=100_000)
        store = SessionStore()
        store["_auth_user_id"] = str(user.pk)
        store["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
        store["_auth_user_hash"] = user.get_session_auth_hash()
        store.create()
        row = LiveSession.objects.create(
            user=user, worker="bench", channel_name=f"c{i}", last_seen=timezone.now()
        )
        UsageRecord.objects.create(
            user=user, session_id=row.pk, kind=UsageRecord.Kind.ACCRUED, model="m"
        )
        made.append((user, store.session_key or "", row.pk))
    return made


def timed(fn: Callable[[], Any], ticks: int) -> tuple[float, int]:
    """(median ms, queries of one call)."""
    connection.queries_log.clear()
    with CaptureQueriesContext(connection) as captured:
        fn()
    times = []
    for _ in range(ticks):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), len(captured.captured_queries)


async def measure(n: int, ticks: int) -> None:
    people = await asyncio.to_thread(populate, n)
    # What the history reads of a profile's configuration.
    config = SimpleNamespace(
        profile_id=None, profile_name="bench", model="m", keep_transcripts=True
    )
    sups: list[CallSupervisor] = []
    calls: list[Call] = []
    for user, key, sid in people:
        call = Call()
        calls.append(call)
        store = SessionStore(session_key=key)
        sup = CallSupervisor(
            call,  # type: ignore[arg-type]
            session_id=sid,
            scope={"user": user, "session": store},
            channel_layer=None,
        )
        hist = SessionHistory.begin(
            session_id=sid,
            user_id=user.pk,
            config=config,  # type: ignore[arg-type]
            voice=call.voice,  # type: ignore[arg-type]
        )
        call.quota = LiveQuota(call, history=hist, user_id=user.pk, session_id=sid)  # type: ignore[arg-type]
        sups.append(sup)
    history.forget_all()  # drained by hand below

    def advance() -> None:  # a tick's worth of audio both ways
        for call in calls:
            voice = call.voice
            voice.audio_in_bytes += 240_000  # type: ignore[union-attr]
            voice.audio_out_bytes += 48_000  # type: ignore[union-attr]

    loop_ms: dict[str, list[float]] = {"beats": [], "questions": [], "answers": [], "drains": []}
    answer = QuotaCheck(0.1, "day", None)
    drained: list[Any] = []
    for _ in range(ticks):
        advance()
        t0 = time.perf_counter()
        beats = [s.beat() for s in sups]
        t1 = time.perf_counter()
        for s in sups:
            s._last_validated = 0.0  # every login due: the worst tick
        t2 = time.perf_counter()
        asked = [(s.quota_request(), s.login_request()) for s in sups]
        t3 = time.perf_counter()
        for s in sups:
            await s.checked(answer, True)
        t4 = time.perf_counter()
        drained = [c.quota._history.recorder.drain() for c in calls]  # type: ignore[union-attr]
        t5 = time.perf_counter()
        loop_ms["beats"].append((t1 - t0) * 1000)
        loop_ms["questions"].append((t3 - t2) * 1000)
        loop_ms["answers"].append((t4 - t3) * 1000)
        loop_ms["drains"].append((t5 - t4) * 1000)
    quota_requests = [q for q, _ in asked if q is not None]
    logins = [(r.session_key, r.user_id) for _, r in asked if r is not None]
    print(f"\n## {n} sessions ({connection.vendor})")
    for name, values in loop_ms.items():
        print(f"loop  {name:<28} {statistics.median(values):7.2f} ms")
    total = sum(statistics.median(v) for v in loop_ms.values())
    print(f"loop  {'all of it':<28} {total:7.2f} ms")

    def per_session_quotas() -> None:
        for q in quota_requests:
            quota_status(user_id=q.user_id, session_id=q.session_id, own_seconds=q.own_seconds)

    def per_session_logins() -> None:
        for key, _ in logins:
            session_user(key)

    rows = [
        ("quota: per session (before)", per_session_quotas),
        ("quota: batched (after)", lambda: quota_statuses(quota_requests)),
        ("logins: per session (before)", per_session_logins),
        ("logins: batched (after)", lambda: logins_still_valid(logins)),
        ("registry heartbeat", lambda: registry.sessions_tick(beats)),
        ("history flush (accruals)", lambda: write_batches(drained)),
    ]
    for name, fn in rows:
        ms, queries = await asyncio.to_thread(timed, fn, max(3, ticks // 2))
        print(f"db    {name:<28} {ms:7.2f} ms  {queries:5d} queries")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", default="300,500")
    parser.add_argument("--ticks", type=int, default=10)
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    print(f"# {DATABASE}")
    for n in (int(x) for x in args.sessions.split(",")):
        asyncio.run(measure(n, args.ticks))


if __name__ == "__main__":
    main()
