"""Pages and ops endpoints over Django's test client."""

from __future__ import annotations

import ipaddress
from http import HTTPStatus
from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from assistant.models import AssistantProfile, LiveSession
from assistant.services import profile_choices_for_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def user() -> User:
    return User.objects.create_user("carol", password="pw-carol-123")


def test_talk_page_needs_login(client: Client) -> None:
    response = client.get(reverse("assistant:talk"))
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"].startswith(reverse("login"))


def test_users_pick_among_their_profiles(client: Client, user: User) -> None:
    AssistantProfile.objects.filter(is_default=True).update(is_default=False)
    default = AssistantProfile.objects.create(name="Default", is_default=True)
    assert [p.name for p in profile_choices_for_user(user=user)] == ["Default"]
    direct = AssistantProfile.objects.create(name="Mine")
    direct.users.add(user)
    team = Group.objects.create(name="team")
    user.groups.add(team)
    via_group = AssistantProfile.objects.create(name="Team")
    via_group.groups.add(team)
    AssistantProfile.objects.create(name="Disabled", is_enabled=False).users.add(user)
    assert [p.name for p in profile_choices_for_user(user=user)] == ["Mine", "Team"]
    client.force_login(user)
    response = client.get(reverse("assistant:talk"), {"profile": via_group.pk})
    assert response.status_code == HTTPStatus.OK
    assert [p.name for p in response.context["profiles"]] == ["Mine", "Team"]
    assert response.context["selected_profile_id"] == via_group.pk
    assert default.pk not in [p.id for p in response.context["profiles"]]


def test_healthz_and_metrics(client: Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    metrics = client.get("/metrics")
    assert metrics.status_code == HTTPStatus.OK
    assert b"voice_active_sessions" in metrics.content


def test_metrics_need_an_allowed_network_or_the_token(client: Client, settings: Any) -> None:
    """Tool names and counts are not for everyone (issue 19): loopback by default, or a token."""
    outside = {"REMOTE_ADDR": "203.0.113.7"}
    refused = client.get("/metrics", **outside)
    assert refused.status_code == HTTPStatus.FORBIDDEN
    assert b"voice_" not in refused.content
    settings.METRICS_TOKEN = "scrape-token-0123456789"
    wrong = client.get("/metrics", HTTP_AUTHORIZATION="Bearer nope", **outside)
    assert wrong.status_code == HTTPStatus.FORBIDDEN
    assert wrong["WWW-Authenticate"].startswith("Bearer")
    right = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-token-0123456789", **outside)
    assert right.status_code == HTTPStatus.OK
    assert b"voice_active_sessions" in right.content
    # Token only (as on Container Apps, whose ingress appends to X-Forwarded-For): loopback too
    # must show the token.
    settings.METRICS_ALLOWED_NETWORKS = []
    assert client.get("/metrics").status_code == HTTPStatus.FORBIDDEN
    # A wrong token is refused even from an allowed network.
    settings.METRICS_ALLOWED_NETWORKS = [ipaddress.ip_network("127.0.0.0/8")]
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer nope").status_code == 403


@pytest.mark.django_db(transaction=True)  # the check runs outside the test's transaction
def test_readyz_reports_each_dependency(client: Client, settings: object) -> None:
    settings.AZURE_VOICELIVE_ENDPOINT = "http://127.0.0.1:9"  # nothing listens there
    response = client.get("/readyz")
    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    checks = response.json()["checks"]
    assert checks["database"]["ok"] is True, checks
    assert checks["upstream"]["ok"] is False


def test_monitor_page_needs_the_permission(client: Client, user: User) -> None:
    row = LiveSession.objects.create(
        user=user, worker="w", channel_name="c", last_seen=timezone.now()
    )
    url = reverse("assistant:monitor", args=[row.pk])
    client.force_login(user)
    assert client.get(url).status_code == HTTPStatus.FOUND  # not staff: to the admin login
    staff = User.objects.create_user("mon", password="pw-mon-12345", is_staff=True)
    client.force_login(staff)
    assert client.get(url).status_code == HTTPStatus.FORBIDDEN
    staff.user_permissions.add(Permission.objects.get(codename="monitor_livesession"))
    staff = User.objects.get(pk=staff.pk)
    client.force_login(staff)
    response = client.get(url)
    assert response.status_code == HTTPStatus.OK
    assert response.context["session_id"] == str(row.pk)
