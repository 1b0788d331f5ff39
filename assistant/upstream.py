"""Opening and closing Voice Live connections through the SDK (no Django).

Kept apart from the session so that ``voicelive.py`` reads as the conversation, and so every
connection, first or rolled over, is opened, bounded in time and cleaned up the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from azure.ai.voicelive.aio import ConnectionError as VoiceLiveConnectionError
from azure.ai.voicelive.aio import VoiceLiveConnection, connect
from azure.core.credentials import AzureKeyCredential
from azure.core.credentials_async import AsyncTokenCredential

from assistant import metrics
from assistant.config import AssistantConfig, UpstreamSettings
from assistant.session_request import session_request_build

logger = logging.getLogger(__name__)

CLOSE_TIMEOUT = 2.0

Credential = AzureKeyCredential | AsyncTokenCredential


class VoiceLiveUnavailable(Exception):
    """The upstream could not be reached or refused the session."""


def credential_build(api_key: str) -> Credential:
    """An API-key credential when a key is configured, Microsoft Entra ID otherwise.

    The Entra credential is the async ``DefaultAzureCredential`` (managed identity in Azure,
    ``az login`` on a workstation); the caller closes it.
    """
    if api_key:
        return AzureKeyCredential(api_key)
    from azure.identity.aio import DefaultAzureCredential

    return DefaultAzureCredential()


@dataclass(frozen=True, slots=True)
class Opened:
    """A configured upstream connection and what must be closed with it."""

    conn: VoiceLiveConnection
    credential: Credential
    session_id: str


async def open_connection(
    *,
    config: AssistantConfig,
    upstream: UpstreamSettings,
    credential_factory: Callable[[str], Credential] = credential_build,
) -> Opened:
    """Open one connection and configure it from the profile; never leaves one half open.

    Raises:
        VoiceLiveUnavailable: refused, failed, timed out, or the configuration was rejected.
    """
    credential = credential_factory(upstream.api_key)
    manager = connect(
        credential=credential,
        endpoint=upstream.endpoint,
        api_version=upstream.api_version,
        model=config.model,
    )
    conn: VoiceLiveConnection | None = None
    try:
        # The SDK ignores handshake_timeout: bound the whole handshake + configure ourselves.
        async with asyncio.timeout(upstream.connect_timeout):
            conn = await manager.__aenter__()
            await conn.session.update(session=session_request_build(config))
            session_id = await _await_session_updated(conn)
    except asyncio.CancelledError:
        # The session ended while connecting (the browser left): never leave the new
        # connection open behind us. Shielded, so a second cancel cannot skip the close.
        if conn is not None:
            await asyncio.shield(close_quietly(conn))
        await asyncio.shield(close_credential(credential))
        raise
    except (TimeoutError, VoiceLiveConnectionError, OSError) as exc:
        metrics.UPSTREAM_ERRORS.labels(kind="connect").inc()
        logger.warning("voice live connect failed: %s", type(exc).__name__)
        if conn is not None:
            await close_quietly(conn)
        await close_credential(credential)
        msg = "Voice Live is unavailable"
        raise VoiceLiveUnavailable(msg) from exc
    return Opened(conn=conn, credential=credential, session_id=session_id)


async def _await_session_updated(conn: VoiceLiveConnection) -> str:
    """Read events until ``session.updated``; an error event means the config was refused.

    Returns:
        The upstream session id from ``session.created`` (empty when none came).
    """
    session_id = ""
    while True:
        event = await conn.recv()
        if event.type == "session.created":
            session_id = str(event.get("session", {}).get("id", ""))
        elif event.type == "session.updated":
            return session_id
        elif event.type == "error":
            error = event.get("error") or {}
            logger.warning("voice live refused the session: %s", error.get("code"))
            msg = "session.update refused"
            raise VoiceLiveConnectionError(msg)


def message_item(role: str, text: str) -> dict[str, Any]:
    """A ``conversation.item.create`` carrying text, in the shape each role expects."""
    part_type = "text" if role == "assistant" else "input_text"
    return {
        "type": "conversation.item.create",
        "item": {"type": "message", "role": role, "content": [{"type": part_type, "text": text}]},
    }


async def close_quietly(conn: VoiceLiveConnection) -> None:
    """Close a connection, bounded in time, ignoring errors of an already broken one."""
    try:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await conn.close()
    finally:
        # The SDK closes its aiohttp session only after the close handshake. When that is cut
        # short (a peer that never answers, or this task cancelled: a test's disconnect, a
        # worker stopping) the session and its socket would leak; closing it needs no peer.
        session = getattr(conn, "_client_session", None)
        if session is not None and not session.closed:
            with contextlib.suppress(Exception):
                await session.close()


async def close_credential(credential: Credential | None) -> None:
    """Close an Entra credential (an API-key credential has nothing to close)."""
    close = getattr(credential, "close", None)
    if close is not None:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await close()
