"""Talking to a real worker: one Daphne on a throwaway database and localvoice's real models,
and a client that speaks into it in real time and reads the turns back.

Shared by the real-path tests (tests/test_integration.py, the tools, history and talk-mode
suites): each sets its database up with a few lines of Django shell code and talks.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from tests.support.audio import silence, speak
from tests.support.browser import Socket
from tests.support.processes import (
    DaphneServer,
    Database,
    daphne_env,
    manage,
    throwaway_database,
)

#: The talk page's capture frames.
FRAME_MS = 40
FRAME_BYTES = 24_000 * 2 * FRAME_MS // 1000


class ModelDatabase(NamedTuple):
    """A migrated throwaway database, the environment of a worker on it, and the setup's output."""

    env: dict[str, str]
    database: Database
    setup_output: str


class ModelWorker(NamedTuple):
    """A running worker, its database, and what the setup code printed."""

    daphne: DaphneServer
    database: Database
    setup_output: str


@contextlib.contextmanager
def model_database(
    name: str,
    logs: Path,
    *,
    upstream_url: str,
    setup: str,
    extra: Mapping[str, str] | None = None,
) -> Iterator[ModelDatabase]:
    """A migrated throwaway database, set up by ``setup`` (Django shell code), and the
    environment of a worker ``name`` on it talking to localvoice at ``upstream_url``, without
    Redis (for ``manage.py`` commands, or :func:`model_worker`'s Daphne).

    The models take a moment per turn on 2 cores, so the connect timeout is 10 s unless
    ``extra`` says otherwise.
    """
    with throwaway_database(logs) as database:
        env = daphne_env(
            worker_name=name,
            database_url=database.url,
            redis_url="",
            upstream_url=upstream_url,
            extra={"VOICE_CONNECT_TIMEOUT": "10", **(extra or {})},
        )
        manage(env, "migrate", "--noinput", "-v", "0")
        output = manage(env, "shell", "-c", setup) if setup else ""
        yield ModelDatabase(env, database, output)


@contextlib.contextmanager
def model_worker(
    name: str,
    logs: Path,
    *,
    upstream_url: str,
    setup: str,
    extra: Mapping[str, str] | None = None,
) -> Iterator[ModelWorker]:
    """:func:`model_database`, and one Daphne worker serving it."""
    with model_database(
        name, logs, upstream_url=upstream_url, setup=setup, extra=extra
    ) as prepared:
        daphne = DaphneServer(name, prepared.env, Path(logs)).start()
        try:
            yield ModelWorker(daphne, prepared.database, prepared.setup_output)
        finally:
            daphne.stop()


def create_user(username: str, password: str, **fields: str) -> str:
    """Django shell code creating one user (for ``model_worker``'s ``setup``)."""
    extra = "".join(f", {key}={value!r}" for key, value in fields.items())
    return (
        "from django.contrib.auth.models import User\n"
        f"User.objects.create_user({username!r}, password={password!r}{extra})\n"
    )


async def stream(socket: Socket, pcm: bytes) -> None:
    """Send audio in real time, as the page's capture worklet does."""
    started = time.monotonic()
    for index, offset in enumerate(range(0, len(pcm), FRAME_BYTES)):
        await socket.send_audio(pcm[offset : offset + FRAME_BYTES])
        await asyncio.sleep(max(0.0, started + (index + 1) * FRAME_MS / 1000 - time.monotonic()))


class Microphone:
    """The page's microphone: it never stops; silence in real time between what ``say`` sends.

    Gaps in the audio stop the upstream's input clock while the reply's clock goes on: a
    sound made seconds into a reply would then land at the reply's start, on echo
    cancellation that never heard the quiet before it (``bench/turn_latency.py`` had the same
    defect). Use as ``async with Microphone(socket) as mic``.
    """

    def __init__(self, socket: Socket) -> None:
        self._socket = socket
        self._queued = bytearray()
        self._sent = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Microphone:
        self._task = asyncio.create_task(self._run(), name="test microphone")
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def say(self, pcm: bytes) -> None:
        """Send ``pcm`` in place of the silence; returns once all of it went out."""
        self._sent.clear()
        self._queued += pcm
        await self._sent.wait()

    async def _run(self) -> None:
        started = time.monotonic()
        index = 0
        quiet = silence(FRAME_MS)
        while True:
            if self._queued:
                frame = bytes(self._queued[:FRAME_BYTES])
                del self._queued[:FRAME_BYTES]
                if not self._queued:
                    self._sent.set()
            else:
                frame = quiet
            await self._socket.send_audio(frame)
            index += 1
            await asyncio.sleep(max(0.0, started + index * FRAME_MS / 1000 - time.monotonic()))


async def collect_turn(socket: Socket, timeout: float = 60.0) -> dict[str, Any]:
    """Read one turn's frames until its response is done (with audio)."""
    turn: dict[str, Any] = {"states": [], "audio": 0, "assistant": "", "user": ""}
    async with asyncio.timeout(timeout):
        while True:
            frame = await socket.next_frame(timeout)
            if frame.kind == "close":
                raise AssertionError(f"closed with {frame.code}: {socket.texts('error')}")
            if frame.kind == "binary":
                turn["audio"] += len(frame.data)
                continue
            message = frame.data
            kind = message["type"]
            if kind == "state":
                turn["states"].append(message["state"])
            elif kind == "transcript.user.done":
                turn["user"] = message["transcript"]
            elif kind == "transcript.assistant.done":
                turn["assistant"] = message["transcript"]
            elif kind == "error":
                raise AssertionError(f"error from the server: {message}")
            elif kind == "response.done" and turn["audio"]:
                turn["status"] = message["status"]
                return turn


async def say(socket: Socket, text: str, *, timeout: float = 90.0) -> dict[str, Any]:
    """Speak ``text`` in real time and collect the turn it starts."""
    sender = asyncio.create_task(stream(socket, silence(300) + speak(text) + silence(1500)))
    try:
        return await collect_turn(socket, timeout=timeout)
    finally:
        await sender
