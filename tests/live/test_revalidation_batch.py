"""The worker's batched login re-validation: Django's rules for every login, two queries.

``logins_still_valid`` re-validates all the logins due on a checks tick at once
(assistant/calls/checks.py); each answer must be :func:`session_user`'s, one case at a
time in tests/live/test_admission.py, and the queries must not grow with the logins.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.contrib.sessions.models import Session
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from assistant.live.admission import logins_still_valid, session_user

pytestmark = pytest.mark.django_db


def logins(n: int, prefix: str = "u") -> list[tuple[User, str]]:
    made = []
    for i in range(n):
        user = User.objects.create_user(f"{prefix}{i}", password="pw-batch-12345")
        client = Client()
        client.force_login(user)
        made.append((user, client.session.session_key or ""))
    return made


def test_each_answer_is_session_users() -> None:
    crowd = logins(7)
    (changed, _), (expired_user, expired), (inactive, _), (other, _) = crowd[:4]
    changed.set_password("another-pw-9876")
    changed.save()
    Session.objects.filter(session_key=expired).update(expire_date=timezone.now() - timedelta(1))
    User.objects.filter(pk=inactive.pk).update(is_active=False)
    User.objects.filter(pk=crowd[4][0].pk).delete()
    asked = [(key, user.pk) for user, key in crowd]
    asked[3] = (asked[3][0], crowd[5][0].pk)  # a login of someone else than the socket's user
    asked.append(("no-such-session-key", other.pk))
    valid = logins_still_valid(asked)
    for key, user_id in asked:
        found = session_user(key)
        assert (key in valid) == (found is not None and found.pk == user_id), key
    assert valid == {crowd[5][1], crowd[6][1]}
    assert Session.objects.filter(session_key=expired).exists()  # read-only: nothing flushed


def test_a_fallback_secret_still_counts(settings: Any) -> None:
    [(user, key)] = logins(1)
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a-rotated-secret-key-" + "x" * 40
    assert logins_still_valid([(key, user.pk)]) == {key}
    settings.SECRET_KEY_FALLBACKS = []
    assert logins_still_valid([(key, user.pk)]) == set()


def test_two_queries_whatever_the_number_of_logins() -> None:
    few, many = logins(2, "few"), logins(30, "many")
    for crowd in (few, many):
        with CaptureQueriesContext(connection) as captured:
            assert len(logins_still_valid([(k, u.pk) for u, k in crowd])) == len(crowd)
        assert len(captured.captured_queries) == 2
    with CaptureQueriesContext(connection) as captured:
        assert logins_still_valid([]) == set()
    assert len(captured.captured_queries) == 0


def test_another_session_engine_is_asked_per_login(settings: Any) -> None:
    """Only the database engine is batched; any other keeps its own rules (here: signed cookies
    hold no server-side session, so a key alone authenticates nobody)."""
    [(user, key)] = logins(1)
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
    assert logins_still_valid([(key, user.pk)]) == set()
