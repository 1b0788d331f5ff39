"""A fake Voice Live SDK connection, for unit tests of the consumer and the session.

Events are real SDK event objects (``ServerEvent._deserialize``), so the code under test
sees exactly the types the SDK yields. Everything the code sends is recorded as JSON dicts.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
from typing import Any

from azure.ai.voicelive.aio import ConnectionClosed
from azure.ai.voicelive.aio import ConnectionError as VoiceLiveConnectionError
from azure.ai.voicelive.models import ServerEvent

_ids = itertools.count(1)


def server_event(payload: dict[str, Any]) -> ServerEvent:
    """Parse a JSON payload the way the SDK does."""
    return ServerEvent._deserialize(payload, [])


class _Sub:
    def __init__(self, conn: FakeConnection, prefix: str) -> None:
        self._conn = conn
        self._prefix = prefix


class _Session(_Sub):
    async def update(self, *, session: Any, event_id: str | None = None) -> None:
        await self._conn.send({"type": "session.update", "session": dict(session)})


class _InputAudioBuffer(_Sub):
    async def append(self, *, audio: str, event_id: str | None = None) -> None:
        await self._conn.send({"type": "input_audio_buffer.append", "audio": audio})


class _Response(_Sub):
    async def cancel(self, *, response_id: str | None = None, event_id: str | None = None) -> None:
        await self._conn.send({"type": "response.cancel"})

    async def create(self, **kwargs: Any) -> None:
        # The parameters given (a greeting's message, a check-in's instructions) are recorded.
        given = {key: value for key, value in kwargs.items() if value is not None}
        await self._conn.send({"type": "response.create", **given})


class _Item(_Sub):
    async def truncate(
        self, *, item_id: str, audio_end_ms: int, content_index: int, event_id: str | None = None
    ) -> None:
        await self._conn.send(
            {
                "type": "conversation.item.truncate",
                "item_id": item_id,
                "audio_end_ms": audio_end_ms,
                "content_index": content_index,
            }
        )

    async def delete(self, *, item_id: str, event_id: str | None = None) -> None:
        await self._conn.send({"type": "conversation.item.delete", "item_id": item_id})


class _Conversation:
    def __init__(self, conn: FakeConnection) -> None:
        self.item = _Item(conn, "conversation.item")


class FakeConnection:
    """Stands in for ``VoiceLiveConnection``; answers ``session.update`` by itself."""

    def __init__(self, *, auto_session_updated: bool = True) -> None:
        self.sent: list[dict[str, Any]] = []
        self.events: asyncio.Queue[Any] = asyncio.Queue()
        self.closed = False
        self.auto_session_updated = auto_session_updated
        self.session = _Session(self, "session")
        self.input_audio_buffer = _InputAudioBuffer(self, "input_audio_buffer")
        self.response = _Response(self, "response")
        self.conversation = _Conversation(self)
        self.sent_event = asyncio.Event()

    async def send(self, event: Any) -> None:
        if self.closed:
            msg = "Failed to send event: Cannot write to closing transport"
            raise VoiceLiveConnectionError(msg)
        self.sent.append(dict(event))
        self.sent_event.set()
        if event.get("type") == "session.update" and self.auto_session_updated:
            self.push({"type": "session.updated", "session": event["session"]})

    def push(self, payload: dict[str, Any]) -> None:
        """Queue a server event for the code under test."""
        self.events.put_nowait(payload)

    def drop(self) -> None:
        """The upstream goes away: the next ``recv`` raises ``ConnectionClosed``."""
        self.events.put_nowait(None)

    async def recv(self) -> Any:
        return server_event(json.loads(await self.recv_bytes()))

    async def recv_bytes(self) -> bytes:
        event = await self.events.get()
        if event is None or self.closed:
            raise ConnectionClosed(1006, "")
        return event if isinstance(event, bytes) else json.dumps(event).encode()

    async def close(self, *, code: int = 1000, reason: str = "") -> None:
        self.closed = True
        self.events.put_nowait(None)

    def sent_of(self, kind: str) -> list[dict[str, Any]]:
        return [event for event in self.sent if event.get("type") == kind]

    def appended_audio(self) -> bytes:
        return b"".join(
            base64.b64decode(e["audio"]) for e in self.sent_of("input_audio_buffer.append")
        )

    async def wait_for(self, kind: str, *, count: int = 1, timeout: float = 2.0) -> None:
        async with asyncio.timeout(timeout):
            while len(self.sent_of(kind)) < count:
                self.sent_event.clear()
                await self.sent_event.wait()


class FakeConnect:
    """Replaces ``assistant.voicelive.upstream.connect``: fake connections, calls recorded."""

    def __init__(self, *, fail: BaseException | None = None, hang: bool = False) -> None:
        self.fail = fail
        self.hang = hang
        self.calls: list[dict[str, Any]] = []
        self.connections: list[FakeConnection] = []

    def __call__(self, **kwargs: Any) -> _Manager:
        self.calls.append(kwargs)
        return _Manager(self)

    @property
    def last(self) -> FakeConnection:
        return self.connections[-1]


class _Manager:
    def __init__(self, factory: FakeConnect) -> None:
        self._factory = factory

    async def __aenter__(self) -> FakeConnection:
        if self._factory.hang:
            await asyncio.sleep(3600)
        if self._factory.fail is not None:
            raise self._factory.fail
        conn = FakeConnection()
        conn.push({"type": "session.created", "session": {"id": f"sess_{next(_ids)}"}})
        self._factory.connections.append(conn)
        return conn

    async def __aexit__(self, *exc: object) -> None:
        return None


def audio_delta(item_id: str, pcm: bytes, response_id: str = "resp_1") -> dict[str, Any]:
    return {
        "type": "response.audio.delta",
        "response_id": response_id,
        "item_id": item_id,
        "output_index": 0,
        "content_index": 0,
        "delta": base64.b64encode(pcm).decode(),
    }
