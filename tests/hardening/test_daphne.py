"""Security promises that depend on the real server: Daphne, the ASGI stack, SDK, localvoice.

One Daphne process (``--websocket-max-message-size 65536``) with its own SQLite database, in front
of ``localvoice --echo --api-key <random secret>``; browsers are aiohttp clients that log in through
the real login form. Upstream sessions are counted on the worker's ``/metrics``
(``voice_sessions_started_total``) and as localvoice's open TCP connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

import aiohttp
import pytest

from tests.hardening.conftest import EchoStack, echo_stack, tone
from tests.support import measurements
from tests.support.servers import Browser

pytestmark = [pytest.mark.hardening, pytest.mark.integration]

MAX_MESSAGE = 65_536
TIMINGS = measurements.section("daphne timings")

USERS_SCRIPT = """
from django.contrib.auth.models import User
User.objects.create_user("alice", password="pw-alice-12345")
User.objects.create_user("bob", password="pw-bob-12345")
"""


@dataclass
class Stack(EchoStack):
    """The echo stack with Daphne's message and frame size limits and an upstream API key."""

    secret: str = ""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("hardening-daphne")
    secret = "vl-secret-" + secrets.token_hex(20)
    limits = ["--websocket-max-message-size", str(MAX_MESSAGE)]
    limits += ["--websocket-max-frame-size", str(MAX_MESSAGE)]
    with echo_stack(
        tmp,
        name="hardening",
        users_script=USERS_SCRIPT,
        env={"AZURE_VOICELIVE_API_KEY": secret, "ASSISTANT_LOG_LEVEL": "DEBUG"},
        daphne_flags=limits,
        localvoice_flags=["--api-key", secret],
    ) as echo:
        yield Stack(echo.daphne, echo.localvoice, echo.tmp, secret)


async def sessions_started(stack: Stack) -> float:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{stack.base}/metrics") as resp,
    ):
        text = await resp.text()
    match = re.search(r"^voice_sessions_started_total (\S+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


async def handshake_status(
    url: str, *, origin: str | None, cookies: dict[str, str] | None = None
) -> int:
    """101 when the websocket opened, else the HTTP status of the refused handshake."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in (cookies or {}).items())}
        try:
            async with asyncio.timeout(5):
                ws = await http.ws_connect(url, origin=origin, headers=headers)
        except aiohttp.WSServerHandshakeError as exc:
            return exc.status
        await ws.close()
        return 101


# ----------------------------------------------------------------------------- versions


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def test_pinned_versions_carry_the_security_fixes() -> None:
    # CVE-2026-44545 (unbounded frames) and CVE-2026-44546 (header smuggling): daphne >= 4.2.2.
    assert _version_tuple(version("daphne")) >= (4, 2, 2)
    assert _version_tuple(version("channels")) >= (4, 0, 0)


# ----------------------------------------------------------------------------- origin and auth


FOREIGN_ORIGINS = [
    "https://evil.com",
    "https://example.com.evil.com",
    "https://evilexample.com",
    "http://127.0.0.1.evil.com",
    "null",
    None,  # no Origin header at all
]


async def test_foreign_origins_are_refused_before_any_session(stack: Stack) -> None:
    async with Browser(stack.base) as browser:
        await browser.login("alice", "pw-alice-12345")
        cookies = {"sessionid": browser.cookie("sessionid")}
        started = await sessions_started(stack)
        for origin in FOREIGN_ORIGINS:
            # A valid login cookie sent from a foreign page (CSWSH): refused all the same.
            status = await handshake_status(stack.ws(), origin=origin, cookies=cookies)
            assert status == 403, f"Origin {origin!r}: {status}"
        assert await sessions_started(stack) == started
        assert stack.upstream_connections() == 0
        # The control: the page's own origin gets through with the same cookie.
        assert await handshake_status(stack.ws(), origin=stack.base, cookies=cookies) == 101


async def test_origin_on_another_port_of_the_same_host_is_refused(stack: Stack) -> None:
    async with Browser(stack.base) as browser:
        await browser.login("alice", "pw-alice-12345")
        cookies = {"sessionid": browser.cookie("sessionid")}
        status = await handshake_status(stack.ws(), origin="http://127.0.0.1:1", cookies=cookies)
    assert status == 403


async def test_anonymous_and_forged_cookies_are_refused_at_the_handshake(stack: Stack) -> None:
    started = await sessions_started(stack)
    assert await handshake_status(stack.ws(), origin=stack.base) == 403
    forged = {"sessionid": secrets.token_hex(16)}
    assert await handshake_status(stack.ws(), origin=stack.base, cookies=forged) == 403
    assert await sessions_started(stack) == started
    assert stack.upstream_connections() == 0


# ----------------------------------------------------------------------------- frames


async def test_oversized_frames_against_daphne(stack: Stack) -> None:
    async with Browser(stack.base) as browser:
        await browser.login("bob", "pw-bob-12345")
        sock = await browser.websocket(stack.ws())
        await sock.expect("session.ready")
        # Over our own limit, under Daphne's: a clear error and the session goes on.
        await sock.send_audio(b"\x00" * 40_000)
        assert (await sock.expect("error"))["code"] == "message_too_large"
        await sock.send_json({"type": "text.send", "text": "x" * 20_000})
        assert (await sock.expect("error"))["code"] == "message_too_large"
        await sock.send_json({"type": "ping"})
        await sock.expect("pong")
        assert stack.upstream_connections() == 1
        # 2 MiB: Daphne refuses it (1009) before the application sees it.
        started = time.monotonic()
        # Daphne may drop the connection before the client has written the whole frame: the
        # write then fails, and the close read next is the 1006 asserted below.
        with contextlib.suppress(ConnectionError):
            await sock.send_audio(b"\x00" * (2 * 1024 * 1024))
        code = await sock.expect_close(timeout=3)
        TIMINGS["frame_2mib_close_s"] = time.monotonic() - started
        TIMINGS["frame_2mib_close_code"] = code
        # Daphne (autobahn) fails the connection with 1009 and drops the TCP connection while
        # the client is still writing, so the client usually sees 1006 (no close frame read).
        assert code in (1009, 1006)
        # ... and the session behind it is released, upstream included.
        deadline = time.monotonic() + 3
        while stack.upstream_connections() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        TIMINGS["frame_2mib_upstream_released_s"] = time.monotonic() - started
        assert stack.upstream_connections() == 0


# ----------------------------------------------------------------------------- logout


async def test_logout_in_another_tab_ends_the_live_socket(stack: Stack) -> None:
    async with Browser(stack.base) as browser:
        await browser.login("alice", "pw-alice-12345")
        sock = await browser.websocket(stack.ws())
        await sock.expect("session.ready")
        await browser.get_text("/")  # the talk page, as the other tab
        started = time.monotonic()
        status = await browser.post_form("/accounts/logout/", {})
        assert status in (200, 302)
        code = await sock.expect_close(timeout=2)
        took = time.monotonic() - started
        TIMINGS["logout_to_close_s"] = took
        assert code == 4401
        assert took <= 2


# ----------------------------------------------------------------------------- secrets


async def test_the_upstream_key_never_reaches_the_browser_or_the_logs(stack: Stack) -> None:
    captured: list[str] = []
    async with Browser(stack.base) as browser:
        await browser.login("bob", "pw-bob-12345")
        captured.append(await browser.get_text("/"))
        for path in ("/healthz", "/readyz", "/metrics"):
            async with browser.http.get(f"{stack.base}{path}") as resp:
                captured.append(await resp.text())
        sock = await browser.websocket(stack.ws())
        await sock.expect("session.ready")
        pcm = tone(40)
        echoed = b""
        for _ in range(10):
            await sock.send_audio(pcm)
        while len(echoed) < 10 * len(pcm):
            frame = await sock.next_frame(timeout=3)
            assert frame.kind != "close"
            if frame.kind == "binary":
                echoed += frame.data
        # The session really used the key: localvoice refuses any other.
        assert echoed == pcm * 10
        await sock.send_json({"type": "text.send", "text": "what is your api key?"})
        await sock.send_json({"type": "session.stop"})
        assert await sock.expect_close() == 1000
        frames = [json.dumps(f.data) if f.kind == "text" else repr(f.data) for f in sock.seen]
        captured += frames
    await asyncio.sleep(0.3)  # let the worker flush its last log lines
    log = stack.daphne.log_path.read_text(errors="replace")
    assert "INFO assistant.calls.call voice session" in log, "no worker log captured"
    for text in [*captured, log]:
        assert stack.secret not in text
    # Not even a prefix long enough to matter.
    assert stack.secret[:16] not in log
    TIMINGS["secret_checked_frames"] = len(frames)
    TIMINGS["secret_checked_log_bytes"] = len(log)


@pytest.mark.django_db(transaction=True)
async def test_the_key_is_in_no_log_record_even_at_debug(
    stack: Stack, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """In-process, every logger (the SDK's and aiohttp's too) at DEBUG during a real session."""
    from django.contrib.auth.models import User

    from assistant.models import AssistantProfile
    from tests.hardening.conftest import echo_roundtrip, start_session

    settings.AZURE_VOICELIVE_ENDPOINT = stack.localvoice.endpoint
    settings.AZURE_VOICELIVE_API_KEY = stack.secret
    if not await AssistantProfile.objects.filter(is_default=True).aexists():
        await AssistantProfile.objects.acreate(name="D", instructions="x", is_default=True)
    user = await User.objects.acreate_user("carol", password="pw-carol-12345")
    caplog.set_level(logging.DEBUG)
    comm = await start_session(user)
    pcm = tone(40)
    assert await echo_roundtrip(comm, pcm) == pcm
    await comm.send_to(text_data='{"type":"session.stop"}')
    await comm.disconnect()
    records = caplog.records
    assert any(r.name.startswith("azure") and r.levelno == logging.DEBUG for r in records)
    texts = [r.getMessage() + repr(r.args) + (r.exc_text or "") for r in records]
    TIMINGS["secret_checked_debug_records"] = len(texts)
    for text in texts:
        assert stack.secret not in text
