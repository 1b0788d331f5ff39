"""One Voice Live WebSocket connection: frames in and out, dispatch, session limit, faults."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any

from aiohttp import WSMsgType, web

from localvoice.config import ServerConfig
from localvoice.pipeline.stages import Pipeline
from localvoice.protocol import events
from localvoice.protocol.errors import ProtocolError
from localvoice.protocol.events import ErrorCode, Event
from localvoice.protocol.voices import VoiceMap
from localvoice.server.session import Handler, Session
from localvoice.server.tasks import TaskSet

logger = logging.getLogger(__name__)

MAX_FRAME_BYTES = 4 * 1024 * 1024  # the SDK's default max_msg_size for incoming frames
UNSUPPORTED_TYPES = frozenset(
    {
        "input_audio.turn.start",
        "input_audio.turn.append",
        "input_audio.turn.end",
        "input_audio.turn.cancel",
        "input_audio.clear",
        "session.avatar.connect",
        "input_text.delta",
        "input_text.done",
        "transcription_session.update",
        "mcp_approval_response",
    }
)
FAULTS = frozenset({"drop", "close", "malformed", "unknown_event", "error_event", "stall"})
STALL_SECONDS = 10.0


class Connection:
    """Serve one client until it disconnects (or the session expires).

    Args:
        ws: the prepared WebSocket.
        request: the upgrade request (its transport is needed for the ``drop`` fault).
        config: server settings.
        pipeline: the stages (``pipeline/loopback.py``'s in echo mode).
        voice_map: voice resolution.
        model: the ``model`` query parameter.
    """

    def __init__(
        self,
        ws: web.WebSocketResponse,
        request: web.Request,
        config: ServerConfig,
        pipeline: Pipeline,
        voice_map: VoiceMap,
        model: str,
    ) -> None:
        self.ws = ws
        self._request = request
        self._config = config
        self._send_lock = asyncio.Lock()
        self._tasks = TaskSet()
        self._errors = 0
        self.session = Session(self.send, pipeline, voice_map, model, config.max_session_seconds)
        self._handlers: dict[str, Handler] = dict(self.session.handlers)
        if config.enable_faults:
            self._handlers["localvoice.fault"] = self._fault

    async def send(self, event: Event) -> None:
        """Send one event as a JSON text frame (dropped silently once the socket is closing)."""
        data = json.dumps(event, separators=(",", ":"))
        if len(data) >= MAX_FRAME_BYTES:
            logger.warning("dropping oversized %s event (%d bytes)", event.get("type"), len(data))
            return
        async with self._send_lock:
            if self.ws.closed:
                return
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self.ws.send_str(data)

    async def _error(self, exc: ProtocolError, event_id: str | None) -> None:
        self._errors += 1
        await self.send(events.error(exc.code, exc.message, param=exc.param, event_id=event_id))

    async def run(self) -> None:
        """Send ``session.created``, then serve client events until the socket closes."""
        started = time.monotonic()
        await self.send(events.session_created(self.session.config.as_dict()))
        if self._config.max_session_seconds:
            self._tasks.spawn(self._expire(self._config.max_session_seconds))
        try:
            async for msg in self.ws:
                if msg.type == WSMsgType.TEXT:
                    await self._dispatch(msg.data)
                elif msg.type == WSMsgType.BINARY:
                    await self._dispatch(msg.data.decode("utf-8", "replace"))
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            self.session.close()
            self._tasks.cancel_all()
            logger.info(
                "session %s (%s, model=%s) ended after %.1f s: %d turns, %d responses, "
                "%d errors, close code %s",
                self.session.config.data["id"],
                self._request.remote,
                self.session.config.data["model"],
                time.monotonic() - started,
                self.session.stats["turns"],
                self.session.stats["responses"],
                self._errors,
                self.ws.close_code,
            )

    async def _expire(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        msg = f"Your session hit the maximum duration of {seconds:g} seconds."
        await self.send(events.error(ErrorCode.SESSION_EXPIRED, msg))
        await self.ws.close(code=1001, message=b"session expired")

    async def _dispatch(self, raw: str) -> None:
        try:
            event = json.loads(raw)
        except ValueError:
            await self._error(ProtocolError(ErrorCode.INVALID_JSON, "Invalid JSON in event."), None)
            return
        if not isinstance(event, dict):
            exc = ProtocolError(ErrorCode.INVALID_EVENT, "An event must be a JSON object.")
            await self._error(exc, None)
            return
        event_id = event.get("event_id") if isinstance(event.get("event_id"), str) else None
        kind = event.get("type")
        try:
            if not isinstance(kind, str):
                msg = "Missing required parameter: 'type'."
                raise ProtocolError(ErrorCode.MISSING_PARAMETER, msg, "type")
            handler = self._handlers.get(kind)
            if handler is None:
                if kind in UNSUPPORTED_TYPES:
                    msg = f"Event type '{kind}' is not supported by localvoice."
                    raise ProtocolError(ErrorCode.UNSUPPORTED, msg, "type")
                msg = f"Invalid value: '{kind}'. Unknown event type."
                raise ProtocolError(ErrorCode.UNKNOWN_EVENT_TYPE, msg, "type")
            await handler(event)
        except ProtocolError as exc:
            await self._error(exc, event_id)
        except Exception:
            # A bad event never kills the session.
            logger.exception("error handling %r", kind)
            await self.send(
                events.error(
                    ErrorCode.SERVER_ERROR,
                    "The server had an error handling this event.",
                    event_id=event_id,
                    error_type="server_error",
                )
            )

    # -- test-only faults (--enable-faults) -----------------------------------------------------

    async def _fault(self, event: dict[str, Any]) -> None:
        fault = event.get("fault")
        if fault not in FAULTS:
            msg = f"fault must be one of {sorted(FAULTS)}"
            raise ProtocolError(ErrorCode.INVALID_VALUE, msg, "fault")
        logger.warning("injecting fault %r into session %s", fault, self.session.config.data["id"])
        if fault == "drop":
            transport = self._request.transport
            if transport is not None:
                transport.abort()  # TCP reset, no close frame
        elif fault == "close":
            await self.ws.close(code=1011, message=b"localvoice fault")
        elif fault == "malformed":
            async with self._send_lock:
                await self.ws.send_str("{this is not json")
        elif fault == "unknown_event":
            await self.send(
                {"type": "localvoice.unknown_event", "event_id": events.new_id("event")}
            )
        elif fault == "error_event":
            await self.send(
                events.error(
                    ErrorCode.SERVER_ERROR,
                    "Injected server error.",
                    error_type="server_error",
                    event_id=event.get("event_id"),
                )
            )
        elif fault == "stall":
            self._tasks.spawn(self._stall())

    async def _stall(self) -> None:
        async with self._send_lock:
            await asyncio.sleep(STALL_SECONDS)
