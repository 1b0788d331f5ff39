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

import aiohttp
from azure.ai.voicelive.aio import ConnectionError as VoiceLiveConnectionError
from azure.ai.voicelive.aio import VoiceLiveConnection, connect
from azure.ai.voicelive.models import ClientEventType, ServerEventType
from azure.core.credentials import AzureKeyCredential
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import ClientAuthenticationError

from assistant import metrics
from assistant.codes import ErrorCode
from assistant.voicelive.config import SessionConfig, UpstreamSettings
from assistant.voicelive.session_request import session_request_build

logger = logging.getLogger(__name__)

CLOSE_TIMEOUT = 2.0
# On a failed open, each clean-up step gets this long before the page is told: a peer that
# stopped answering must not delay the error (the HTTP session is closed without it anyway).
FAILED_OPEN_CLEANUP_SECONDS = 0.3
# HTTP statuses of a refused handshake that mean "these credentials are not accepted".
AUTH_REFUSED_STATUSES = frozenset({401, 403})
AUTH_HINT = (
    "check AZURE_VOICELIVE_API_KEY (the resource's key, or empty for Microsoft Entra ID); with "
    "Entra ID, that the identity has the 'Cognitive Services User' role on the resource and, "
    "for a user-assigned managed identity, that AZURE_CLIENT_ID names it; with the local "
    "engine, that the service and localvoice share the same key (make run writes it to .env)"
)

Credential = AzureKeyCredential | AsyncTokenCredential


class VoiceLiveUnavailable(Exception):
    """The upstream could not be reached or refused the session.

    Attributes:
        code: the stable error code the browser is shown.
        kind: the ``voice_upstream_errors_total`` label it was counted under.
    """

    code = ErrorCode.UPSTREAM_UNAVAILABLE
    kind = "connect"


class VoiceLiveAuthFailed(VoiceLiveUnavailable):
    """Our credentials were refused: a token could not be had, or the handshake got 401/403."""

    code = ErrorCode.UPSTREAM_AUTH_FAILED
    kind = "auth"


class VoiceLiveFailed(VoiceLiveUnavailable):
    """Something unexpected was raised while opening (a bug here or in a library)."""

    code = ErrorCode.INTERNAL
    kind = "internal"


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


def classify_open_error(exc: BaseException) -> type[VoiceLiveUnavailable]:
    """Which failure an exception raised while opening is, for the code and the counter."""
    if isinstance(exc, VoiceLiveUnavailable):
        return type(exc)
    if isinstance(exc, ClientAuthenticationError):
        # DefaultAzureCredential's CredentialUnavailableError is a subclass.
        return VoiceLiveAuthFailed
    if isinstance(exc, VoiceLiveConnectionError):
        cause = exc.__cause__
        if (
            isinstance(cause, aiohttp.WSServerHandshakeError)
            and cause.status in AUTH_REFUSED_STATUSES
        ):
            return VoiceLiveAuthFailed
        return VoiceLiveUnavailable
    if isinstance(exc, TimeoutError | OSError | aiohttp.ClientError):
        return VoiceLiveUnavailable
    return VoiceLiveFailed


async def open_connection(
    *,
    config: SessionConfig,
    upstream: UpstreamSettings,
    credential_factory: Callable[[str], Credential] = credential_build,
) -> Opened:
    """Open one connection and configure it from the profile; never leaves one half open.

    Whatever goes wrong (refused, timed out, credentials, a bug) is logged once with its
    class, counted, and raised as :class:`VoiceLiveUnavailable` or a subclass; the credential
    and the SDK's HTTP session are closed on every path, cancellation included.

    Raises:
        VoiceLiveUnavailable: refused, failed, timed out, or the configuration was rejected.
    """
    credential: Credential | None = None
    conn: VoiceLiveConnection | None = None
    handshake: _Handshake | None = None
    try:
        # The SDK ignores handshake_timeout: bound the whole handshake + configure ourselves.
        async with asyncio.timeout(upstream.connect_timeout):
            credential = credential_factory(upstream.api_key)
            manager = connect(
                credential=credential,
                endpoint=upstream.endpoint,
                api_version=upstream.api_version,
                model=config.model,
            )
            handshake = _Handshake(manager)
            conn = await handshake.run()
            await conn.session.update(session=session_request_build(config))
            session_id = await _await_session_updated(conn)
    except asyncio.CancelledError:
        # The session ended while connecting (the browser left): never leave the new
        # connection open behind us. Shielded, so a second cancel cannot skip the close.
        await asyncio.shield(_discard(conn, handshake, credential))
        raise
    except Exception as exc:
        failure = classify_open_error(exc)
        metrics.UPSTREAM_ERRORS.labels(kind=failure.kind).inc()
        detail = _describe(exc)
        if failure is VoiceLiveAuthFailed:
            logger.error("voice live refused our credentials (%s): %s", detail, AUTH_HINT)
        elif failure is VoiceLiveFailed:
            logger.error("voice live connect failed unexpectedly (%s)", detail, exc_info=exc)
        else:
            logger.warning("voice live connect failed (%s)", detail)
        await asyncio.shield(
            _discard(conn, handshake, credential, limit=FAILED_OPEN_CLEANUP_SECONDS)
        )
        msg = f"Voice Live is unavailable ({type(exc).__name__})"
        raise failure(msg) from exc
    assert credential is not None  # set before anything that can succeed
    return Opened(conn=conn, credential=credential, session_id=session_id)


def _describe(exc: BaseException) -> str:
    """The exception's class, and its cause's (the SDK wraps aiohttp's), for one log line."""
    names = [type(exc).__name__]
    cause = exc.__cause__
    if cause is not None:
        names.append(type(cause).__name__)
        status = getattr(cause, "status", None)
        if isinstance(status, int):
            names.append(f"HTTP {status}")
    return " <- ".join(names)


async def _discard(
    conn: VoiceLiveConnection | None,
    handshake: _Handshake | None,
    credential: Credential | None,
    *,
    limit: float = CLOSE_TIMEOUT,
) -> None:
    """Close whatever a failed or cancelled open left, each step within ``limit`` seconds."""
    if conn is not None:
        await close_quietly(conn, limit=limit)
    elif handshake is not None:
        await handshake.abandon(limit=limit)
    await close_credential(credential, limit=limit)


class _Handshake:
    """The SDK's ``__aenter__`` in a task of its own, so a cancelled handshake leaks nothing.

    azure-ai-voicelive 1.3.1 creates an ``aiohttp.ClientSession`` inside ``__aenter__`` and
    closes it only on ``aiohttp.ClientError``: a cancellation (our connect timeout, the browser
    leaving) leaves it to the garbage collector ("Unclosed client session"). Running the
    handshake as a task lets us pick that session out of its suspended frame before cancelling
    it, and close it ourselves (``tests/hardening/test_session_failures.py`` pins the SDK's
    variable name and proves nothing is left unclosed).
    """

    def __init__(self, manager: Any) -> None:
        self._task: asyncio.Task[VoiceLiveConnection] = asyncio.create_task(manager.__aenter__())

    async def run(self) -> VoiceLiveConnection:
        # Shielded: when we are cancelled, abandon() decides how the handshake ends.
        return await asyncio.shield(self._task)

    async def abandon(self, *, limit: float = CLOSE_TIMEOUT) -> None:
        """Stop the handshake and close what it opened, within about ``limit`` seconds."""
        task = self._task
        session: aiohttp.ClientSession | None = None
        if not task.done():
            frame = task.get_coro().cr_frame  # type: ignore[union-attr]
            candidate = frame.f_locals.get("session") if frame is not None else None
            if isinstance(candidate, aiohttp.ClientSession):
                session = candidate
            task.cancel()
        # The task is ours: always retrieve its outcome, so nothing is left unretrieved. (No
        # suppress(BaseException): a cancellation of this very task must go through.)
        await asyncio.wait([task], timeout=limit)
        if task.done() and not task.cancelled():
            if task.exception() is None:
                await close_quietly(task.result(), limit=limit)
        else:
            task.add_done_callback(_retrieve)
        if session is not None and not session.closed:
            with contextlib.suppress(Exception):
                await session.close()


async def _await_session_updated(conn: VoiceLiveConnection) -> str:
    """Read events until ``session.updated``; an error event means the config was refused.

    Returns:
        The upstream session id from ``session.created`` (empty when none came).
    """
    session_id = ""
    while True:
        event = await conn.recv()
        if event.type == ServerEventType.SESSION_CREATED:
            session_id = str(event.get("session", {}).get("id", ""))
        elif event.type == ServerEventType.SESSION_UPDATED:
            return session_id
        elif event.type == ServerEventType.ERROR:
            error = event.get("error") or {}
            # Upstream-controlled text: %r, so it can never forge a log line.
            logger.warning("voice live refused the session: %r", error.get("code"))
            msg = "session.update refused"
            raise VoiceLiveConnectionError(msg)


def message_item(role: str, text: str) -> dict[str, Any]:
    """A ``conversation.item.create`` carrying text, in the shape each role expects."""
    part_type = "text" if role == "assistant" else "input_text"
    return {
        "type": ClientEventType.CONVERSATION_ITEM_CREATE.value,
        "item": {"type": "message", "role": role, "content": [{"type": part_type, "text": text}]},
    }


def function_output_item(call_id: str, output: str) -> dict[str, Any]:
    """A ``conversation.item.create`` answering a function call."""
    return {
        "type": ClientEventType.CONVERSATION_ITEM_CREATE.value,
        "item": {"type": "function_call_output", "call_id": call_id, "output": output},
    }


def pre_generated_reply(text: str) -> dict[str, Any]:
    """``response.create``'s ``response`` for a reply that is exactly ``text``.

    Voice Live speaks a pre-generated assistant message as it is, in the session's voice.
    """
    return {
        "pre_generated_assistant_message": {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "text", "text": text}],
        }
    }


async def close_quietly(conn: VoiceLiveConnection, *, limit: float = CLOSE_TIMEOUT) -> None:
    """Close a connection within ``limit`` seconds, ignoring errors of an already broken one."""
    try:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(limit):
                await conn.close()
    finally:
        # The SDK closes its aiohttp session only after the close handshake. When that is cut
        # short (a peer that never answers, or this task cancelled: a test's disconnect, a
        # worker stopping) the session and its socket would leak; closing it needs no peer.
        session = getattr(conn, "_client_session", None)
        if session is not None and not session.closed:
            with contextlib.suppress(Exception):
                await session.close()


async def close_credential(credential: Credential | None, *, limit: float = CLOSE_TIMEOUT) -> None:
    """Close an Entra credential (an API-key credential has nothing to close)."""
    close = getattr(credential, "close", None)
    if close is not None:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(limit):
                await close()


#: Closes of handshakes that finished after they were abandoned (held until done).
_LATE_CLOSES: set[asyncio.Task[None]] = set()


def _retrieve(task: asyncio.Task[VoiceLiveConnection]) -> None:
    """Done-callback of a handshake that outlived its abandon(): collect it, close what it made."""
    if task.cancelled() or task.exception() is not None:
        return
    logger.warning("an abandoned voice live handshake completed late; closing it")
    closing = asyncio.get_running_loop().create_task(close_quietly(task.result()))
    _LATE_CLOSES.add(closing)
    closing.add_done_callback(_LATE_CLOSES.discard)
