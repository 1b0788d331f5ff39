"""Who may hold a live voice session: admission at start, and login re-validation while talking."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from importlib import import_module
from typing import Any, TypeVar, cast
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
from django.contrib.auth.backends import ModelBackend
from django.contrib.sessions.backends.base import SessionBase
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.core.exceptions import ValidationError
from django.utils import timezone
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


def requested_draft(query_string: bytes) -> bool:
    """Whether the websocket URL asks for the profile's draft (``draft=1``)."""
    query = parse_qs(query_string.decode("latin-1"))
    return (query.get("draft") or [""])[0] == "1"


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
    login = _login_of(data)
    if login is None:
        return None
    user = load_backend(login[1]).get_user(login[0])
    return user if user is not None and _hash_matches(data, user) else None


def _login_of(data: dict[str, Any]) -> tuple[Any, str] | None:
    """(user id, backend path) a session's data names; None when it names no valid login."""
    try:
        user_id = get_user_model()._meta.pk.to_python(data[SESSION_KEY])
        backend_path = data[BACKEND_SESSION_KEY]
    except (KeyError, ValidationError):
        return None
    if backend_path not in settings.AUTHENTICATION_BACKENDS:
        return None
    return user_id, backend_path


def _hash_matches(data: dict[str, Any], user: Any) -> bool:
    """True when the session's auth hash is the user's (a password change makes it differ)."""
    if not hasattr(user, "get_session_auth_hash"):
        return True
    session_hash = data.get(HASH_SESSION_KEY)
    if not session_hash:
        return False
    # The fallback hashes (SECRET_KEY_FALLBACKS) still log in, as in get_user.
    hashes = [user.get_session_auth_hash(), *user.get_session_auth_fallback_hash()]
    return any(constant_time_compare(session_hash, h) for h in hashes)


def logins_still_valid(logins: Iterable[tuple[str, int]]) -> set[str]:
    """:func:`session_user` for many logins at once (synchronous ORM: off the loop).

    The worker's batched re-validation: one query for all the login sessions and one for
    their users, whatever their number, with the database session engine and ModelBackend
    (the defaults). Any other engine or backend is asked once per login, by its own rules.

    Args:
        logins: (login session key, the user id the websocket was opened for).

    Returns:
        The keys whose login still authenticates that user.
    """
    wanted = dict(logins)
    if not wanted:
        return set()
    store_class = import_module(settings.SESSION_ENGINE).SessionStore
    if not issubclass(store_class, DatabaseSessionStore):
        return {key for key, user_id in wanted.items() if _login_valid(key, user_id)}
    store = store_class()
    data = {
        key: store.decode(raw)
        for key, raw in store_class.get_model_class()
        .objects.filter(session_key__in=list(wanted), expire_date__gt=timezone.now())
        .values_list("session_key", "session_data")
    }
    named = {key: login for key, d in data.items() if (login := _login_of(d)) is not None}
    backends = {path: load_backend(path) for _, path in named.values()}
    # ModelBackend's own get_user (the default): its rules, for all the users in one query.
    batched = {
        path
        for path, backend in backends.items()
        if isinstance(backend, ModelBackend) and type(backend).get_user is ModelBackend.get_user
    }
    users = get_user_model()._default_manager.in_bulk(
        {user_id for user_id, path in named.values() if path in batched}
    )
    valid: set[str] = set()
    for key, (user_id, path) in named.items():
        if user_id != wanted[key]:
            continue
        backend = backends[path]
        if path in batched:
            user = users.get(user_id)
            allowed = user is not None and cast(ModelBackend, backend).user_can_authenticate(user)
            user = user if allowed else None
        else:
            user = backend.get_user(user_id)
        if user is not None and _hash_matches(data[key], user):
            valid.add(key)
    return valid


alogins_still_valid = database_sync_to_async(logins_still_valid)


def _login_valid(key: str, user_id: int) -> bool:
    user = session_user(key)
    return user is not None and user.pk == user_id


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

    The monitor's periodic re-check, like :func:`logins_still_valid` plus staff and the
    permission. A database hiccup counts as allowed.
    """
    return await _recheck(
        session, user_id, _monitor_allowed, missing=CloseCode.UNAUTHENTICATED, hiccup=None
    )
