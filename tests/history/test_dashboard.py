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

from assistant.history.dashboard import bar_chart, daily, percentile, turn_latency
from assistant.history.models import Conversation, ConversationEvent, Turn, UsageRecord

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
    assert body.count('<figure class="usage-chart">') == 5  # with p50 and p95 latency per day
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


def test_percentiles_are_nearest_rank() -> None:
    values = list(range(1, 101))
    assert (percentile(values, 50), percentile(values, 95), percentile(values, 100)) == (
        50,
        95,
        100,
    )
    assert percentile([], 50) is None
    assert percentile([7], 95) == 7


def reply(talk: Conversation, seq: int, latency_ms: int, *, days_ago: int = 0) -> Turn:
    return Turn.objects.create(
        conversation=talk,
        seq=seq,
        role="assistant",
        text=f"reply {seq}",
        started_at=timezone.now() - dt.timedelta(days=days_ago),
        latency_ms=latency_ms,
        eot_ms=latency_ms // 2,
        first_audio_ms=latency_ms - latency_ms // 2,
    )


def test_turn_latency_per_day_profile_and_worker() -> None:
    user = User.objects.create_user("pat")
    calm = Conversation.objects.create(user=user, profile_name="Calm", worker="w1")
    quick = Conversation.objects.create(user=user, profile_name="Quick", worker="w2")
    for seq, latency in enumerate([500, 600, 700, 2000]):
        reply(calm, seq, latency)
    reply(quick, 0, 300)
    reply(quick, 1, 400, days_ago=1)
    latency = turn_latency(3)
    today, yesterday = latency["per_day"][-1], latency["per_day"][-2]
    assert (today["turns"], today["p50"], today["p95"]) == (5, 600, 2000)
    assert (yesterday["turns"], yesterday["p50"]) == (1, 400)
    assert latency["per_day"][0]["p50"] is None
    by_profile = {
        row["name"]: (row["turns"], row["p50"], row["p95"]) for row in latency["by_profile"]
    }
    assert by_profile == {"Calm": (4, 600, 2000), "Quick": (2, 300, 400)}
    assert [row["name"] for row in latency["by_worker"]] == ["w1", "w2"]  # slowest p95 first


def test_the_timeline_shows_timings_and_events_to_staff_only(client: Client) -> None:
    user = User.objects.create_user("quinn")
    talk = Conversation.objects.create(
        user=user,
        profile_name="Calm",
        worker="w1",
        ended_at=timezone.now(),
        end_reason="stopped",
        upstream_session_ids=["sess_1", "sess_2"],
    )
    Turn.objects.create(
        conversation=talk, seq=0, role="user", text="secret question", started_at=timezone.now()
    )
    answer = reply(talk, 1, 800)
    answer.interrupted, answer.heard_ms, answer.played_latency_ms = True, 1200, 900
    answer.save()
    ConversationEvent.objects.create(
        conversation=talk, kind="tool", at=timezone.now(), detail="weather → ok", duration_ms=250
    )
    ConversationEvent.objects.create(conversation=talk, kind="rollover", at=timezone.now())
    url = reverse("admin:history_conversation_timeline", args=[talk.pk])
    client.force_login(user)  # not staff: sent to the admin's login
    assert client.get(url).status_code == HTTPStatus.FOUND
    staff = User.objects.create_user("ops3", is_staff=True)
    client.force_login(staff)
    assert client.get(url).status_code == HTTPStatus.FORBIDDEN
    staff.user_permissions.add(Permission.objects.get(codename="view_usagerecord"))
    body = client.get(url).content.decode()
    assert "800 ms" in body
    assert "weather → ok (250 ms)" in body
    assert "interrupted after 1200 ms" in body
    assert 'id="timeline-latency-chart"' in body
    assert "stopped" in body
    assert "secret question" not in body  # the words need the transcript permission
    staff.user_permissions.add(Permission.objects.get(codename="view_conversation"))
    assert "secret question" in client.get(url).content.decode()
