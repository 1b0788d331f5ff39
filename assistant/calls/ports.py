"""The port a call talks to its browser through: the websocket consumer implements it."""

from __future__ import annotations

from typing import Protocol


class CallTransport(Protocol):
    """The browser's socket, as a call sees it: frames out and the close, nothing else."""

    async def accept(self) -> None:
        """Accept the websocket handshake."""

    async def send_text(self, text: str) -> None:
        """Send a text frame (a JSON control message); dropped once the browser has gone."""

    async def send_bytes(self, data: bytes) -> None:
        """Send a binary frame (assistant audio); dropped once the browser has gone."""

    async def close(self, code: int) -> None:
        """Close the socket with ``code``."""
