"""In-process voice sessions for tests: a WebsocketCommunicator on the websocket routes.

The caller sets the user (``scope["user"]``); no session cookie or Origin check is involved,
which is what the real-Daphne tests cover.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from assistant.routing import websocket_urlpatterns

router = URLRouter(websocket_urlpatterns)
# Every test browser of the running test, so its teardown can wait for their consumers.
_browsers: list[WebsocketCommunicator] = []
# How long one consumer gets to let go of its session at a test's end.
SETTLE_SECONDS = 5.0


def communicator(user: Any, path: str = "/ws/voice/", client: str = "127.0.0.1") -> Any:
    """A test browser of ``user`` on ``path``, from address ``client``."""
    comm = WebsocketCommunicator(router, path)
    comm.scope["user"] = user
    comm.scope["client"] = (client, 50000)
    _browsers.append(comm)
    return comm


async def settle_sessions() -> None:
    """End the test's sessions and wait until nothing of them touches the database.

    A test may stop reading once it has seen what it checks (a close code), while its consumer
    is still letting go of the session, the history writer is writing and the heartbeat is
    reading: database work in asgiref's thread that would overlap the test database's flush
    ("database is locked", then rows left for the next test). So, in the test's own loop:
    every consumer is disconnected and awaited, the worker's history writer, heartbeat and
    checks end, and the thread that runs their queries is drained.
    """
    from asgiref.sync import SyncToAsync

    from assistant.calls.checks import session_checks
    from assistant.history.writer import history
    from assistant.live.worker import heartbeats

    browsers, _browsers[:] = list(_browsers), []
    for comm in browsers:
        future = comm._future
        if future is None or future.done():
            continue
        await comm.input_queue.put({"type": "websocket.disconnect", "code": 1000})
        await comm.wait(SETTLE_SECONDS)  # cancelled after that, exceptions raised
    await heartbeats.close()
    await session_checks.close()
    await history.close()
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(SyncToAsync.single_thread_executor, lambda: None)


async def start_session(
    user: Any, path: str = "/ws/voice/", client: str = "127.0.0.1", timeout: float = 3.0
) -> Any:
    """A connected test browser of ``user``, once the server has said ``session.ready``."""
    comm = communicator(user, path, client=client)
    connected, _ = await comm.connect()
    assert connected
    await next_message(comm, "session.ready", timeout=timeout)
    return comm


async def next_message(comm: Any, kind: str, timeout: float = 3.0) -> dict[str, Any]:
    """Read frames until a JSON message of ``kind`` arrives (other frames are skipped)."""
    async with asyncio.timeout(timeout):
        while True:
            frame = await comm.receive_output(timeout)
            if frame["type"] == "websocket.close":
                raise AssertionError(f"closed ({frame.get('code')}) before {kind!r}")
            text = frame.get("text")
            if text is not None:
                message = json.loads(text)
                if message["type"] == kind:
                    return message


async def next_binary(comm: Any, timeout: float = 3.0) -> bytes:
    """Read frames until a binary (audio) frame arrives."""
    async with asyncio.timeout(timeout):
        while True:
            frame = await comm.receive_output(timeout)
            if frame["type"] == "websocket.close":
                raise AssertionError(f"closed ({frame.get('code')}) before audio")
            if frame.get("bytes") is not None:
                return bytes(frame["bytes"])
