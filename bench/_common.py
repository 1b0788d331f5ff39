"""Shared helpers of the relay load and soak benchmarks: processes, /proc sampling, accounts.

Everything runs on 127.0.0.1; every child is started in its own process group and killed on
exit (also on error or Ctrl-C).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from tests.support.processes import HOST, port_open, wait_until
from tests.support.processes import free_port as free_port  # re-exported

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
PYTHON = sys.executable
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def uptime() -> str:
    """``uptime`` load averages, for the record."""
    with open("/proc/loadavg") as fh:
        one, five, fifteen = fh.read().split()[:3]
    return f"load {one} {five} {fifteen}"


def load1() -> float:
    with open("/proc/loadavg") as fh:
        return float(fh.read().split()[0])


def wait_quiet(max_load: float, max_wait: float = 300.0, poll: float = 30.0) -> str:
    """Wait (bounded) for the 1-minute load average to drop below ``max_load``."""
    deadline = time.monotonic() + max_wait
    while load1() > max_load and time.monotonic() < deadline:
        print(f"# busy ({uptime()}), waiting {poll:.0f} s", flush=True)
        time.sleep(poll)
    return uptime()


def cpu_seconds(pid: int) -> float:
    """utime + stime of a whole process (all threads), in seconds."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/statm") as fh:
        return int(fh.read().split()[1]) * PAGE_KB / 1024


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def wait_port(port: int, timeout: float = 30.0) -> None:
    wait_until(lambda: port_open(port), timeout=timeout, interval=0.1, what=f"{HOST}:{port}")


def pin(pid: int, cpus: set[int]) -> None:
    """Move every thread of ``pid`` to ``cpus``."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(int(tid), cpus)


@dataclass
class Child:
    """A started process (its own process group)."""

    name: str
    proc: subprocess.Popen[bytes]
    log: IO[bytes] | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self, timeout: float = 5.0) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout)
        if self.log is not None:
            self.log.close()


@dataclass
class Children:
    """Starts children and kills all of them on exit, whatever happens."""

    logdir: Path
    started: list[Child] = field(default_factory=list)

    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: dict[str, str],
        cpus: set[int] | None = None,
    ) -> Child:
        self.logdir.mkdir(parents=True, exist_ok=True)
        log = (self.logdir / f"{name}.log").open("ab")

        def preexec() -> None:
            os.setpgid(0, 0)
            if cpus is not None:
                os.sched_setaffinity(0, cpus)

        proc = subprocess.Popen(
            list(argv), cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, preexec_fn=preexec
        )
        child = Child(name, proc, log)
        self.started.append(child)
        return child

    def stop(self, child: Child) -> None:
        child.stop()
        if child in self.started:
            self.started.remove(child)

    def stop_all(self) -> None:
        while self.started:
            self.started.pop().stop()


@contextlib.contextmanager
def children(logdir: Path) -> Iterator[Children]:
    kids = Children(logdir)

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield kids
    finally:
        kids.stop_all()
        signal.signal(signal.SIGTERM, previous)


def server_env(
    *,
    app_dir: Path,
    db_path: Path,
    upstream_port: int,
    max_sessions: int,
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """Environment of the worker under test (development settings, limits raised)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "VOICE_"))}
    env.pop("REDIS_URL", None)
    env.pop("DATABASE_URL", None)
    env.update(
        {
            "PYTHONPATH": str(app_dir),
            "DJANGO_SETTINGS_MODULE": "voiceproject.settings.base",
            "DJANGO_DEBUG": "1",
            "DATABASE_URL": f"sqlite:///{db_path}",
            "AZURE_VOICELIVE_ENDPOINT": f"http://{HOST}:{upstream_port}",
            "AZURE_VOICELIVE_API_KEY": "bench-key",
            "VOICE_MAX_SESSIONS_PER_WORKER": str(max_sessions),
            "VOICE_CONNECTIONS_PER_MINUTE_PER_USER": "100000",
            "VOICE_CONNECTIONS_PER_MINUTE_PER_IP": "1000000",
            "ASSISTANT_LOG_LEVEL": "WARNING",
        }
    )
    env.update(extra or {})
    return env


_ACCOUNTS = """
import json, sys
import django
django.setup()
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client
n = int(sys.argv[1])
quota_minutes = int(sys.argv[2]) if len(sys.argv) > 2 else 0
User = get_user_model()
keys = []
for i in range(n):
    user, created = User.objects.get_or_create(username=f"bench{i:04d}")
    if created:
        user.set_unusable_password()
        user.save()
    if quota_minutes:
        from assistant.history.models import UsageQuota
        UsageQuota.objects.update_or_create(
            user=user, defaults={"minutes_per_day": quota_minutes, "group": None}
        )
    client = Client()
    client.force_login(user)
    keys.append(client.cookies[settings.SESSION_COOKIE_NAME].value)
print(json.dumps({"cookie": settings.SESSION_COOKIE_NAME, "keys": keys}))
"""


def accounts_create(
    env: dict[str, str], app_dir: Path, n: int, quota_minutes: int = 0
) -> tuple[str, list[str]]:
    """Migrate the bench database and log in ``n`` users; returns (cookie name, session keys).

    ``quota_minutes``: give every user a daily minute quota (0: none). A user with a quota is
    the expensive case of the live quota check (checked on every heartbeat).
    """
    subprocess.run(
        [PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=app_dir,
        env=env,
        check=True,
        timeout=300,
    )
    out = subprocess.run(
        [PYTHON, "-c", _ACCOUNTS, str(n), str(quota_minutes)],
        cwd=app_dir,
        env=env,
        check=True,
        timeout=600,
        capture_output=True,
        text=True,
    ).stdout
    data = json.loads(out.strip().splitlines()[-1])
    return str(data["cookie"]), [str(k) for k in data["keys"]]


def daphne_argv(app: str, port: int) -> list[str]:
    return [PYTHON, "-m", "daphne", "-b", HOST, "-p", str(port), app]


def git_rev(app_dir: Path) -> str:
    with contextlib.suppress(Exception):
        return subprocess.run(
            ["git", "-C", str(app_dir), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    return "?"
