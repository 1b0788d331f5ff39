"""The floor: a minimal Channels consumer on Daphne that echoes binary frames.

Served by its own Daphne process, never by the product's routing::

    daphne -b 127.0.0.1 -p 9102 bench.echo_asgi:application

Like ``VoiceConsumer`` it skips Channels' per-message DB-connection check for
``websocket.receive`` (otherwise each frame would cost a thread hop), so the only difference
to the relay is the relay's own work: the upstream leg, JSON/base64, the SDK and the app code.
"""

from __future__ import annotations

from typing import Any

import django
from django.conf import settings

if not settings.configured:
    settings.configure(
        DEBUG=False,
        ALLOWED_HOSTS=["127.0.0.1", "localhost"],
        INSTALLED_APPS=["channels"],
        DATABASES={},
        CHANNEL_LAYERS={},
        USE_TZ=True,
    )
    django.setup()

from channels.generic.websocket import AsyncWebsocketConsumer
from channels.routing import URLRouter
from django.urls import path


class EchoConsumer(AsyncWebsocketConsumer):
    """Accept, then send every binary frame straight back."""

    async def dispatch(self, message: dict[str, Any]) -> None:
        if message["type"] == "websocket.receive":
            await self.websocket_receive(message)
        else:
            await super().dispatch(message)

    async def connect(self) -> None:
        await self.accept()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if bytes_data is not None:
            await self.send(bytes_data=bytes_data)


application = URLRouter([path("ws/echo/", EchoConsumer.as_asgi())])  # type: ignore[arg-type]
