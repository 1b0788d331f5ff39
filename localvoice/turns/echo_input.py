"""The input of an ``--echo`` session: every append comes straight back, byte-exact.

There is no VAD and nothing to commit; the session sends each ``Echoed`` signal on as a
``response.audio.delta`` carrying the **same base64 text** (for relay load tests).
"""

from __future__ import annotations

from typing import Any

from localvoice.protocol.events import new_id
from localvoice.protocol.turn_detection import TurnDetection
from localvoice.turns.signals import Committed, Echoed, Signal


class EchoInput:
    """A session input that sends every append back (one response and item id per session)."""

    def __init__(self) -> None:
        self._ids = (new_id("resp"), new_id("item"))

    async def append(self, audio: str) -> list[Signal]:
        """The same base64 text back, undecoded, so the client gets identical bytes."""
        return [Echoed(*self._ids, audio)]

    def commit(self) -> Committed | None:
        """Nothing is ever buffered."""
        return None

    def clear(self) -> None:
        """Nothing to drop."""

    def configure(self, rate: int, turn: TurnDetection | None, session: dict[str, Any]) -> None:
        """No VAD and no clean-up to configure."""

    def played(self, pcm: bytes, rate: int) -> int:
        """No echo canceller."""
        return 0

    def playback_cut(self, since: int) -> None:
        """No echo canceller."""

    def close(self) -> None:
        """Nothing to free."""
