"""Closing an upstream connection: bounded, and the SDK's HTTP session never leaks."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from assistant.voicelive import upstream


class HangingClose:
    """An SDK connection whose close handshake never completes (the peer does not answer)."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self._client_session = session

    async def close(self) -> None:
        await asyncio.Event().wait()


async def test_a_cancelled_close_still_closes_the_http_session() -> None:
    """Cancelled mid-handshake (a test's disconnect, a worker stopping): the session is closed.

    Before, the SDK's own session close was skipped and aiohttp logged "Unclosed client
    session" whenever the garbage collector found it, in whatever test ran then.
    """
    session = aiohttp.ClientSession()
    conn: Any = HangingClose(session)
    closing = asyncio.create_task(upstream.close_quietly(conn))
    await asyncio.sleep(0.05)
    closing.cancel()
    await asyncio.gather(closing, return_exceptions=True)
    assert session.closed


async def test_a_close_that_times_out_still_closes_the_http_session(monkeypatch: Any) -> None:
    monkeypatch.setattr(upstream, "CLOSE_TIMEOUT", 0.05)
    session = aiohttp.ClientSession()
    await upstream.close_quietly(HangingClose(session))  # type: ignore[arg-type]
    assert session.closed
