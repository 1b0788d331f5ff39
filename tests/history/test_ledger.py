"""Costs from token usage, effective quotas, what a user spent, and the usage report."""

from __future__ import annotations

import datetime as dt
import io
import json
import uuid
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, User
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.utils import timezone

from assistant.history.ledger import (
    Quota,
    QuotaCheck,
    Spent,
    TokenUsage,
    effective_quota,
    estimate_cost,
    quota_check,
    spent,
    usage_report,
)
from assistant.history.models import Conversation, ModelPrice, UsageQuota, UsageRecord

#: ``response.done``'s ``usage`` as Voice Live sends it (docs: voicelive-protocol.md).
WIRE_USAGE = {
    "total_tokens": 30,
    "input_tokens": 20,
    "output_tokens": 10,
    "input_token_details": {
        "cached_tokens": 4,
        "text_tokens": 5,
        "audio_tokens": 15,
        "image_tokens": 0,
    },
    "output_token_details": {"text_tokens": 2, "audio_tokens": 8},
}


def test_token_usage_from_the_wire_and_from_garbage() -> None:
    usage = TokenUsage.from_event(WIRE_USAGE)
    assert usage == TokenUsage(20, 5, 15, 4, 10, 2, 8)
    assert TokenUsage.from_event(None) == TokenUsage()
    hostile = {"input_tokens": -5, "output_tokens": True, "input_token_details": "x"}
    assert TokenUsage.from_event(hostile) == TokenUsage()


def test_cost_splits_cached_tokens_out_of_the_input() -> None:
    price = ModelPrice(
        model="gpt-realtime",
        text_input=Decimal(4),
        audio_input=Decimal(32),
        cached_input=Decimal("0.4"),
        text_output=Decimal(16),
        audio_output=Decimal(64),
    )
    usage = TokenUsage.from_event(WIRE_USAGE)
    # 1 text + 15 audio + 4 cached in; 2 text + 8 audio out; per million.
    expected = (1 * 4 + 15 * 32 + Decimal("0.4") * 4 + 2 * 16 + 8 * 64) / Decimal(10**6)
    assert estimate_cost(usage, price) == expected.quantize(Decimal("0.000001"))
    assert estimate_cost(usage, None) == 0


@pytest.mark.django_db
def test_the_most_generous_quota_applies_and_unset_means_unlimited() -> None:
    user = User.objects.create_user("gina")
    assert effective_quota(user).unlimited
    UsageQuota.objects.create(user=user, minutes_per_day=10, minutes_per_month=100)
    team = Group.objects.create(name="team")
    user.groups.add(team)
    UsageQuota.objects.create(group=team, minutes_per_day=30, minutes_per_month=50)
    assert effective_quota(user) == Quota(minutes_per_day=30, minutes_per_month=100)
    power = Group.objects.create(name="power")
    user.groups.add(power)
    UsageQuota.objects.create(group=power, cost_per_month=Decimal(5))
    # "power" sets no minutes: no minute limit is the most generous.
    assert effective_quota(user) == Quota(cost_per_month=None)


@pytest.mark.django_db
def test_a_quota_needs_one_owner_and_one_limit() -> None:
    user = User.objects.create_user("hal")
    with pytest.raises(ValidationError):
        UsageQuota(user=user).full_clean()
    with pytest.raises(ValidationError):
        UsageQuota(user=user, group=Group.objects.create(name="g"), minutes_per_day=1).clean()
    UsageQuota(user=user, minutes_per_day=1).full_clean()


def record(
    user: User, *, when: dt.datetime, seconds: float, cost: str, model: str, **fields: object
) -> UsageRecord:
    return UsageRecord.objects.create(
        user=user,
        session_id=uuid.uuid4(),
        model=model,
        created_at=when,
        audio_in_seconds=seconds / 2,
        audio_out_seconds=seconds / 2,
        input_tokens=100,
        output_tokens=50,
        estimated_cost=Decimal(cost),
        **fields,
    )


@pytest.mark.django_db
def test_spent_counts_audio_both_ways_and_typed_text_today_and_this_month() -> None:
    """A quota minute is a minute of audio either way; typed text counts its speaking time."""
    user = User.objects.create_user("ida")
    now = dt.datetime(2026, 11, 15, 12, tzinfo=dt.UTC)
    record(user, when=now, seconds=120, cost="0.50", model="m")  # 1 min in, 1 min out
    record(user, when=now, seconds=0, cost="0", model="m", typed_seconds=30)  # typed
    record(user, when=now - dt.timedelta(days=1), seconds=60, cost="0.25", model="m")
    record(user, when=now - dt.timedelta(days=20), seconds=600, cost="9", model="m")  # October
    record(User.objects.create_user("other"), when=now, seconds=600, cost="9", model="m")
    used = spent(user, now=now)
    assert used.minutes_today == pytest.approx(2.5)
    assert used.minutes_this_month == pytest.approx(3.5)
    assert used.cost_this_month == Decimal("0.75")


@pytest.mark.django_db
def test_usage_report_rows_per_user_and_model_in_the_period() -> None:
    alice, bob = User.objects.create_user("alice"), User.objects.create_user("bob")
    day = dt.datetime(2026, 11, 2, 12, tzinfo=dt.UTC)
    record(alice, when=day, seconds=60, cost="0.10", model="gpt-realtime")
    record(alice, when=day, seconds=60, cost="0.10", model="gpt-realtime")
    record(alice, when=day, seconds=30, cost="0.05", model="gpt-realtime-mini")
    # A session's accrued row: usage, not a response.
    accrued = record(
        alice, when=day, seconds=0, cost="0", model="gpt-realtime", typed_seconds=6, kind="accrued"
    )
    record(bob, when=day + dt.timedelta(days=40), seconds=60, cost="1", model="gpt-realtime")
    rows = usage_report(day - dt.timedelta(days=1), day + dt.timedelta(days=1))
    assert [(r["username"], r["model"], r["responses"]) for r in rows] == [
        ("alice", "gpt-realtime", 2),
        ("alice", "gpt-realtime-mini", 1),
    ]
    assert accrued.kind == UsageRecord.Kind.ACCRUED
    assert rows[0]["sessions"] == 3
    assert rows[0]["audio_in_minutes"] == 1.0
    assert rows[0]["typed_minutes"] == 0.1
    assert rows[0]["quota_minutes"] == 2.1
    assert rows[0]["estimated_cost"] == "0.200000"

    out = io.StringIO()
    call_command("usage_report", "--since", "2026-11-01", "--until", "2026-11-03", stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("username,model,sessions,responses,")
    assert len(lines) == 3
    out = io.StringIO()
    call_command("usage_report", "--since", "2026-11-01", "--format", "json", stdout=out)
    assert {row["username"] for row in json.loads(out.getvalue())} == {"alice", "bob"}
    with pytest.raises(CommandError, match="not a date"):
        call_command("usage_report", "--since", "yesterday")
    with pytest.raises(CommandError, match="after"):
        call_command("usage_report", "--since", "2026-11-03", "--until", "2026-11-01")


@pytest.mark.django_db
def test_purge_history_deletes_old_conversations_and_keeps_usage() -> None:
    user = User.objects.create_user("jo")
    old = Conversation.objects.create(user=user, started_at=timezone.now() - dt.timedelta(days=91))
    recent = Conversation.objects.create(
        user=user, started_at=timezone.now() - dt.timedelta(days=89)
    )
    UsageRecord.objects.create(user=user, conversation=old, session_id=old.pk, model="m")
    out = io.StringIO()
    call_command("purge_history", "--dry-run", stdout=out)
    assert "Would delete 1 conversation" in out.getvalue()
    assert Conversation.objects.count() == 2
    call_command("purge_history", stdout=io.StringIO())
    assert list(Conversation.objects.values_list("pk", flat=True)) == [recent.pk]
    assert UsageRecord.objects.get(session_id=old.pk).conversation is None
    with pytest.raises(CommandError):
        call_command("purge_history", "--days", "0")


def test_quota_check_names_the_binding_limit_and_its_reset() -> None:
    now = dt.datetime(2026, 11, 15, 15, tzinfo=dt.UTC)
    used = Spent(minutes_today=8.0, minutes_this_month=50.0, cost_this_month=Decimal(1))
    assert quota_check(Quota(), used, now=now) == QuotaCheck(0.0, "", None)
    daily = quota_check(Quota(minutes_per_day=10, minutes_per_month=1000), used, now=now)
    assert (daily.limit, daily.warn, daily.exceeded) == ("day", True, False)
    assert daily.resets_at == dt.datetime(2026, 11, 16, tzinfo=dt.UTC)
    live = quota_check(Quota(minutes_per_day=10), used, extra_minutes=2.5, now=now)
    assert live.exceeded
    both = quota_check(Quota(minutes_per_day=5, cost_per_month=Decimal(1)), used, now=now)
    # Both used up: the one that lasts longer (the month's cost) is what the user waits for.
    assert (both.limit, both.resets_at) == ("cost", dt.datetime(2026, 12, 1, tzinfo=dt.UTC))
    january = quota_check(
        Quota(minutes_per_month=10), used, now=dt.datetime(2026, 12, 31, 23, tzinfo=dt.UTC)
    )
    assert january.resets_at == dt.datetime(2027, 1, 1, tzinfo=dt.UTC)
