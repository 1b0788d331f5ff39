"""Readiness checks: can this worker serve a conversation right now?"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from typing import Any
from urllib.parse import urlsplit

from channels.db import database_sync_to_async
from django.conf import settings
from django.db import connection

from assistant.live.worker import worker

CHECK_TIMEOUT = 2.0


def _database_ok() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


async def _check_database() -> None:
    await database_sync_to_async(_database_ok)()


async def _check_redis() -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(settings.REDIS_URL)
    try:
        await client.ping()
    finally:
        await client.aclose()


async def _check_upstream() -> None:
    """A TCP connection to the Voice Live endpoint (no session is opened, nothing is billed)."""
    parts = urlsplit(settings.AZURE_VOICELIVE_ENDPOINT)
    secure = parts.scheme in ("https", "wss")
    port = parts.port or (443 if secure else 80)
    _, writer = await asyncio.open_connection(parts.hostname, port, ssl=secure or None)
    writer.close()
    await writer.wait_closed()


async def _timed(check: Coroutine[Any, Any, None]) -> dict[str, Any]:
    started = time.monotonic()
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            await check
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True, "ms": round((time.monotonic() - started) * 1000, 1)}


async def readiness() -> dict[str, dict[str, Any]]:
    """Run every check concurrently; each reports ok and its time, or the error's type."""
    checks = {"database": _check_database(), "upstream": _check_upstream()}
    if settings.REDIS_URL:
        checks["redis"] = _check_redis()
    names = list(checks)
    results = await asyncio.gather(*(_timed(check) for check in checks.values()))
    report = dict(zip(names, results, strict=True))
    report["worker"] = {"ok": not worker.draining, "sessions": len(worker.sessions)}
    return report
