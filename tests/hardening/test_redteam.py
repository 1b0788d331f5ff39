"""Red-team findings of issue 9, replayed against the real server.

One Daphne worker in the default configuration (``DJANGO_CSRF_TRUSTED_ORIGINS`` unset: the
same-origin rule) with its own SQLite database, in front of ``localvoice --echo``; browsers are
aiohttp clients that log in through the real login form. Re-validation and heartbeat run every
0.5 s so "within one period" is measurable.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bench.frame_flood import abuser_process
from tests.hardening.conftest import EchoStack, echo_stack, tone
from tests.hardening.test_daphne import handshake_status
from tests.support import measurements
from tests.support.processes import PYTHON
from tests.support.servers import (
    Browser,
    DaphneServer,
    ManagedProcess,
    daphne_env,
    free_port,
    manage,
)
from tests.support.stats import percentile

pytestmark = [pytest.mark.hardening, pytest.mark.integration, pytest.mark.timeout(90)]

PERIOD = 0.5  # VOICE_REVALIDATE_SECONDS and VOICE_HEARTBEAT_SECONDS of this worker
PASSWORD = "pw-redteam-12345"
USERS = ["pw_changed", "expired", "bystander", "flooder", "tiny", "victim"]
MEASURED = measurements.section("red-team measurements")

USERS_SCRIPT = f"""
from django.contrib.auth.models import User
for name in {USERS!r}:
    User.objects.create_user(name, password={PASSWORD!r})
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EchoStack]:
    tmp = tmp_path_factory.mktemp("redteam")
    env = {
        "VOICE_REVALIDATE_SECONDS": str(PERIOD),
        "VOICE_HEARTBEAT_SECONDS": str(PERIOD),
        "ASSISTANT_LOG_LEVEL": "INFO",
    }
    with echo_stack(
        tmp, name="redteam", users_script=USERS_SCRIPT, env=env, trust_page_origin=False
    ) as echo:
        yield echo


def db(stack: EchoStack) -> sqlite3.Connection:
    """The worker's own SQLite database, written as another process would (autocommit)."""
    return sqlite3.connect(stack.tmp / "db.sqlite3", timeout=5, isolation_level=None)


async def talking(stack: EchoStack, username: str) -> tuple[Browser, Any]:
    """A browser logged in as ``username`` with a live session (session.ready seen)."""
    browser = await Browser(stack.base).login(username, PASSWORD)
    sock = await browser.websocket(stack.ws())
    await sock.expect("session.ready", timeout=10)
    return browser, sock


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def quiescent(pid: int, timeout: float = 20.0) -> None:
    """Wait until the worker has worked off what a flood queued (Daphne buffers frames without
    bound): under 10 % of a core over 0.5 s. A fixed pause measured a backlog still in memory
    whenever the machine was busy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        start = cpu_seconds(pid)
        await asyncio.sleep(0.5)
        if cpu_seconds(pid) - start < 0.05:
            return
    raise AssertionError(f"the worker was still busy {timeout:.0f} s after the flood")


def rss_mb(pid: int) -> float:
    """Resident memory of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


# ----------------------------------------------------------------------------- 1: logins


async def test_a_password_change_ends_the_live_call_within_one_period(stack: EchoStack) -> None:
    browser, sock = await talking(stack, "pw_changed")
    other, bystander = await talking(stack, "bystander")
    try:
        # What set_password does to the row: a new hash, so the session auth hash no longer
        # matches (Django's get_user would log this cookie out).
        from django.contrib.auth.hashers import make_password

        with contextlib.closing(db(stack)) as conn:
            conn.execute(
                "UPDATE auth_user SET password = ? WHERE username = ?",
                (make_password("a-new-password-987"), "pw_changed"),
            )
        changed = time.monotonic()
        code = await sock.expect_close(timeout=PERIOD * 2 + 2)
        took = time.monotonic() - changed
        MEASURED["password change -> close (s)"] = round(took, 3)
        assert code == 4401
        assert took <= PERIOD * 2 + 0.5  # one re-validation period plus its jitter
        assert sock.texts("error")[-1]["code"] == "terminated"
        # Someone else's call goes on.
        await bystander.send_json({"type": "ping"})
        await bystander.expect("pong")
    finally:
        await sock.close()
        await bystander.close()
        await browser.aclose()
        await other.aclose()


async def test_an_expired_login_ends_the_live_call_within_one_period(stack: EchoStack) -> None:
    browser, sock = await talking(stack, "expired")
    try:
        key = browser.cookie("sessionid")
        with contextlib.closing(db(stack)) as conn:
            updated = conn.execute(
                "UPDATE django_session SET expire_date = '2000-01-01 00:00:00' "
                "WHERE session_key = ?",
                (key,),
            ).rowcount
        assert updated == 1  # the row is still there: only its expiry says it is over
        expired = time.monotonic()
        code = await sock.expect_close(timeout=PERIOD * 2 + 2)
        took = time.monotonic() - expired
        MEASURED["login expired -> close (s)"] = round(took, 3)
        assert code == 4401
        assert took <= PERIOD * 2 + 0.5
        # And the same cookie opens nothing new.
        status = await handshake_status(stack.ws(), origin=stack.base, cookies={"sessionid": key})
        assert status == 403
    finally:
        await sock.close()
        await browser.aclose()


# ----------------------------------------------------------------------------- 3: bad frames


async def abuser(
    stack: EchoStack, browser: Browser, *, seconds: float, frame_bytes: int, rate: float = 0
) -> subprocess.Popen[str]:
    """bench/frame_flood.py's abuser, in a process of its own (it must not share our loop)."""
    cookie = f"sessionid={browser.cookie('sessionid')}"
    return abuser_process(stack.ws(), stack.base, cookie, seconds, frame_bytes, rate)


async def abuser_result(proc: subprocess.Popen[str], timeout: float) -> dict[str, Any]:
    out, _ = await asyncio.to_thread(proc.communicate, timeout=timeout)
    return dict(json.loads(out.strip().splitlines()[-1]))


async def test_a_bad_frame_flood_is_closed_4400_and_memory_stays_flat(stack: EchoStack) -> None:
    browser = await Browser(stack.base).login("flooder", PASSWORD)
    try:
        # A short flood first, not measured: a fresh worker's first sockets import and allocate
        # what every later one reuses (19 MB once in CI, about 10 MB before), which is no leak.
        warmup = await abuser(stack, browser, seconds=1, frame_bytes=1)
        await abuser_result(warmup, timeout=30)
        await quiescent(stack.daphne.pid)
        before = rss_mb(stack.daphne.pid)
        # 1-byte frames (odd length: bad_audio), as fast as the client can, for 5 s ...
        proc = await abuser(stack, browser, seconds=5, frame_bytes=1)
        result = await abuser_result(proc, timeout=30)
        await quiescent(stack.daphne.pid)
        after = rss_mb(stack.daphne.pid)
        # ... and again: memory that grows per flood would show here (the first one also
        # warms the allocator's arenas up). Under CPU load a flood can land in arenas the
        # first one did not touch, so the worker gets up to three more floods to level off; a
        # leak grows with every one of them.
        growth: list[float] = []
        previous = after
        for _ in range(3):
            proc = await abuser(stack, browser, seconds=5, frame_bytes=1)
            again = await abuser_result(proc, timeout=30)
            await quiescent(stack.daphne.pid)
            assert {c["code"] for c in again["closes"]} == {4400}
            after_again = rss_mb(stack.daphne.pid)
            growth.append(round(after_again - previous, 1))
            previous = after_again
            if growth[-1] < 5:
                break
        MEASURED["bad frames: worker RSS MB after the last flood"] = round(after_again, 1)
        MEASURED["bad frames: RSS growth per later flood (MB)"] = growth
        assert growth[-1] < 5, f"grew after every flood: {growth} MB (from {after:.0f} MB)"
        closes = result["closes"]
        MEASURED["bad frames: frames sent in 5 s"] = result["frames_sent"]
        MEASURED["bad frames: closes"] = len(closes)
        MEASURED["bad frames: slowest close (s)"] = max(
            (c["after_s"] for c in closes), default=None
        )
        MEASURED["bad frames: worker RSS MB before/after"] = [round(before, 1), round(after, 1)]
        assert closes, "the flooder was never closed"
        assert {c["code"] for c in closes} == {4400}
        assert max(c["after_s"] for c in closes) < 3.0
        assert after - before < 15, f"worker grew from {before:.0f} to {after:.0f} MB"
        # The worker is fine: a new session echoes.
        sock = await browser.websocket(stack.ws())
        await sock.expect("session.ready", timeout=10)
        pcm = tone(100)
        await sock.send_audio(pcm)
        echoed = b""
        while len(echoed) < len(pcm):
            frame = await sock.next_frame(timeout=5)
            assert frame.kind != "close", frame
            if frame.kind == "binary":
                echoed += frame.data
        await sock.close()
    finally:
        await browser.aclose()


async def test_error_replies_to_one_socket_are_rate_limited(stack: EchoStack) -> None:
    """Bad input from two sources, each inside its own budget: the replies stop at theirs.

    90 bad audio frames (the abuse budget is 100) and 29 bad JSON messages (the control burst
    is 30, the ping is the 30th) ask for 119 error replies; the socket stays open, and it gets
    the reply burst (100) plus what refilled (10/s) while they were sent.
    """
    browser = await Browser(stack.base).login("flooder", PASSWORD)
    try:
        sock = await browser.websocket(stack.ws())
        await sock.expect("session.ready", timeout=10)
        started = time.monotonic()
        for _ in range(90):
            await sock.send_audio(b"\x00")
        for _ in range(29):
            await sock.ws.send_str("{not json")
        elapsed = time.monotonic() - started
        await sock.send_json({"type": "ping"})
        await sock.expect("pong", timeout=5)  # still open: no budget was exhausted
        errors = len(sock.texts("error"))
        assert 100 <= errors <= 100 + int(10 * elapsed) + 1, (errors, elapsed)
        assert errors < 119
        await sock.close()
    finally:
        await browser.aclose()


# ----------------------------------------------------------------------------- 4: tiny frames


async def victim_rtts(sock: Any, seconds: float) -> list[float]:
    """Echo round trips of 100 ms frames (the page's), one every 100 ms.

    No ``audio.ack``: the 7 s a test echoes stay inside the 10 s send window.
    """
    pcm = tone(100)
    rtts: list[float] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.monotonic()
        await sock.send_audio(pcm)
        got = 0
        while got < len(pcm):
            frame = await sock.next_frame(timeout=5)
            assert frame.kind != "close", f"victim closed ({frame.code})"
            if frame.kind == "binary":
                got += len(frame.data)
            else:
                assert frame.data.get("type") != "error", frame.data
        rtts.append(time.monotonic() - started)
        await asyncio.sleep(max(0.0, 0.1 - (time.monotonic() - started)))
    return rtts


async def test_tiny_frames_are_closed_4400_and_the_victim_keeps_its_latency(
    stack: EchoStack,
) -> None:
    """2-byte frames at 34,000/s (the red team's flood): inside the byte budget, over the
    frame rate. The abuser is closed within a fraction of a second every time it reconnects;
    the victim's echo latency (p50) stays where it was alone."""
    victim_browser, victim = await talking(stack, "victim")
    tiny = await Browser(stack.base).login("tiny", PASSWORD)
    try:
        alone = await victim_rtts(victim, 3)
        proc = await abuser(stack, tiny, seconds=5, frame_bytes=2, rate=34_000)
        await asyncio.sleep(0.3)
        flooded = await victim_rtts(victim, 4)
        result = await abuser_result(proc, timeout=30)
        closes = result["closes"]
        MEASURED["tiny frames: victim alone p50/p99 ms"] = [
            round(percentile(alone, 50) * 1000, 1),
            round(percentile(alone, 99) * 1000, 1),
        ]
        MEASURED["tiny frames: victim under flood p50/p99 ms"] = [
            round(percentile(flooded, 50) * 1000, 1),
            round(percentile(flooded, 99) * 1000, 1),
        ]
        MEASURED["tiny frames: abuser closes"] = len(closes)
        MEASURED["tiny frames: slowest close (s)"] = max(
            (c["after_s"] for c in closes), default=None
        )
        assert closes, "the abuser was never closed"
        assert {c["code"] for c in closes} == {4400}
        assert max(c["after_s"] for c in closes) < 1.0  # measured 0.07-0.11 s
        # Within 2x of its own baseline, or 10 ms on a machine shared with other work (before
        # the fix: 363 ms).
        assert percentile(flooded, 50) <= max(
            2 * percentile(alone, 50), percentile(alone, 50) + 0.010
        )
    finally:
        await victim.close()
        await victim_browser.aclose()
        await tiny.aclose()


# ----------------------------------------------------------------------------- 5: origins


async def test_default_origin_check_is_exact_scheme_host_and_port(stack: EchoStack) -> None:
    port = stack.daphne.port
    async with Browser(stack.base) as browser:
        await browser.login("bystander", PASSWORD)
        cookies = {"sessionid": browser.cookie("sessionid")}
        refused = [
            "http://127.0.0.1:9999",  # another port of an allowed host
            "https://127.0.0.1",  # another scheme (default port)
            f"https://127.0.0.1:{port}",  # another scheme, same port
            f"http://localhost:{port}",  # an allowed host, but not the one this page is on
            "http://127.0.0.1",
        ]
        for origin in refused:
            status = await handshake_status(stack.ws(), origin=origin, cookies=cookies)
            assert status == 403, f"Origin {origin}: {status}"
        # A Host header naming a host we do not serve cannot make its own origin "same".
        async with aiohttp.ClientSession() as http:
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused_host:
                await http.ws_connect(
                    stack.ws(),
                    origin=f"http://evil.example:{port}",
                    headers={
                        "Host": f"evil.example:{port}",
                        "Cookie": f"sessionid={cookies['sessionid']}",
                    },
                )
        assert refused_host.value.status in (400, 403)
        # The page's own origin, with no configuration at all.
        assert await handshake_status(stack.ws(), origin=stack.base, cookies=cookies) == 101
        # localhost is an allowed host too: a page served as localhost:<port> gets in.
        localhost_ws = f"ws://localhost:{port}/ws/voice/"
        status = await handshake_status(
            localhost_ws, origin=f"http://localhost:{port}", cookies=cookies
        )
        assert status == 101


# ----------------------------------------------------------------------------- 6: log forging

FORGERS_SCRIPT = """
from django.contrib.auth.models import User
from assistant.models import AssistantProfile
# (migration 0002 created the site default)
forge = AssistantProfile.objects.create(name="Forge", instructions="x", model="forge-on-update")
User.objects.create_user("forger", password="pw-redteam-12345")
User.objects.create_user("forger2", password="pw-redteam-12345").assistant_profiles.add(forge)
"""


class HostileUpstream(ManagedProcess):
    """``tests.hardening.hostile_upstream``: error events carrying forged log lines."""

    def __init__(self, log_dir: Path) -> None:
        super().__init__("hostile-upstream", log_dir)
        self.port = free_port()

    def start(self) -> HostileUpstream:
        args = ["--host", "127.0.0.1", "--port", str(self.port)]
        self._spawn([str(PYTHON), "-m", "tests.hardening.hostile_upstream", *args])
        self._wait_port(self.port, 30)
        return self


async def test_upstream_values_cannot_forge_log_lines(tmp_path: Path) -> None:
    upstream = HostileUpstream(tmp_path).start()
    env = daphne_env(
        worker_name="forge",
        database_url=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        redis_url="",
        upstream_url=f"http://127.0.0.1:{upstream.port}",
        extra={"ASSISTANT_LOG_LEVEL": "INFO"},
    )
    daphne = DaphneServer("forge", env, tmp_path)
    try:
        await asyncio.to_thread(manage, env, "migrate", "--noinput")
        await asyncio.to_thread(manage, env, "shell", "-c", FORGERS_SCRIPT)
        daphne.start()
        # An error event in a live session (voicelive/events.py EventRouter._on_error).
        async with Browser(daphne.base_url) as browser:
            await browser.login("forger", PASSWORD)
            sock = await browser.websocket(daphne.ws_url("/ws/voice/"))
            await sock.expect("session.ready", timeout=10)
            await sock.send_json({"type": "text.send", "text": "hello"})
            assert (await sock.expect("error", timeout=5))["code"] == "upstream_error"
            await sock.close()
        # An error event refusing the session's configuration (upstream._await_session_updated).
        async with Browser(daphne.base_url) as browser:
            await browser.login("forger2", PASSWORD)
            sock = await browser.websocket(daphne.ws_url("/ws/voice/"))
            assert await sock.expect_close(timeout=10) == 4502
        await asyncio.sleep(0.5)  # the worker's last lines are flushed
    finally:
        daphne.stop()
        upstream.stop()
    lines = daphne.log_path.read_text(errors="replace").splitlines()
    forged = [line for line in lines if "FORGED" in line]
    MEASURED["log forging: lines carrying the payload"] = len(forged)
    # Both attempts were logged, each as one line that is plainly ours ...
    assert any("voice live error event" in line for line in forged), forged
    assert any("voice live refused the session" in line for line in forged), forged
    assert len(forged) == 2, forged
    # ... and no line starts with the forged record.
    assert not [line for line in lines if line.startswith("2026-01-01 00:00:00,000")]
