"""Who a login belongs to while it lasts, and who may watch (issue 9's login rules).

The real-server versions are tests/hardening/test_redteam.py and
tests/scaleout/test_redteam_redis.py; these pin each rule down one case at a time. The
batched re-validation is tests/live/test_revalidation_batch.py.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone

from assistant.codes import CloseCode
from assistant.live.admission import monitor_refusal, session_user


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
