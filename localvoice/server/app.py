"""The aiohttp application: ``/voice-live/realtime`` (WebSocket), ``/healthz``, handshake auth."""

from __future__ import annotations

import asyncio
import hmac
import logging
import signal
import time
import weakref
from typing import Any

from aiohttp import web

from localvoice.config import ServerConfig
from localvoice.pipeline.stages import Pipeline
from localvoice.protocol.voices import VoiceMap, load_voice_map
from localvoice.server.connection import Connection

logger = logging.getLogger(__name__)

REALTIME_PATH = "/voice-live/realtime"
MAX_INCOMING_FRAME = 16 * 1024 * 1024

CONFIG_KEY = web.AppKey("config", ServerConfig)
PIPELINE_KEY = web.AppKey("pipeline", Pipeline)
VOICES_KEY = web.AppKey("voices", VoiceMap)
SOCKETS_KEY: web.AppKey[weakref.WeakSet[web.WebSocketResponse]] = web.AppKey("sockets")
STARTED_KEY = web.AppKey("started", float)


def authorized(config: ServerConfig, headers: Any) -> bool:
    """Check the handshake's ``api-key`` (or, with ``--accept-bearer``, a Bearer token).

    Args:
        config: the server settings.
        headers: the request headers.

    Returns:
        True when the client may connect.
    """
    if not config.api_key:
        return True
    key = headers.get("api-key", "")
    if key and hmac.compare_digest(key.encode(), config.api_key.encode()):
        return True
    bearer = headers.get("Authorization", "")
    return config.accept_bearer and bearer.startswith("Bearer ") and bool(bearer[7:].strip())


async def realtime(request: web.Request) -> web.StreamResponse:
    """The Voice Live WebSocket endpoint."""
    app = request.app
    config = app[CONFIG_KEY]
    if not authorized(config, request.headers):
        logger.info("rejected %s: bad or missing credentials", request.remote)
        return web.json_response(
            {"error": {"code": "unauthorized", "message": "Invalid or missing credentials."}},
            status=401,
        )
    ws = web.WebSocketResponse(max_msg_size=MAX_INCOMING_FRAME, autoping=True)
    if not ws.can_prepare(request).ok:
        return web.json_response({"error": {"message": "WebSocket upgrade required."}}, status=426)
    await ws.prepare(request)
    app[SOCKETS_KEY].add(ws)
    pipeline = app[PIPELINE_KEY]
    connection = Connection(
        ws,
        request,
        config,
        pipeline,
        app[VOICES_KEY],
        request.query.get("model", "gpt-realtime"),
    )
    try:
        await connection.run()
    finally:
        app[SOCKETS_KEY].discard(ws)
    return ws


async def healthz(request: web.Request) -> web.Response:
    """200 with the loaded models."""
    app = request.app
    pipeline = app[PIPELINE_KEY]
    return web.json_response(
        {
            "status": "ok",
            "mode": "echo" if app[CONFIG_KEY].echo else "models",
            "models": pipeline.describe(),
            "sessions": len(app[SOCKETS_KEY]),
            "uptime_seconds": round(time.monotonic() - app[STARTED_KEY], 1),
        }
    )


async def _close_sockets(app: web.Application) -> None:
    sockets = app[SOCKETS_KEY]
    for ws in list(sockets):
        await ws.close(code=1001, message=b"server shutting down")


def create_app(config: ServerConfig, pipeline: Pipeline) -> web.Application:
    """Build the application (stages already loaded; ``pipeline/loopback.py``'s in echo mode)."""
    app = web.Application()
    app[CONFIG_KEY] = config
    app[PIPELINE_KEY] = pipeline
    tts = pipeline.tts
    app[VOICES_KEY] = VoiceMap(tts.voices, tts.default_voice, load_voice_map(config.voice_map))
    app[SOCKETS_KEY] = weakref.WeakSet()
    app[STARTED_KEY] = time.monotonic()
    app.router.add_get(REALTIME_PATH, realtime)
    app.router.add_get("/healthz", healthz)
    app.on_shutdown.append(_close_sockets)
    return app


async def serve(config: ServerConfig, pipeline: Pipeline) -> None:
    """Listen until SIGINT/SIGTERM, then close sessions with code 1001."""
    runner = web.AppRunner(create_app(config, pipeline), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port)
    await site.start()
    sockets = site._server.sockets if site._server is not None else []  # type: ignore[attr-defined]
    port = sockets[0].getsockname()[1] if sockets else config.port
    mode = "echo" if config.echo else "models"
    # The one print outside logging: scripts and tests read where the server listens.
    print(f"localvoice listening on http://{config.host}:{port} ({mode})", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        logger.info("shutting down")
        await runner.cleanup()
        pipeline.shutdown()
