"""The admin's usage dashboard: numbers, SVG charts, and who may see it."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from http import HTTPStatus

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from assistant.history.dashboard import bar_chart, daily
from assistant.history.models import Conversation, Turn, UsageRecord

pytestmark = pytest.mark.django_db

URL = "admin:history_usage_dashboard"


def usage(user: User, *, minutes: float, cost: str, days_ago: int = 0, model: str = "m") -> None:
    UsageRecord.objects.create(
        user=user,
        session_id=uuid.uuid4(),
        model=model,
        profile_name="Friendly",
        created_at=timezone.now() - dt.timedelta(days=days_ago),
        audio_in_seconds=minutes * 60,
        estimated_cost=Decimal(cost),
    )


def test_bar_chart_scales_to_the_highest_value() -> None:
    chart = bar_chart("x", [("a", 1.0), ("b", 4.0), ("c", 0.0)])
    assert [bar.height for bar in chart.bars] == [40.0, 160.0, 0.0]
    assert chart.bars[1].y == 0.0
    assert bar_chart("empty", []).bars == []


def test_daily_fills_empty_days() -> None:
    user = User.objects.create_user("mo")
    usage(user, minutes=3, cost="0.3")
    usage(user, minutes=1, cost="0.1")
    usage(user, minutes=2, cost="0.2", days_ago=2)
    rows = daily(5)
    assert [r["sessions"] for r in rows] == [0, 0, 1, 0, 2]
    assert rows[-1]["minutes"] == pytest.approx(4.0)
    assert rows[-1]["cost"] == Decimal("0.4")


def test_staff_with_the_permission_see_charts_and_tables(client: Client) -> None:
    user = User.objects.create_user("nia")
    usage(user, minutes=5, cost="0.5", model="gpt-realtime")
    talk = Conversation.objects.create(user=user)
    Turn.objects.create(
        conversation=talk,
        seq=0,
        role="assistant",
        text="x",
        started_at=timezone.now(),
        latency_ms=4321,
    )
    staff = User.objects.create_user("ops", is_staff=True)
    client.force_login(staff)
    assert client.get(reverse(URL)).status_code == HTTPStatus.FORBIDDEN
    staff.user_permissions.add(Permission.objects.get(codename="view_usagerecord"))
    response = client.get(reverse(URL))
    body = response.content.decode()
    assert response.status_code == HTTPStatus.OK
    assert body.count('<figure class="usage-chart">') == 3
    assert "gpt-realtime" in body
    assert "nia" in body
    assert "4321 ms" in body
    # Without view_conversation, no link into the transcript.
    assert reverse("admin:history_conversation_change", args=[talk.pk]) not in body
    changelist = client.get(reverse("admin:history_usagerecord_changelist")).content.decode()
    assert reverse(URL) in changelist


def test_the_transcript_needs_its_own_permission_and_is_logged(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    user = User.objects.create_user("oz")
    talk = Conversation.objects.create(user=user)
    Turn.objects.create(
        conversation=talk, seq=0, role="user", text="private words", started_at=timezone.now()
    )
    staff = User.objects.create_user("ops2", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_usagerecord"))
    client.force_login(staff)
    url = reverse("admin:history_conversation_change", args=[talk.pk])
    assert client.get(url).status_code == HTTPStatus.FORBIDDEN
    staff.user_permissions.add(Permission.objects.get(codename="view_conversation"))
    with caplog.at_level("INFO", logger="assistant.audit"):
        body = client.get(url).content.decode()
    assert "private words" in body
    assert [r.getMessage() for r in caplog.records if r.name == "assistant.audit"] == [
        f"transcript {talk.pk} opened by ops2 (id {staff.pk})"
    ]
