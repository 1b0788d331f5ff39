"""``/ws/voice/``: the browser's websocket. Transport only: frames in, frames out, the close.

Everything else is the call's (assistant/calls/call.py): the consumer hands it the frames and
is its :class:`~assistant.calls.ports.CallTransport`. Audio goes straight between this socket
and the call's Voice Live session; the channel layer only carries control, through the call's
own supervised subscription, so a Redis outage never ends a conversation.
"""

from __future__ import annotations

from typing import Any, cast

from assistant.calls.call import Call
from assistant.consumers.socket import SupervisedConsumer


class VoiceConsumer(SupervisedConsumer):
    """One browser conversation's socket; the :class:`Call` behind it does the rest."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.call: Call | None = None

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Route a message; audio frames skip Channels' per-message DB-connection check."""
        if message["type"] == "websocket.receive":
            await self.websocket_receive(cast(Any, message))
        else:
            await super().dispatch(message)

    async def connect(self) -> None:
        """Open the call: it admits the user and accepts, or refuses with a reason."""
        self.call = Call(
            self, self.scope, channel_layer=self.channel_layer, channel_name=self.channel_name
        )
        await self.call.open()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """A frame from the browser: audio (binary) or a control message (text)."""
        if self.call is None:
            return
        if bytes_data is not None:
            await self.call.audio_in(bytes_data)
        elif text_data is not None:
            await self.call.text_in(text_data)

    async def disconnect(self, code: int) -> None:
        """The browser's socket closed: the call lets go of everything, within bounded time."""
        if self.call is not None:
            await self.call.transport_closed(code)

    # ------------------------------------------------------------------ CallTransport

    # Both skip Channels' send(), two coroutines deep: these are every frame's path.

    async def send_text(self, text: str) -> None:
        """Send a text frame; dropped once the browser has gone (socket.py)."""
        await self._send_to_client({"type": "websocket.send", "text": text})

    async def send_bytes(self, data: bytes) -> None:
        """Send a binary frame; dropped once the browser has gone (socket.py)."""
        await self._send_to_client({"type": "websocket.send", "bytes": data})

    async def close(self, code: int | bool | None = None, reason: str | None = None) -> None:
        """Close the socket (a plain int: autobahn refuses IntEnum close codes)."""
        plain = None if code is None or code is True else int(code)
        await super().close(code=plain, reason=reason)
