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


def communicator(user: Any, path: str = "/ws/voice/", client: str = "127.0.0.1") -> Any:
    """A test browser of ``user`` on ``path``, from address ``client``."""
    comm = WebsocketCommunicator(router, path)
    comm.scope["user"] = user
    comm.scope["client"] = (client, 50000)
    return comm


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
