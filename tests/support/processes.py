"""Real server processes for multi-process tests: Redis, Daphne, nginx, a throwaway database.

Everything binds 127.0.0.1 on a free port, logs to a file (never a pipe that could fill up) and
is stopped by its own PID. Each helper is a plain class with ``start``/``stop``; wrap it in a
fixture with a finalizer so a failing test still cleans up::

    redis = RedisServer(tmp_path).start()
    try:
        ...
    finally:
        redis.stop()
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[2]
PYTHON = REPO / ".venv" / "bin" / "python"
DAPHNE = REPO / ".venv" / "bin" / "daphne"
HOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = HOST) -> bool:
    """True when something accepts TCP connections on the port."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
        return True
    return False


def wait_until(predicate: Any, *, timeout: float, interval: float = 0.05, what: str = "") -> float:
    """Poll ``predicate()`` until it is truthy; returns the seconds it took.

    Raises:
        TimeoutError: it stayed falsy for ``timeout`` seconds.
    """
    started = time.monotonic()
    deadline = started + timeout
    while True:
        if predicate():
            return time.monotonic() - started
        if time.monotonic() > deadline:
            msg = f"timed out after {timeout}s waiting for {what or predicate}"
            raise TimeoutError(msg)
        time.sleep(interval)


class ManagedProcess:
    """A child process started by this test run, logged to ``log_path``, stopped by its PID.

    Args:
        name: a label for messages and the log file name.
        log_dir: where the log file goes.
    """

    def __init__(self, name: str, log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def _spawn(self, argv: list[str], env: Mapping[str, str] | None = None) -> None:
        assert self.proc is None or self.proc.poll() is not None, f"{self.name} already running"
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                argv, cwd=REPO, env=dict(env) if env is not None else None, stdout=log, stderr=log
            )

    @property
    def pid(self) -> int:
        """The PID of the running process."""
        assert self.proc is not None
        return self.proc.pid

    @property
    def running(self) -> bool:
        """True while the process has not exited."""
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        """The end of the process log, for assertion messages."""
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def signal(self, signum: int) -> None:
        """Send a signal to this process (only this PID)."""
        if self.running:
            assert self.proc is not None
            self.proc.send_signal(signum)

    def sigterm(self) -> None:
        """SIGTERM, as a process manager sends it to stop a worker gracefully."""
        self.signal(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL, and reap it: a crash, no chance to clean up."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)

    def wait_exit(self, timeout: float) -> int:
        """Wait for the process to exit; returns its exit code.

        Raises:
            subprocess.TimeoutExpired: still running after ``timeout`` seconds.
        """
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout`` seconds. Safe to call twice."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def _wait_port(self, port: int, timeout: float) -> None:
        def ready() -> bool:
            if not self.running:
                msg = f"{self.name} exited early:\n{self.log_tail()}"
                raise RuntimeError(msg)
            return port_open(port)

        wait_until(ready, timeout=timeout, what=f"{self.name} on port {port}")


class RedisServer(ManagedProcess):
    """A private ``redis-server`` (no persistence) on a free port; kill and restart it at will."""

    def __init__(self, log_dir: Path, *, port: int | None = None) -> None:
        super().__init__(f"redis-{port or 'x'}", log_dir)
        self.port = port or free_port()
        self.name = f"redis-{self.port}"

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return f"redis://{HOST}:{self.port}/0"

    def start(self, timeout: float = 10.0) -> RedisServer:
        """Start (or restart, on the same port) and wait until it accepts connections."""
        argv = ["redis-server", "--port", str(self.port), "--bind", HOST, "--save", ""]
        argv += ["--appendonly", "no", "--protected-mode", "yes"]
        self._spawn(argv)
        self._wait_port(self.port, timeout)
        return self

    def restart(self, timeout: float = 10.0) -> RedisServer:
        """Start again on the same port after :meth:`kill` (empty: nothing was persisted)."""
        return self.start(timeout)


def daphne_env(
    *,
    worker_name: str,
    database_url: str,
    redis_url: str,
    upstream_url: str,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment of one Daphne worker of a test cluster (DEBUG on, base settings)."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "VOICE_", "AZURE_", "PYTEST", "REDIS_", "DATABASE_"))
    }
    env |= {
        "DJANGO_SETTINGS_MODULE": "voiceproject.settings.base",
        "DJANGO_DEBUG": "1",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "AZURE_VOICELIVE_ENDPOINT": upstream_url,
        "AZURE_VOICELIVE_API_KEY": "test-key",
        "VOICE_WORKER_NAME": worker_name,
        "PYTHONUNBUFFERED": "1",
    }
    env |= dict(extra or {})
    return env


class DaphneServer(ManagedProcess):
    """One Daphne worker serving ``voiceproject.asgi:application`` on a free port.

    Args:
        name: the worker name (``VOICE_WORKER_NAME``).
        env: its full environment (see :func:`daphne_env`).
        log_dir: where ``daphne-<name>.log`` goes.
        flags: more Daphne flags (limits, keepalive).
    """

    def __init__(
        self, name: str, env: Mapping[str, str], log_dir: Path, flags: Sequence[str] = ()
    ) -> None:
        super().__init__(f"daphne-{name}", log_dir)
        self.worker_name = name
        self.env = dict(env)
        self.flags = list(flags)
        self.port = free_port()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``; also the ``Origin`` its websockets accept."""
        return f"http://{HOST}:{self.port}"

    def ws_url(self, path: str) -> str:
        """The websocket URL of ``path`` on this worker."""
        return f"ws://{HOST}:{self.port}{path}"

    def start(self, timeout: float = 20.0) -> DaphneServer:
        """Start and wait until ``/healthz`` answers (Django fully loaded)."""
        argv = [str(DAPHNE), "-b", HOST, "-p", str(self.port), *self.flags]
        self._spawn([*argv, "voiceproject.asgi:application"], self.env)
        self._wait_port(self.port, timeout)
        return self

    def restart(self, timeout: float = 20.0, **env: str) -> DaphneServer:
        """Stop (if running) and start again on the same port, optionally with changed env."""
        self.stop()
        self.env |= env
        return self.start(timeout)


NGINX = Path("/usr/sbin/nginx")

NGINX_CONF = """
# A minimal reverse proxy for tests: one process (no orphaned workers), logs in the prefix.
daemon off;
master_process off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 512; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
    upstream workers {{
{servers}
    }}
    server {{
        listen {host}:{port};
        location / {{
            proxy_pass http://workers;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_read_timeout 3600s;
        }}
    }}
}}
"""


class NginxProxy(ManagedProcess):
    """nginx on a free port, round-robin over some Daphne workers (websockets upgraded).

    Args:
        upstream_ports: the workers' ports on 127.0.0.1.
        log_dir: its prefix directory (config, pid, error log) is created in there.
    """

    def __init__(self, upstream_ports: list[int], log_dir: Path) -> None:
        self.port = free_port()
        super().__init__(f"nginx-{self.port}", log_dir)
        self.prefix = log_dir / self.name
        self.upstream_ports = upstream_ports

    @staticmethod
    def available() -> bool:
        """True when the nginx binary is installed."""
        return NGINX.exists()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``, the proxy's address (and the Origin to send)."""
        return f"http://{HOST}:{self.port}"

    def ws_url(self, path: str) -> str:
        """The websocket URL of ``path`` through the proxy."""
        return f"ws://{HOST}:{self.port}{path}"

    def start(self, timeout: float = 10.0) -> NginxProxy:
        """Write the config and start nginx in the foreground."""
        self.prefix.mkdir(parents=True, exist_ok=True)
        servers = "\n".join(f"        server {HOST}:{p};" for p in self.upstream_ports)
        conf = NGINX_CONF.format(prefix=self.prefix, servers=servers, host=HOST, port=self.port)
        (self.prefix / "nginx.conf").write_text(conf)
        argv = [str(NGINX), "-p", str(self.prefix), "-c", str(self.prefix / "nginx.conf")]
        self._spawn([*argv, "-e", str(self.prefix / "error.log")])
        self._wait_port(self.port, timeout)
        return self


def manage(env: Mapping[str, str], *args: str, stdin: str | None = None) -> str:
    """Run ``manage.py`` with ``env``; returns stdout, raises with the output on failure."""
    result = subprocess.run(
        [str(PYTHON), "manage.py", *args],
        cwd=REPO,
        env=dict(env),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode != 0:
        msg = f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
        raise RuntimeError(msg)
    return result.stdout


def django_shell(database_url: str, code: str) -> str:
    """Run Python ``code`` in ``manage.py shell`` on a test database (no Redis, no upstream).

    Returns its stdout; raises with the output on failure. Tests use it to create users and
    profiles the way an operator would, outside the server under test.
    """
    env = daphne_env(worker_name="setup", database_url=database_url, redis_url="", upstream_url="")
    return manage(env, "shell", "-c", code)


@dataclass
class Database:
    """A throwaway database for a test session: PostgreSQL when reachable, else a SQLite file.

    Attributes:
        url: the ``DATABASE_URL`` the workers use.
        kind: ``postgresql`` or ``sqlite``.
    """

    url: str
    kind: str
    name: str
    admin_dsn: str = ""

    @classmethod
    def create(
        cls, tmp_dir: Path, *, admin_dsn: str = "postgresql://postgres@127.0.0.1:5432/postgres"
    ) -> Database:
        """Create a fresh, empty database (not migrated)."""
        name = f"scaleout_{uuid.uuid4().hex[:12]}"
        try:
            import psycopg

            with psycopg.connect(admin_dsn, autocommit=True, connect_timeout=3) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
        except Exception:  # no PostgreSQL here: fall back to SQLite
            path = tmp_dir / f"{name}.sqlite3"
            return cls(url=f"sqlite:///{path}", kind="sqlite", name=str(path))
        parts = urlsplit(admin_dsn)
        url = f"postgres://{parts.netloc}/{name}"
        return cls(url=url, kind="postgresql", name=name, admin_dsn=admin_dsn)

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run one read query against the shared database (placeholders: ``%s``)."""
        if self.kind == "sqlite":
            with contextlib.closing(sqlite3.connect(self.name, timeout=5)) as conn:
                return list(conn.execute(sql.replace("%s", "?"), params).fetchall())
        import psycopg

        with psycopg.connect(self.url.replace("postgres://", "postgresql://", 1)) as conn:
            return list(conn.execute(sql, params).fetchall())  # type: ignore[arg-type]

    def drop(self) -> None:
        """Remove the database (terminating leftover connections first)."""
        if self.kind == "sqlite":
            with contextlib.suppress(FileNotFoundError):
                Path(self.name).unlink()
            return
        import psycopg

        with psycopg.connect(self.admin_dsn, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


@contextlib.contextmanager
def throwaway_database(tmp_dir: Path) -> Iterator[Database]:
    """A :class:`Database` that is dropped on exit, even when the block fails."""
    database = Database.create(tmp_dir)
    try:
        yield database
    finally:
        database.drop()
