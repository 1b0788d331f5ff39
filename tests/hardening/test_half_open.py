"""A browser that goes silent without closing is detected, and its upstream session is closed.

A frozen tab, a closed laptop lid or a vanished network leave a *half-open* TCP connection: the
server's kernel still holds it, no FIN or RST ever arrives, and without keepalives the worker
would keep the session, its worker slot and its Voice Live connection forever. Daphne sends
websocket pings (``--ping-interval``) and drops a peer that does not answer one within
``--ping-timeout``; the consumer's ``disconnect`` then closes the upstream connection.

Proven over the real path: one Daphne process (``--ping-interval 1 --ping-timeout 2``; production
uses 20/30, see ``deploy/README.md``) with its own SQLite database, in front of
``localvoice --echo``.

* The frozen browser is a separate child process (an aiohttp websocket client with the session
  cookie and the page's Origin) that answers Daphne's pings until it has answered one, and is
  then ``SIGSTOP``-ed: it answers nothing any more while the kernel keeps its TCP connection
  open and even acknowledges Daphne's pings. Within ping interval + ping timeout + margin the
  upstream connection at localvoice is gone (its accepted sockets in ``/proc/net/tcp`` and its
  ``/healthz`` session count), the worker's ``voice_active_sessions`` gauge is back to 0, the
  worker logged the session's end with the abnormal close code 1006, and the frozen client's
  socket was reset by the server.
* The control: a live client that keeps reading (aiohttp answers pings while it reads) stays
  connected well past ping interval + ping timeout, has answered Daphne's pings, and its session
  still answers ``{"type": "ping"}`` with ``pong``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.hardening.conftest import EchoStack, echo_stack
from tests.support import measurements
from tests.support.localvoice import healthz
from tests.support.servers import PYTHON, REPO, Browser

pytestmark = [pytest.mark.hardening, pytest.mark.integration]

PING_INTERVAL = 1
PING_TIMEOUT = 2
#: Daphne checks its connections every 2 s (``timeout_checker``), so a ping goes out up to 2 s
#: after it is due; then the timeout runs. Worst case about 4 s from the freeze to the drop.
DETECTION_BUDGET = 6.0
#: How long the live client must survive: well past ping interval + ping timeout.
LIVE_HOLD = 5.0
TIMINGS = measurements.section("half-open timings")

USERS_SCRIPT = """
from django.contrib.auth.models import User
User.objects.create_user("frozen", password="pw-frozen-12345")
"""

#: The frozen browser. It reads its socket and answers Daphne's pings itself (printing each),
#: like a live tab, until the test stops the whole process with SIGSTOP.
CHILD_SCRIPT = """
import asyncio, json, os
import aiohttp

async def main():
    headers = {"Cookie": "sessionid=" + os.environ["HALF_OPEN_SESSIONID"]}
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(
            os.environ["HALF_OPEN_WS_URL"], origin=os.environ["HALF_OPEN_ORIGIN"],
            headers=headers, autoping=False, heartbeat=None, autoclose=False,
        )
        port = ws.get_extra_info("sockname")[1]
        pings = 0
        while True:
            msg = await ws.receive()
            if msg.type == aiohttp.WSMsgType.PING:
                await ws.pong(msg.data)
                pings += 1
                print("ping", pings, flush=True)
            elif msg.type == aiohttp.WSMsgType.TEXT:
                if json.loads(msg.data).get("type") == "session.ready":
                    print("ready", port, flush=True)
            elif msg.type != aiohttp.WSMsgType.BINARY:
                print("closed", msg.type.name, ws.close_code, flush=True)
                return

asyncio.run(main())
"""


Stack = EchoStack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Daphne with keepalive pings scaled down from production's 20/30 s to 1/2 s."""
    keepalive = ["--ping-interval", str(PING_INTERVAL), "--ping-timeout", str(PING_TIMEOUT)]
    tmp = tmp_path_factory.mktemp("hardening-half-open")
    with echo_stack(
        tmp, name="half-open", users_script=USERS_SCRIPT, daphne_flags=keepalive
    ) as echo:
        yield echo


# ----------------------------------------------------------------------------- helpers


async def metrics_text(stack: Stack) -> str:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{stack.base}/metrics") as resp,
    ):
        return await resp.text()


async def active_sessions(stack: Stack) -> float:
    """The worker's ``voice_active_sessions`` gauge, from its ``/metrics``."""
    match = re.search(r"^voice_active_sessions (\S+)$", await metrics_text(stack), re.M)
    assert match, "no voice_active_sessions gauge on /metrics"
    return float(match.group(1))


async def lost_connections(stack: Stack) -> float:
    """Sessions ended because the browser's connection was lost (``/metrics``)."""
    pattern = r'^voice_sessions_ended_total\{reason="connection_lost"\} (\S+)$'
    match = re.search(pattern, await metrics_text(stack), re.M)
    return float(match.group(1)) if match else 0.0


async def upstream_sessions(stack: Stack) -> int:
    """Sessions localvoice holds right now (its ``/healthz``)."""
    return int((await asyncio.to_thread(healthz, stack.localvoice.endpoint))["sessions"])


def tcp_state(local_port: int, remote_port: int) -> str | None:
    """The state (hex, ``01`` = ESTABLISHED) of 127.0.0.1:local -> :remote, None when gone."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local = int(fields[1].split(":")[1], 16)
        remote = int(fields[2].split(":")[1], 16)
        if (local, remote) == (local_port, remote_port):
            return fields[3]
    return None


async def login_cookie(stack: Stack) -> str:
    """Log in through the real login form; returns the ``sessionid`` cookie."""
    async with Browser(stack.base) as browser:
        await browser.login("frozen", "pw-frozen-12345")
        return browser.cookie("sessionid")


async def read_line(proc: asyncio.subprocess.Process, timeout: float) -> str:
    """The child's next stdout line (fails on EOF or after ``timeout``)."""
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), timeout)
    assert line, f"the child exited (code {proc.returncode}) without saying more"
    return line.decode().strip()


async def wait_for(what: str, predicate: Any, timeout: float, interval: float = 0.02) -> float:
    """Poll an async predicate until it is true; returns the seconds it took."""
    started = time.monotonic()
    while not await predicate():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what}: not within {timeout} s")
        await asyncio.sleep(interval)
    return time.monotonic() - started


# ----------------------------------------------------------------------------- the frozen tab


async def test_a_frozen_browser_is_dropped_and_its_upstream_closed(stack: Stack) -> None:
    assert stack.upstream_connections() == 0
    assert await active_sessions(stack) == 0
    env = {
        **os.environ,
        "HALF_OPEN_SESSIONID": await login_cookie(stack),
        "HALF_OPEN_WS_URL": stack.ws(),
        "HALF_OPEN_ORIGIN": stack.base,
        "PYTHONUNBUFFERED": "1",
    }
    stderr_path = stack.tmp / "frozen-child.stderr"
    with stderr_path.open("wb") as stderr:
        child = await asyncio.create_subprocess_exec(
            str(PYTHON),
            "-c",
            CHILD_SCRIPT,
            cwd=REPO,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
        )
    try:
        try:
            ready = await read_line(child, timeout=10)
            assert ready.startswith("ready "), ready
            client_port = int(ready.split()[1])
            assert stack.upstream_connections() == 1
            assert await active_sessions(stack) == 1
            assert await upstream_sessions(stack) == 1
            # Alive as a tab: it answers Daphne's keepalive (the first ping within ~3 s).
            answered = await read_line(child, timeout=PING_INTERVAL + 4)
            assert answered == "ping 1", answered
        except (AssertionError, TimeoutError) as exc:
            raise AssertionError(f"{exc}\nchild stderr:\n{stderr_path.read_text()}") from exc

        lost_before = await lost_connections(stack)
        # The freeze: no websocket frame, no FIN, no RST from the browser from now on.
        child.send_signal(signal.SIGSTOP)
        frozen_at = time.monotonic()
        # Half-open: the kernel keeps the connection ESTABLISHED on both sides.
        assert tcp_state(client_port, stack.daphne.port) == "01"
        assert stack.upstream_connections() == 1

        async def upstream_gone() -> bool:
            return stack.upstream_connections() == 0

        detected = await wait_for("upstream closed", upstream_gone, DETECTION_BUDGET)
        TIMINGS["frozen_to_upstream_closed_s"] = detected
        print(f"\nhalf-open detected, upstream closed {detected:.2f} s after SIGSTOP")

        async def slot_freed() -> bool:
            return await active_sessions(stack) == 0

        async def localvoice_idle() -> bool:
            return await upstream_sessions(stack) == 0

        await wait_for("worker slot freed", slot_freed, 1.0)
        await wait_for("localvoice session ended", localvoice_idle, 1.0)
        TIMINGS["frozen_to_slot_freed_s"] = time.monotonic() - frozen_at
        # Dropped by the keepalive, not by anything the browser did (it is still stopped): the
        # pong it never sent was due ping timeout seconds after a ping that came after the freeze.
        assert child.returncode is None
        assert detected >= PING_TIMEOUT - 0.5, f"dropped after {detected:.2f} s: not the keepalive?"
        # Daphne aborted the connection: the stopped client's socket was reset under it.
        assert tcp_state(client_port, stack.daphne.port) in (None, "07")
        await asyncio.sleep(0.2)  # let the worker flush its log line
        log = stack.daphne.log_path.read_text(errors="replace")
        assert re.search(r"voice session \S+ ended \(close code 1006\)", log), log[-2000:]
        assert await lost_connections(stack) == lost_before + 1
    finally:
        if child.returncode is None:
            child.kill()  # SIGKILL ends a stopped process too: no SIGCONT needed
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(child.wait(), 5)


# ----------------------------------------------------------------------------- the control


async def test_a_live_browser_answering_pings_stays_connected(stack: Stack) -> None:
    async with Browser(stack.base) as browser:
        await browser.login("frozen", "pw-frozen-12345")
        sock = await browser.websocket(stack.ws())
        try:
            await sock.expect("session.ready")
            assert stack.upstream_connections() == 1
            # aiohttp answers pings inside receive() (autoping); count the pongs it sends.
            pongs = 0
            send_pong = sock.ws.pong

            async def counting_pong(message: bytes = b"") -> None:
                nonlocal pongs
                pongs += 1
                await send_pong(message)

            sock.ws.pong = counting_pong  # type: ignore[method-assign]
            started = time.monotonic()
            while (left := LIVE_HOLD - (time.monotonic() - started)) > 0:
                with contextlib.suppress(TimeoutError):
                    frame = await sock.next_frame(timeout=min(left, 0.5))
                    assert frame.kind != "close", f"closed ({frame.code}) while answering pings"
            held = time.monotonic() - started
            TIMINGS["live_held_s"] = held
            TIMINGS["live_pings_answered"] = pongs
            assert held > PING_INTERVAL + PING_TIMEOUT
            assert pongs >= 1, "Daphne sent no keepalive ping: the control proves nothing"
            assert stack.upstream_connections() == 1
            assert await active_sessions(stack) == 1
            await sock.send_json({"type": "ping"})
            await sock.expect("pong", timeout=2)
        finally:
            await sock.close()

    async def released() -> bool:
        return stack.upstream_connections() == 0 and await active_sessions(stack) == 0

    await wait_for("session released after the browser closed", released, 3.0)
