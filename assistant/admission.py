"""Who may hold a live voice session: admission at start, and login re-validation while talking."""

from __future__ import annotations

import logging
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.base import SessionBase

from assistant import metrics
from assistant.config import UpstreamSettings
from assistant.limits import connection_allowed
from assistant.protocol import CloseCode, ErrorCode
from assistant.worker import worker

logger = logging.getLogger(__name__)


async def admission_refusal(*, user_id: int, client_ip: str) -> tuple[ErrorCode, CloseCode] | None:
    """Why a new session must be refused right now, or None to admit it.

    Draining and capacity are this worker's; the connection rates are shared by all workers.
    """
    if worker.draining:
        metrics.SESSIONS_REFUSED.labels(reason="draining").inc()
        return ErrorCode.SERVER_DRAINING, CloseCode.SERVER_DRAINING
    if worker.at_capacity():
        metrics.SESSIONS_REFUSED.labels(reason="busy").inc()
        return ErrorCode.SERVER_BUSY, CloseCode.SERVER_BUSY
    # Hold the slot from here, with no await since the check; the caller gives it back.
    worker.pending += 1
    try:
        user_ok = await connection_allowed(
            key=f"user:{user_id}", per_minute=settings.VOICE_CONNECTIONS_PER_MINUTE_PER_USER
        )
        ip_ok = await connection_allowed(
            key=f"ip:{client_ip}", per_minute=settings.VOICE_CONNECTIONS_PER_MINUTE_PER_IP
        )
    except BaseException:
        worker.pending -= 1
        raise
    if not (user_ok and ip_ok):
        worker.pending -= 1
        metrics.SESSIONS_REFUSED.labels(reason="rate_limited").inc()
        return ErrorCode.RATE_LIMITED, CloseCode.TOO_MANY_SESSIONS
    return None


def requested_profile_id(query_string: bytes) -> int | None:
    """The ``profile`` query parameter of the websocket URL; None when absent."""
    query = parse_qs(query_string.decode("latin-1"))
    raw = (query.get("profile") or [""])[0]
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        # Not an id of any profile, so certainly not one assigned to this user.
        return -1


def upstream_settings() -> UpstreamSettings:
    """Voice Live connection settings from Django settings."""
    return UpstreamSettings(
        endpoint=settings.AZURE_VOICELIVE_ENDPOINT,
        api_key=settings.AZURE_VOICELIVE_API_KEY,
        api_version=settings.AZURE_VOICELIVE_API_VERSION,
        connect_timeout=settings.VOICE_CONNECT_TIMEOUT,
        rollover_seconds=settings.VOICE_UPSTREAM_ROLLOVER_SECONDS,
        reply_stall_seconds=settings.VOICE_REPLY_STALL_SECONDS,
    )


def _login_valid(session: SessionBase, key: str, user_id: int) -> bool:
    return (
        session.exists(key) and get_user_model().objects.filter(pk=user_id, is_active=True).exists()
    )


async def login_still_valid(*, session: SessionBase | None, user_id: int | None) -> bool:
    """True while the login behind a websocket is alive (not logged out, expired or disabled).

    The handshake is the only check Channels makes; this is the periodic re-check. A database
    hiccup counts as valid: ending a call for it would be worse.
    """
    key = session.session_key if session is not None else None
    if not key or session is None or user_id is None:
        return False
    try:
        return await database_sync_to_async(_login_valid)(session, key, user_id)
    except Exception:
        logger.warning("could not re-validate a login; assuming it is still valid")
        return True
