"""Who may hold a live voice session: admission at start, and login re-validation while talking."""

from __future__ import annotations

import logging
from collections.abc import Callable
from importlib import import_module
from typing import Any, TypeVar
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth import (
    BACKEND_SESSION_KEY,
    HASH_SESSION_KEY,
    SESSION_KEY,
    get_user_model,
    load_backend,
)
from django.contrib.sessions.backends.base import SessionBase
from django.core.exceptions import ValidationError
from django.utils.crypto import constant_time_compare

from assistant import metrics
from assistant.codes import CloseCode, ErrorCode
from assistant.live.limits import connection_allowed
from assistant.live.worker import PendingSlot, worker
from assistant.voicelive.config import UpstreamSettings

logger = logging.getLogger(__name__)

_Verdict = TypeVar("_Verdict")


async def admit(*, user_id: int, client_ip: str) -> PendingSlot | tuple[ErrorCode, CloseCode]:
    """Admit a new session now, or say why it must be refused.

    Draining and capacity are this worker's; the connection rates are shared by all workers.

    Returns:
        The pending slot the handshake now holds (a context manager that gives it back), or
        the refusal's error and close codes.
    """
    if worker.draining:
        metrics.SESSIONS_REFUSED.labels(reason="draining").inc()
        return ErrorCode.SERVER_DRAINING, CloseCode.SERVER_DRAINING
    if worker.at_capacity():
        metrics.SESSIONS_REFUSED.labels(reason="busy").inc()
        return ErrorCode.SERVER_BUSY, CloseCode.SERVER_BUSY
    # Held from here, with no await since the check: handshakes in flight count against capacity.
    slot = PendingSlot()
    try:
        user_ok = await connection_allowed(
            key=f"user:{user_id}", per_minute=settings.VOICE_CONNECTIONS_PER_MINUTE_PER_USER
        )
        ip_ok = await connection_allowed(
            key=f"ip:{client_ip}", per_minute=settings.VOICE_CONNECTIONS_PER_MINUTE_PER_IP
        )
    except BaseException:
        slot.release()
        raise
    if not (user_ok and ip_ok):
        slot.release()
        metrics.SESSIONS_REFUSED.labels(reason="rate_limited").inc()
        return ErrorCode.RATE_LIMITED, CloseCode.TOO_MANY_SESSIONS
    return slot


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


def session_user(session_key: str) -> Any | None:
    """The user a login session authenticates right now, by Django's own rules; None if none.

    The rules of ``django.contrib.auth.get_user``: the session exists and has not expired, names
    a configured backend, the backend still returns the user (ModelBackend: active), and the
    session's auth hash matches the user's (so a password change logs other sessions out).
    Read-only: ``get_user`` flushes or cycles the session, which is the next HTTP request's job,
    not a background check's (cycling would change the key under the browser's cookie).

    Args:
        session_key: the key of the login session (the session cookie's value).
    """
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    data = store.load()  # {} when the session is missing or expired (its expire_date passed)
    try:
        user_id = get_user_model()._meta.pk.to_python(data[SESSION_KEY])
        backend_path = data[BACKEND_SESSION_KEY]
    except (KeyError, ValidationError):
        return None
    if backend_path not in settings.AUTHENTICATION_BACKENDS:
        return None
    user = load_backend(backend_path).get_user(user_id)
    if user is None:
        return None
    if hasattr(user, "get_session_auth_hash"):
        session_hash = data.get(HASH_SESSION_KEY)
        if not session_hash:
            return None
        # The fallback hashes (SECRET_KEY_FALLBACKS) still log in, as in get_user.
        hashes = [user.get_session_auth_hash(), *user.get_session_auth_fallback_hash()]
        if not any(constant_time_compare(session_hash, h) for h in hashes):
            return None
    return user


def _login_valid(key: str, user_id: int) -> bool:
    user = session_user(key)
    return user is not None and user.pk == user_id


async def login_still_valid(*, session: SessionBase | None, user_id: int | None) -> bool:
    """True while the login behind a websocket is alive, by Django's rules (:func:`session_user`).

    Not logged out, not expired, the user active and their password unchanged since the login.
    The handshake is the only check Channels makes; this is the periodic re-check. A database
    hiccup counts as valid: ending a call for it would be worse.
    """
    return await _recheck(session, user_id, _login_valid, missing=False, hiccup=True)


async def _recheck(
    session: SessionBase | None,
    user_id: int | None,
    check: Callable[[str, int], _Verdict],
    *,
    missing: _Verdict,
    hiccup: _Verdict,
) -> _Verdict:
    """Run ``check(session_key, user_id)`` off the event loop.

    Returns ``missing`` without a login session and ``hiccup`` when the database fails: a
    periodic check never ends a socket for that.
    """
    key = session.session_key if session is not None else None
    if not key or user_id is None:
        return missing
    try:
        return await database_sync_to_async(check)(key, user_id)
    except Exception:
        logger.warning(
            "could not re-validate a login (%s); assuming it still holds", check.__name__
        )
        return hiccup


MONITOR_PERMISSION = "assistant.monitor_livesession"


def _monitor_allowed(key: str, user_id: int) -> CloseCode | None:
    user = session_user(key)
    if user is None or user.pk != user_id:
        return CloseCode.UNAUTHENTICATED
    # A fresh user object: permissions are cached on the one the handshake loaded.
    if not (user.is_staff and user.has_perm(MONITOR_PERMISSION)):
        return CloseCode.FORBIDDEN
    return None


async def monitor_refusal(*, session: SessionBase | None, user_id: int | None) -> CloseCode | None:
    """Why a live monitor must end now (4401: login gone, 4403: no longer allowed), or None.

    The monitor's periodic re-check, like :func:`login_still_valid` plus staff and the
    permission. A database hiccup counts as allowed.
    """
    return await _recheck(
        session, user_id, _monitor_allowed, missing=CloseCode.UNAUTHENTICATED, hiccup=None
    )
