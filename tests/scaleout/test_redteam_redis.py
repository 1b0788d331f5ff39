"""Red-team findings of issue 9 that need Redis: monitors and the registry's slow path.

One Daphne worker on the shared test database and a private Redis, re-validating and beating
every 0.5 s. Monitors are opened by staff users holding only the monitor permission; Redis is
killed to lose layer messages on purpose.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any

import pytest

from tests.scaleout.conftest import MEASURED, PASSWORD, setup_env
from tests.scaleout.test_two_workers import save_profile
from tests.support.servers import (
    Browser,
    DaphneServer,
    Database,
    RedisServer,
    Socket,
    daphne_env,
    login_sessions,
    manage,
)

pytestmark = [pytest.mark.scaleout, pytest.mark.redis, pytest.mark.timeout(60)]

PERIOD = 0.5
ADMINS = ["mon_logout", "mon_staff", "mon_active", "mon_perm", "mon_outage", "mon_slow"]
TALKERS = [f"talk{i}" for i in range(1, 7)]
SUPERUSER = "rt_root"

CREATE_USERS = f"""
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
User = get_user_model()
perm = Permission.objects.get(codename="monitor_livesession")
for name in {ADMINS!r}:
    user = User.objects.create_user(name, "", {PASSWORD!r}, is_staff=True)
    user.user_permissions.add(perm)
for name in {TALKERS!r}:
    User.objects.create_user(name, "", {PASSWORD!r})
User.objects.create_superuser({SUPERUSER!r}, "", {PASSWORD!r})
"""


@pytest.fixture(scope="module")
def keys(database: Database) -> dict[str, list[str]]:
    manage(setup_env(database), "shell", "-c", CREATE_USERS)
    return login_sessions(setup_env(database), [*ADMINS, *TALKERS, SUPERUSER], per_user=2)


@pytest.fixture(scope="module")
def worker(
    redis: RedisServer, database: Database, upstream: str, logs: Any, keys: Any
) -> Iterator[DaphneServer]:
    env = daphne_env(
        worker_name="R",
        database_url=database.url,
        redis_url=redis.url,
        upstream_url=upstream,
        extra={
            "VOICE_HEARTBEAT_SECONDS": str(PERIOD),
            "VOICE_REVALIDATE_SECONDS": str(PERIOD),
            "VOICE_CONNECTIONS_PER_MINUTE_PER_USER": "1000",
            "VOICE_CONNECTIONS_PER_MINUTE_PER_IP": "1000",
            "ASSISTANT_LOG_LEVEL": "INFO",
        },
    )
    server = DaphneServer("R", env, logs)
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
async def browsers(
    keys: dict[str, list[str]], worker: DaphneServer, redis: RedisServer
) -> AsyncIterator[Callable[[str], Coroutine[Any, Any, Browser]]]:
    if not redis.running:
        redis.restart()
    opened: list[Browser] = []

    async def login(username: str) -> Browser:
        browser = Browser(worker.base_url)
        opened.append(browser)
        return browser.adopt_session(keys[username].pop())

    yield login
    for browser in opened:
        await browser.aclose()


def execute(database: Database, sql: str, params: tuple[Any, ...]) -> None:
    """One write to the shared database, as another process would make it."""
    if database.kind == "sqlite":
        with contextlib.closing(sqlite3.connect(database.name, timeout=5)) as conn:
            conn.execute(sql.replace("%s", "?"), params)
            conn.commit()
        return
    import psycopg

    with psycopg.connect(database.url.replace("postgres://", "postgresql://", 1)) as conn:
        conn.execute(sql, params)  # type: ignore[arg-type]


async def talk(browser: Browser, worker: DaphneServer) -> tuple[Socket, str]:
    sock = await browser.websocket(worker.ws_url("/ws/voice/"))
    ready = await sock.expect("session.ready", timeout=10)
    return sock, str(ready["session_id"])


async def monitor(browser: Browser, worker: DaphneServer, session_id: str) -> Socket:
    return await browser.websocket(worker.ws_url(f"/ws/monitor/{session_id}/"))


# ----------------------------------------------------------------------------- 2: monitors


async def test_logout_ends_the_admins_live_monitor(
    worker: DaphneServer, browsers: Callable[..., Any]
) -> None:
    sock, session_id = await talk(await browsers("talk1"), worker)
    admin = await browsers("mon_logout")
    mon = await monitor(admin, worker, session_id)
    await mon.expect("monitor.attached", timeout=5)
    await admin.get_text("/")  # another tab of the admin, with the CSRF cookie
    started = time.monotonic()
    assert await admin.post_form("/accounts/logout/", {}) in (200, 302)
    code = await mon.expect_close(timeout=PERIOD * 2 + 2)
    took = time.monotonic() - started
    MEASURED["monitor: admin logout -> monitor closed"] = took
    assert code == 4401
    assert mon.texts("monitor.ended")[-1]["reason"] == "logout"
    assert took < 1.5
    # The watched call goes on.
    await sock.send_json({"type": "ping"})
    await sock.expect("pong")


DEMOTIONS = {
    "mon_staff": ("UPDATE auth_user SET is_staff = %s WHERE username = %s", (False,), 4403),
    "mon_active": ("UPDATE auth_user SET is_active = %s WHERE username = %s", (False,), 4401),
    "mon_perm": (
        "DELETE FROM auth_user_user_permissions WHERE user_id IN "
        "(SELECT id FROM auth_user WHERE username = %s)",
        (),
        4403,
    ),
}


@pytest.mark.parametrize("admin_name", list(DEMOTIONS))
async def test_a_demoted_admins_monitor_closes_within_one_period(
    worker: DaphneServer, browsers: Callable[..., Any], database: Database, admin_name: str
) -> None:
    talker = {"mon_staff": "talk2", "mon_active": "talk3", "mon_perm": "talk4"}[admin_name]
    sock, session_id = await talk(await browsers(talker), worker)
    mon = await monitor(await browsers(admin_name), worker, session_id)
    await mon.expect("monitor.attached", timeout=5)
    sql, params, expected = DEMOTIONS[admin_name]
    await asyncio.to_thread(execute, database, sql, (*params, admin_name))
    demoted = time.monotonic()
    code = await mon.expect_close(timeout=PERIOD * 2 + 2)
    took = time.monotonic() - demoted
    MEASURED[f"monitor: {admin_name.removeprefix('mon_')} revoked -> monitor closed"] = took
    assert code == expected
    assert took <= PERIOD * 2 + 0.5
    await sock.send_json({"type": "ping"})
    await sock.expect("pong")


async def test_a_monitor_survives_a_redis_outage(
    worker: DaphneServer, browsers: Callable[..., Any], redis: RedisServer
) -> None:
    """The monitor reads the layer through the supervised subscription: Redis killed for 1 s,
    the monitor stays open and follows the session again once Redis is back."""
    sock, session_id = await talk(await browsers("talk5"), worker)
    mon = await monitor(await browsers("mon_outage"), worker, session_id)
    await mon.expect("monitor.attached", timeout=5)
    redis.kill()
    await asyncio.sleep(1.0)
    redis.restart()
    restarted = time.monotonic()
    # Restarted empty; the session's fanout sends to the monitor's channel directly.
    deadline = restarted + 8
    while True:
        await sock.send_json({"type": "text.send", "text": "hello"})
        try:
            await mon.expect("transcript.assistant.done", timeout=1.0)
            break
        except (AssertionError, TimeoutError):
            assert mon.close_code is None, f"monitor closed ({mon.close_code})"
            if time.monotonic() > deadline:
                raise
    MEASURED["monitor: Redis back -> monitor follows again"] = time.monotonic() - restarted
    assert mon.close_code is None


# ----------------------------------------------------------------------------- 7: slow path


async def test_a_profile_saved_during_a_redis_outage_reaches_the_live_session(
    worker: DaphneServer, browsers: Callable[..., Any], redis: RedisServer
) -> None:
    sock, _ = await talk(await browsers("talk6"), worker)
    profile_id = sock.texts("session.ready")[0]["profile"]["id"]
    admin = await browsers(SUPERUSER)
    await admin.get_text("/admin/")
    redis.kill()
    try:
        saved = time.monotonic()
        await save_profile(admin, profile_id)  # its layer message is lost: Redis is down
        updated = await sock.expect("profile.updated", timeout=PERIOD * 2 + 3)
        took = time.monotonic() - saved
        MEASURED["profile saved with Redis down -> profile.updated (heartbeat)"] = took
        assert updated["profile"]["id"] == profile_id
        assert took <= PERIOD * 2 + 1.5
        assert redis.running is False  # it really came through the database
        # Applied once: no second profile.updated for the same save.
        await asyncio.sleep(PERIOD * 3)
        assert len(sock.texts("profile.updated")) == 1
    finally:
        redis.restart()


async def test_a_monitor_opened_during_a_redis_outage_attaches_through_the_registry(
    worker: DaphneServer, browsers: Callable[..., Any], redis: RedisServer
) -> None:
    sock, session_id = await talk(await browsers("talk1"), worker)
    redis.kill()
    try:
        mon = await monitor(await browsers("mon_slow"), worker, session_id)
        await asyncio.sleep(PERIOD * 3)  # a few heartbeats read the attachment
        assert mon.close_code is None
    finally:
        redis.restart()
    restarted = time.monotonic()
    deadline = restarted + 8
    while True:
        # Each typed message is a new reply: its messages are new copies for the monitor.
        await sock.send_json({"type": "text.send", "text": "hello"})
        try:
            await mon.expect("transcript.assistant.done", timeout=1.0)
            break
        except (AssertionError, TimeoutError):
            assert mon.close_code is None, f"monitor closed ({mon.close_code})"
            if time.monotonic() > deadline:
                raise
    MEASURED["monitor attached with Redis down: follows after restart"] = (
        time.monotonic() - restarted
    )
    # Greeted all the same (its monitor.attached was retried), before anything else.
    first = next(f.data for f in mon.seen if f.kind == "text")
    assert (first["type"], first["username"]) == ("monitor.attached", "talk1")
    await sock.send_json({"type": "session.stop"})
    assert (await mon.expect("monitor.ended", timeout=3))["reason"] == "ended"
