"""Fixtures and helpers of the hardening suite: in-process sessions, real servers as processes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import struct
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User

from assistant.models import AssistantProfile
from assistant.voicelive.session import VoiceLiveSession

# Re-exported: the hardening tests import these helpers from here.
from tests.support.consumer import communicator as communicator
from tests.support.consumer import next_message as next_message
from tests.support.consumer import start_session as support_start_session
from tests.support.localvoice import LocalVoiceProcess
from tests.support.servers import DaphneServer, daphne_env, manage


@pytest.fixture
def default_profile(db: None) -> AssistantProfile:
    profile = AssistantProfile.objects.filter(is_default=True).first()
    if profile is None:
        profile = AssistantProfile.objects.create(
            name="Default", instructions="Be brief.", is_default=True, voice="alloy"
        )
    return profile


@pytest.fixture
def user(default_profile: AssistantProfile) -> User:
    return User.objects.create_user("hardy", password="pw-hardy-123")


async def close_code(comm: Any, timeout: float = 3.0) -> tuple[int, list[dict[str, Any]]]:
    """Read until the close; return its code and the JSON messages seen before it."""
    seen: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout):
        while True:
            frame = await comm.receive_output(timeout)
            if frame["type"] == "websocket.close":
                return frame.get("code", 1000), seen
            if frame.get("text") is not None:
                seen.append(json.loads(frame["text"]))


async def start_session(user: Any, client: str = "127.0.0.1", path: str = "/ws/voice/") -> Any:
    """A session over the real upstream (its handshake can take longer than a fake's)."""
    return await support_start_session(user, path, client=client, timeout=5)


async def echo_roundtrip(comm: Any, pcm: bytes, timeout: float = 3.0) -> bytes:
    """Send one audio frame and read binary frames until as many bytes came back (no error)."""
    await comm.send_to(bytes_data=pcm)
    got = b""
    async with asyncio.timeout(timeout):
        while len(got) < len(pcm):
            frame = await comm.receive_output(timeout)
            assert frame["type"] == "websocket.send", frame
            if frame.get("bytes") is not None:
                got += frame["bytes"]
            else:
                message = json.loads(frame["text"])
                assert message["type"] != "error", message
    return got


async def ping(comm: Any) -> None:
    """The session answers a ping."""
    await comm.send_to(text_data='{"type":"ping"}')
    await next_message(comm, "pong")


# ----------------------------------------------------------------------------- real upstream


def metric(counter: Any, **labels: str) -> float:
    """The current value of a Prometheus counter (of one label set)."""
    child = counter.labels(**labels) if labels else counter
    return float(child._value.get())


async def upstream_sessions(endpoint: str) -> int:
    """Sessions localvoice holds right now (its /healthz), read off the event loop."""
    from tests.support.localvoice import healthz

    return int((await asyncio.to_thread(healthz, endpoint))["sessions"])


async def wait_upstream_sessions(endpoint: str, count: int, timeout: float = 2.0) -> float:
    """Wait until localvoice holds ``count`` sessions; returns how long it took."""
    started = time.monotonic()
    while True:
        current = await upstream_sessions(endpoint)
        if current == count:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise AssertionError(f"localvoice holds {current} sessions, expected {count}")
        await asyncio.sleep(0.05)


async def leaked_tasks(baseline: set[asyncio.Task[Any]], timeout: float = 1.0) -> set[Any]:
    """Tasks started since ``baseline`` still running after ``timeout`` (empty when none)."""
    deadline = time.monotonic() + timeout
    while True:
        extra = {
            task
            for task in asyncio.all_tasks()
            if task not in baseline and not task.done() and task is not asyncio.current_task()
        }
        if not extra or time.monotonic() > deadline:
            return extra
        await asyncio.sleep(0.02)


@pytest.fixture(scope="module")
def localvoice_faults() -> Iterator[LocalVoiceProcess]:
    """localvoice in echo mode with fault injection, for this module."""
    server = LocalVoiceProcess("--echo", "--enable-faults").start(timeout=60)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def real_upstream(settings: Any, localvoice_faults: LocalVoiceProcess) -> str:
    """Point the consumer at localvoice through the real SDK; returns its endpoint."""
    settings.AZURE_VOICELIVE_ENDPOINT = localvoice_faults.endpoint
    settings.AZURE_VOICELIVE_API_KEY = "test-key"
    settings.VOICE_CONNECT_TIMEOUT = 3.0
    return localvoice_faults.endpoint


async def inject_fault(session: VoiceLiveSession, fault: str) -> None:
    """Ask localvoice to misbehave on this session's live upstream connection."""
    conn = session._conn
    assert conn is not None
    await conn.send({"type": "localvoice.fault", "fault": fault})


def tone(ms: int, freq: float = 440.0) -> bytes:
    """PCM16 24 kHz mono sine: something non-silent to echo."""
    n = 24 * ms
    return b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * freq * i / 24000))) for i in range(n)
    )


def open_client_sockets(port: int, *, side: str = "client") -> int:
    """TCP connections with 127.0.0.1:``port`` still open on one side, from /proc/net/tcp.

    Open means ESTABLISHED (01) or CLOSE_WAIT (08: the peer closed, this side did not yet).
    ``side="client"``: sockets whose remote port is ``port`` (our consumer is the only client
    of its localvoice); ``side="server"``: localvoice's own accepted sockets (local port).
    """
    column = 2 if side == "client" else 1
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[column].split(":")[1], 16) == port and fields[3] in ("01", "08"):
            count += 1
    return count


async def wait_client_sockets(
    port: int, count: int, timeout: float = 2.0, *, side: str = "client"
) -> float:
    """Wait until ``open_client_sockets(port, side=side) == count``; returns the time taken."""
    started = time.monotonic()
    while True:
        current = open_client_sockets(port, side=side)
        if current == count:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            msg = f"{current} {side} sockets open on :{port}, expected {count}"
            raise AssertionError(msg)
        await asyncio.sleep(0.02)


def drain_nowait(comm: Any) -> list[dict[str, Any]]:
    """Frames already sent by the app, without waiting (receive_output's timeout cancels it)."""
    frames = []
    while not comm.output_queue.empty():
        frames.append(comm.output_queue.get_nowait())
    return frames


def port_of(endpoint: str) -> int:
    """The port of ``http://127.0.0.1:<port>``."""
    return int(endpoint.rsplit(":", 1)[1])


@pytest.fixture(autouse=True)
def fresh_connection_budgets() -> None:
    """Connection-rate counters live in the (process-local) cache: start every test afresh."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(autouse=True)
def keep_sigterm() -> Iterator[None]:
    """The worker's drain handler takes SIGTERM when twisted's reactor is imported, which it is
    under pytest: put the previous handler back so a test run can still be stopped."""
    import signal

    previous = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, previous)


# ----------------------------------------------------------------------------- real servers


@dataclass
class EchoStack:
    """One Daphne worker (own SQLite database, users created) in front of ``localvoice --echo``."""

    daphne: DaphneServer
    localvoice: LocalVoiceProcess
    tmp: Path

    @property
    def base(self) -> str:
        return self.daphne.base_url

    def ws(self, path: str = "/ws/voice/") -> str:
        return self.daphne.ws_url(path)

    def upstream_connections(self) -> int:
        """Sessions localvoice holds, counted as its accepted TCP connections."""
        return open_client_sockets(self.localvoice.port, side="server")


@contextlib.contextmanager
def echo_stack(
    tmp: Path,
    *,
    name: str,
    users_script: str,
    env: Mapping[str, str] | None = None,
    daphne_flags: Sequence[str] = (),
    localvoice_flags: Sequence[str] = (),
    trust_page_origin: bool = True,
) -> Iterator[EchoStack]:
    """Start the stack; connection rate limits are raised, the page's origin is trusted.

    ``trust_page_origin=False`` leaves ``DJANGO_CSRF_TRUSTED_ORIGINS`` unset (the default
    configuration: same-origin only).
    """
    localvoice = LocalVoiceProcess("--echo", *localvoice_flags, log_dir=tmp).start(timeout=60)
    try:
        full_env = daphne_env(
            worker_name=name,
            database_url=f"sqlite:///{tmp / 'db.sqlite3'}",
            redis_url="",
            upstream_url=localvoice.endpoint,
            extra={
                "VOICE_CONNECTIONS_PER_MINUTE_PER_USER": "1000",
                "VOICE_CONNECTIONS_PER_MINUTE_PER_IP": "1000",
                **(env or {}),
            },
        )
        daphne = DaphneServer(name, full_env, tmp, flags=daphne_flags)
        # The port is only known now: make the page's exact origin the trusted one.
        if trust_page_origin:
            daphne.env["DJANGO_CSRF_TRUSTED_ORIGINS"] = daphne.base_url
        try:
            manage(full_env, "migrate", "--noinput")
            manage(full_env, "shell", "-c", users_script)
            daphne.start()
            yield EchoStack(daphne, localvoice, tmp)
        finally:
            daphne.stop()
    finally:
        localvoice.stop()
