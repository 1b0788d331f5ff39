"""Fixtures for scale-out tests: two real Daphne workers sharing one database and one Redis.

Session scope: a throwaway database (PostgreSQL, else SQLite), migrated once, with test users;
an echo upstream (``localvoice --echo``).
Module scope: a private ``redis-server`` and the two workers ``A`` and ``B``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import measurements
from tests.support.servers import (
    DaphneServer,
    Database,
    RedisServer,
    daphne_env,
    login_sessions,
    manage,
    port_open,
    throwaway_database,
)

PASSWORD = "scaleout-pw-9f3k"
ADMIN = "root"
USERS = [f"user{i}" for i in range(1, 13)]
SESSIONS_PER_USER = 4
HEARTBEAT = 0.5
WORKER_ENV = {
    "VOICE_HEARTBEAT_SECONDS": str(HEARTBEAT),
    # These tests reconnect often; rate limits are not what they are about.
    "VOICE_CONNECTIONS_PER_MINUTE_PER_USER": "1000",
    "VOICE_CONNECTIONS_PER_MINUTE_PER_IP": "1000",
    "ASSISTANT_LOG_LEVEL": "INFO",
}

#: What the tests measured (seconds), printed at the end of the run (docs/reliability.md).
MEASURED = measurements.section("scale-out measurements", measurements.milliseconds)

CREATE_USERS = f"""
from django.contrib.auth import get_user_model
User = get_user_model()
User.objects.create_superuser({ADMIN!r}, "", {PASSWORD!r})
for name in {USERS!r}:
    User.objects.create_user(name, "", {PASSWORD!r})
"""


@pytest.fixture(scope="session")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The directory of every process log of this run (printed on failure)."""
    return tmp_path_factory.mktemp("scaleout-logs")


@pytest.fixture(scope="session")
def database(logs: Path) -> Iterator[Database]:
    """A fresh, migrated database with a superuser and plain users; dropped at the end."""
    with throwaway_database(logs) as db:
        manage(setup_env(db), "migrate", "--noinput", "-v", "0")
        manage(setup_env(db), "shell", "-c", CREATE_USERS)
        yield db


def setup_env(db: Database) -> dict[str, str]:
    """The environment of one-off ``manage.py`` commands against the shared database."""
    return daphne_env(worker_name="setup", database_url=db.url, redis_url="", upstream_url="")


@pytest.fixture(scope="session")
def session_keys(database: Database) -> dict[str, list[str]]:
    """Logged-in session keys per username (created server-side; the login page is not ours)."""
    return login_sessions(setup_env(database), [ADMIN, *USERS], per_user=SESSIONS_PER_USER)


@pytest.fixture(scope="session")
def upstream(localvoice_echo: str) -> str:
    """The endpoint every worker talks to: ``localvoice --echo`` (``tests/support/fixtures.py``)."""
    return localvoice_echo


@pytest.fixture(scope="module")
def redis(logs: Path) -> Iterator[RedisServer]:
    """A private Redis for this module (never the system one on 6379)."""
    server = RedisServer(logs).start()
    yield server
    server.stop()


@dataclass
class Cluster:
    """Two workers and what they share."""

    a: DaphneServer
    b: DaphneServer
    redis: RedisServer
    database: Database
    upstream: str
    logs: Path

    def worker(self, name: str, **extra: str) -> DaphneServer:
        """A further worker of the same cluster (not started; the caller stops it)."""
        env = daphne_env(
            worker_name=name,
            database_url=self.database.url,
            redis_url=self.redis.url,
            upstream_url=self.upstream,
            extra={**WORKER_ENV, **extra},
        )
        return DaphneServer(name, env, self.logs)

    def ensure_running(self) -> None:
        """Restart a worker a previous test killed or drained."""
        for server in (self.a, self.b):
            if not (server.running and port_open(server.port)):
                server.restart()


@pytest.fixture(scope="module")
def cluster(redis: RedisServer, database: Database, upstream: str, logs: Path) -> Iterator[Cluster]:
    """Workers ``A`` and ``B`` on their own ports, started together, stopped at the end."""
    c = Cluster(
        a=None,  # type: ignore[arg-type]
        b=None,  # type: ignore[arg-type]
        redis=redis,
        database=database,
        upstream=upstream,
        logs=logs,
    )
    c.a, c.b = c.worker("A"), c.worker("B")
    try:
        c.a.start()
        c.b.start()
        yield c
    finally:
        c.a.stop()
        c.b.stop()


@pytest.fixture
def two_workers(cluster: Cluster) -> Cluster:
    """The module's cluster, with both workers up and Redis running."""
    if not cluster.redis.running:
        cluster.redis.restart()
    cluster.ensure_running()
    return cluster


@pytest.fixture(scope="module")
def worker_c(cluster: Cluster) -> Iterator[DaphneServer]:
    """A third worker with the ``refuse`` policy and monitor audio on."""
    server = cluster.worker("C", VOICE_SESSION_POLICY="refuse", VOICE_MONITOR_AUDIO="1")
    try:
        yield server.start()
    finally:
        server.stop()
