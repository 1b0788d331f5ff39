"""Security settings and login throttling."""

from __future__ import annotations

import os
import subprocess
import sys
from http import HTTPStatus
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

ROOT = Path(__file__).resolve().parent.parent


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "REDIS_URL"))}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "voiceproject.settings.base", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_production_refuses_to_start_without_a_secret_key() -> None:
    result = _manage("check", DJANGO_ALLOWED_HOSTS="voice.example.com")
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


def test_production_refuses_to_start_without_allowed_hosts() -> None:
    result = _manage("check", DJANGO_SECRET_KEY="x" * 60)
    assert result.returncode != 0
    assert "DJANGO_ALLOWED_HOSTS" in result.stderr


def test_deploy_check_is_clean_with_production_settings() -> None:
    result = _manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DJANGO_SECRET_KEY="k3y-" + "a1b2c3d4e5" * 6,
        DJANGO_ALLOWED_HOSTS="voice.example.com",
        DJANGO_CSRF_TRUSTED_ORIGINS="https://voice.example.com",
        DJANGO_SECURE_HSTS_SECONDS="31536000",
        DJANGO_SECURE_HSTS_PRELOAD="1",
    )
    assert result.returncode == 0, result.stderr + result.stdout


@pytest.mark.django_db
def test_repeated_login_failures_are_throttled(client: Client, settings: object) -> None:
    cache.clear()
    User.objects.create_user("dave", password="correct-horse-9")
    url = reverse("login")
    for _ in range(settings.LOGIN_FAILURE_LIMIT):
        response = client.post(url, {"username": "dave", "password": "wrong"})
        assert response.status_code == HTTPStatus.OK
        assert "Too many failed attempts" not in response.content.decode()
    # Even the right password is refused while the lock holds.
    response = client.post(url, {"username": "dave", "password": "correct-horse-9"})
    assert "Too many failed attempts" in response.content.decode()
    assert "_auth_user_id" not in client.session
    cache.clear()
    response = client.post(url, {"username": "dave", "password": "correct-horse-9"})
    assert response.status_code == HTTPStatus.FOUND
