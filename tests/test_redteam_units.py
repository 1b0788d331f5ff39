"""Unit checks behind issue 9's fixes: login re-validation rules, the origin rules, log lines.

The real-server versions are tests/hardening/test_redteam.py and
tests/scaleout/test_redteam_redis.py; these pin each rule down one case at a time.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone

from assistant.codes import CloseCode
from assistant.live.admission import monitor_refusal, session_user
from voiceproject.logsafe import SingleLineFormatter
from voiceproject.origins import origin_allowed

# ----------------------------------------------------------------------------- logins


@pytest.fixture
def logged_in(db: None) -> tuple[User, str]:
    user = User.objects.create_user("unit", password="pw-unit-12345")
    client = Client()
    client.force_login(user)
    return user, client.session.session_key or ""


def test_a_live_login_authenticates_its_user(logged_in: tuple[User, str]) -> None:
    user, key = logged_in
    found = session_user(key)
    assert found is not None
    assert found.pk == user.pk


def test_a_password_change_ends_the_login(logged_in: tuple[User, str]) -> None:
    user, key = logged_in
    user.set_password("another-pw-9876")
    user.save()
    assert session_user(key) is None


def test_an_expired_session_ends_the_login(logged_in: tuple[User, str]) -> None:
    _, key = logged_in
    Session.objects.filter(session_key=key).update(expire_date=timezone.now() - timedelta(1))
    assert session_user(key) is None
    assert Session.objects.filter(session_key=key).exists()  # read-only: nothing was flushed


def test_an_inactive_user_and_an_unknown_key_have_no_login(logged_in: tuple[User, str]) -> None:
    user, key = logged_in
    assert session_user("no-such-session-key") is None
    User.objects.filter(pk=user.pk).update(is_active=False)
    assert session_user(key) is None


def test_a_login_hashed_with_a_fallback_secret_still_counts(
    logged_in: tuple[User, str], settings: Any
) -> None:
    """As in Django's get_user: SECRET_KEY rotation keeps sessions through SECRET_KEY_FALLBACKS."""
    _, key = logged_in
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a-rotated-secret-key-" + "x" * 40
    assert session_user(key) is not None
    settings.SECRET_KEY_FALLBACKS = []
    assert session_user(key) is None


@pytest.mark.django_db(transaction=True)
async def test_monitor_refusal_codes() -> None:
    from asgiref.sync import sync_to_async

    def setup() -> tuple[User, Any]:
        user = User.objects.create_user("mon", password="pw-mon-12345", is_staff=True)
        user.user_permissions.add(Permission.objects.get(codename="monitor_livesession"))
        client = Client()
        client.force_login(user)
        return user, client.session

    user, session = await sync_to_async(setup)()
    assert await monitor_refusal(session=session, user_id=user.pk) is None
    await User.objects.filter(pk=user.pk).aupdate(is_staff=False)
    assert await monitor_refusal(session=session, user_id=user.pk) == CloseCode.FORBIDDEN
    await User.objects.filter(pk=user.pk).aupdate(is_active=False)
    assert await monitor_refusal(session=session, user_id=user.pk) == CloseCode.UNAUTHENTICATED


# ----------------------------------------------------------------------------- origins


def scope(origin: str | None, host: str = "127.0.0.1:8000", **headers: str) -> dict[str, Any]:
    raw = [(b"host", host.encode())]
    if origin is not None:
        raw.append((b"origin", origin.encode()))
    raw += [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()]
    return {"type": "websocket", "headers": raw}


@pytest.fixture
def default_settings(settings: Any) -> Any:
    settings.DEBUG = True
    settings.ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]"]
    settings.CSRF_TRUSTED_ORIGINS = []
    settings.SECURE_PROXY_SSL_HEADER = None
    return settings


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        ("http://127.0.0.1:8000", True),
        ("http://127.0.0.1:9999", False),  # another port of an allowed host
        ("https://127.0.0.1:8000", False),  # another scheme
        ("https://127.0.0.1", False),
        ("http://127.0.0.1", False),
        ("http://localhost:8000", False),  # allowed host, but not the page's
        ("null", False),
        ("", False),
        (None, False),
    ],
)
def test_default_is_exactly_the_pages_own_origin(
    default_settings: Any, origin: str | None, allowed: bool
) -> None:
    assert origin_allowed(scope(origin)) is allowed


def test_a_host_we_do_not_serve_is_never_same_origin(default_settings: Any) -> None:
    assert not origin_allowed(scope("http://evil.example:8000", host="evil.example:8000"))


def test_a_repeated_origin_header_is_refused(default_settings: Any) -> None:
    twice = scope("http://127.0.0.1:8000")
    twice["headers"].append((b"origin", b"http://127.0.0.1:8000"))
    assert not origin_allowed(twice)


def test_behind_a_proxy_the_scheme_comes_from_x_forwarded_proto(default_settings: Any) -> None:
    default_settings.ALLOWED_HOSTS = ["voice.example.com"]
    default_settings.DEBUG = False
    host = "voice.example.com"
    # Without SECURE_PROXY_SSL_HEADER the header is not trusted: the connection is plain ws.
    assert not origin_allowed(scope("https://voice.example.com", host, x_forwarded_proto="https"))
    default_settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    assert origin_allowed(scope("https://voice.example.com", host, x_forwarded_proto="https"))
    assert not origin_allowed(scope("http://voice.example.com", host, x_forwarded_proto="https"))
    assert origin_allowed(scope("http://voice.example.com", host, x_forwarded_proto="http"))


def test_trusted_origins_exact_and_wildcard(default_settings: Any) -> None:
    default_settings.CSRF_TRUSTED_ORIGINS = ["https://voice.example.com", "https://*.example.org"]
    assert origin_allowed(scope("https://voice.example.com"))
    assert not origin_allowed(scope("https://voice.example.com:8443"))
    assert origin_allowed(scope("https://a.example.org"))
    assert not origin_allowed(scope("http://a.example.org"))
    assert not origin_allowed(scope("https://example.org.evil.com"))


# ----------------------------------------------------------------------------- log lines


def test_a_message_with_newlines_is_one_line() -> None:
    formatter = SingleLineFormatter("%(levelname)s %(name)s %(message)s")
    record = logging.LogRecord(
        "assistant.voicelive.events",
        logging.WARNING,
        __file__,
        1,
        "code=%s",
        ("x\n2026 CRITICAL assistant.consumers FORGED\r\x1b[2J\u2028",),
        None,
    )
    line = formatter.format(record)
    assert "\n" not in line
    assert "\r" not in line
    assert "\x1b" not in line
    assert "\u2028" not in line
    assert line.endswith("code=x\\n2026 CRITICAL assistant.consumers FORGED\\r\\x1b[2J\\u2028")


def test_a_traceback_keeps_its_lines_each_indented() -> None:
    """An exception message carrying a forged record cannot start a line of its own."""
    formatter = SingleLineFormatter("%(asctime)s %(levelname)s %(message)s")
    try:
        raise ValueError("boom\n2026-01-01 00:00:00,000 CRITICAL forged")
    except ValueError:
        import sys

        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    lines = formatter.format(record).splitlines()
    assert lines[0].endswith("ERROR failed")
    assert lines[1] == "    Traceback (most recent call last):"
    assert lines[-1] == "    2026-01-01 00:00:00,000 CRITICAL forged"
    assert all(line.startswith("    ") for line in lines[1:])
