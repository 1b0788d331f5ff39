"""Run ``python -m localvoice`` as a subprocess for tests and benchmarks, and talk to it.

::

    with running_localvoice("--echo") as endpoint:      # "http://127.0.0.1:<free port>"
        async with connect(endpoint=endpoint, credential=AzureKeyCredential("k"), ...) as conn:
            ...

The server binds 127.0.0.1 on a free port, logs to a file (never a pipe that could fill up), is
ready once ``/healthz`` answers, and is stopped by its own PID.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.support.processes import HOST, REPO, ManagedProcess, free_port, wait_until

#: The key test servers require and test clients (and test settings) send.
TEST_API_KEY = "test-key"
API_VERSION = "2026-07-15"


def _python() -> str:
    venv = REPO / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def healthz(endpoint: str, timeout: float = 2.0) -> dict[str, Any]:
    """GET ``/healthz`` and return its JSON."""
    with urllib.request.urlopen(f"{endpoint}/healthz", timeout=timeout) as resp:
        return json.loads(resp.read())


class LocalVoiceProcess(ManagedProcess):
    """A ``localvoice`` child process.

    Args:
        flags: extra command-line flags (``--echo``, ``--enable-faults``, ``--api-key K``...).
        log_dir: where ``localvoice-<port>.log`` goes (default: a temp dir).
    """

    def __init__(self, *flags: str, log_dir: Path | None = None) -> None:
        self.port = free_port()
        super().__init__(
            f"localvoice-{self.port}", Path(log_dir or tempfile.mkdtemp(prefix="localvoice-"))
        )
        self.endpoint = f"http://{HOST}:{self.port}"
        # localvoice requires a key, as Voice Live does: the one the test settings send.
        auth = [] if {"--api-key", "--no-auth"} & set(flags) else ["--api-key", TEST_API_KEY]
        self.flags = list(flags) + auth

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        """The running child, or None before ``start`` and after ``stop``."""
        return self.proc if self.running else None

    def start(self, timeout: float = 120.0) -> LocalVoiceProcess:
        """Start the server and wait until ``/healthz`` answers.

        Raises:
            RuntimeError: it exited or did not become healthy in time (the log tail is included).
        """
        argv = [_python(), "-m", "localvoice", "--host", HOST, "--port", str(self.port)]
        self._spawn(
            argv + self.flags, {**os.environ, "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1"}
        )

        def healthy() -> bool:
            if not self.running:
                msg = f"localvoice exited with {self.proc and self.proc.returncode}:\n"
                raise RuntimeError(msg + self.log_tail())
            with contextlib.suppress(OSError, ValueError):
                healthz(self.endpoint, timeout=1.0)
                return True
            return False

        try:
            wait_until(healthy, timeout=timeout, interval=0.1, what="localvoice /healthz")
        except TimeoutError:
            self.stop()
            msg = f"localvoice not healthy after {timeout}s:\n{self.log_tail()}"
            raise RuntimeError(msg) from None
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL if it does not exit in ``timeout`` seconds."""
        super().stop(timeout)


@contextlib.contextmanager
def running_localvoice(*flags: str, timeout: float = 120.0) -> Iterator[str]:
    """Start ``python -m localvoice`` with ``flags`` on a free port; yield its endpoint URL."""
    server = LocalVoiceProcess(*flags).start(timeout)
    try:
        yield server.endpoint
    finally:
        server.stop()


async def next_event(
    conn: Any, *types: str, timeout: float = 30.0, seen: list[Any] | None = None
) -> Any:
    """Receive events until one of ``types`` arrives; the others are appended to ``seen``.

    Raises:
        TimeoutError: none arrived in ``timeout`` seconds.
    """
    async with asyncio.timeout(timeout):
        while True:
            event = await conn.recv()
            if event.type in types:
                return event
            if seen is not None:
                seen.append(event)


async def send_audio(
    conn: Any, pcm: bytes, *, rate: int = 24000, chunk_ms: int = 20, speed: float = 0.0
) -> None:
    """Append PCM16 in ``chunk_ms`` pieces; ``speed`` 1.0 paces it in real time, 0 sends at once."""
    import base64

    step = rate * 2 * chunk_ms // 1000
    started = time.perf_counter()
    for offset in range(0, len(pcm), step):
        await conn.input_audio_buffer.append(
            audio=base64.b64encode(pcm[offset : offset + step]).decode()
        )
        if speed > 0:
            due = started + (offset + step) / 2 / rate / speed
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
        elif offset // step % 25 == 0:
            await asyncio.sleep(0)


@contextlib.asynccontextmanager
async def voicelive_session(
    endpoint: str,
    session: dict[str, Any] | None = None,
    *,
    api_key: str = TEST_API_KEY,
    **kwargs: Any,
) -> Any:
    """Connect the real SDK, wait for ``session.created`` (and ``session.updated`` if ``session``).

    Yields:
        The SDK's ``VoiceLiveConnection``.
    """
    from azure.ai.voicelive.aio import connect
    from azure.core.credentials import AzureKeyCredential

    async with connect(
        endpoint=endpoint,
        credential=AzureKeyCredential(api_key),
        model="gpt-realtime",
        api_version=API_VERSION,
        **kwargs,
    ) as conn:
        await next_event(conn, "session.created", timeout=10)
        if session is not None:
            await conn.session.update(session=session)
            await next_event(conn, "session.updated", timeout=10)
        yield conn
