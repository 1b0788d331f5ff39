"""Cost estimates, effective quotas and usage reports (synchronous ORM: call off the loop)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Count, F, FloatField, Q, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from assistant.history.models import TOKENS_PER_PRICE_UNIT, ModelPrice, UsageQuota, UsageRecord

#: Costs are kept to a millionth of the currency unit (the ledger's decimal places).
COST_PLACES = Decimal("0.000001")
#: What a ledger row counts toward minute quotas, in seconds: audio both ways and typed text
#: (``Usage.quota_seconds``; assistant/history/usage.py says why).
QUOTA_SECONDS = F("audio_in_seconds") + F("audio_out_seconds") + F("typed_seconds")


@dataclass(frozen=True, slots=True)
class TokenUsage:
    """The token counts of one ``response.done`` (Voice Live's ``usage`` object, flattened)."""

    input_tokens: int = 0
    input_text_tokens: int = 0
    input_audio_tokens: int = 0
    input_cached_tokens: int = 0
    output_tokens: int = 0
    output_text_tokens: int = 0
    output_audio_tokens: int = 0

    @classmethod
    def from_event(cls, usage: Any) -> TokenUsage:
        """From ``response.usage`` as a dict (wire JSON) or the SDK's model; missing → 0."""

        def get(obj: Any, key: str) -> Any:
            if obj is None:
                return None
            return obj.get(key) if isinstance(obj, dict) else getattr(obj, key, None)

        def count(value: Any) -> int:
            valid = isinstance(value, int) and not isinstance(value, bool) and value >= 0
            return value if valid else 0

        inputs = get(usage, "input_token_details")
        outputs = get(usage, "output_token_details")
        return cls(
            input_tokens=count(get(usage, "input_tokens")),
            input_text_tokens=count(get(inputs, "text_tokens")),
            input_audio_tokens=count(get(inputs, "audio_tokens")),
            input_cached_tokens=count(get(inputs, "cached_tokens")),
            output_tokens=count(get(usage, "output_tokens")),
            output_text_tokens=count(get(outputs, "text_tokens")),
            output_audio_tokens=count(get(outputs, "audio_tokens")),
        )


def estimate_cost(usage: TokenUsage, price: ModelPrice | None) -> Decimal:
    """The cost of ``usage`` at ``price`` (zero when the model has no price).

    Cached input tokens are part of the input counts; they are billed at the cached price and
    the rest of the input at the text or audio price (text first, as providers split it).
    """
    if price is None:
        return Decimal(0)
    cached = min(usage.input_cached_tokens, usage.input_text_tokens + usage.input_audio_tokens)
    cached_text = min(cached, usage.input_text_tokens)
    cached_audio = cached - cached_text
    total = (
        price.text_input * (usage.input_text_tokens - cached_text)
        + price.audio_input * (usage.input_audio_tokens - cached_audio)
        + price.cached_input * cached
        + price.text_output * usage.output_text_tokens
        + price.audio_output * usage.output_audio_tokens
    )
    return (total / TOKENS_PER_PRICE_UNIT).quantize(COST_PLACES)


@dataclass(frozen=True, slots=True)
class Quota:
    """A user's effective limits; None means unlimited."""

    minutes_per_day: int | None = None
    minutes_per_month: int | None = None
    cost_per_month: Decimal | None = None

    @property
    def unlimited(self) -> bool:
        """True when nothing limits the user."""
        return self.minutes_per_day is self.minutes_per_month is self.cost_per_month is None


def _most_generous(values: list[Any]) -> Any:
    # A quota that leaves a limit unset does not limit it, and no limit beats any limit.
    if not values or any(value is None for value in values):
        return None
    return max(values)


def effective_quota(user: AbstractBaseUser | AnonymousUser) -> Quota:
    """The most generous of the user's own quota and their groups' quotas."""
    if not user.is_authenticated:
        return Quota()
    quotas = list(UsageQuota.objects.filter(Q(user=user.pk) | Q(group__user=user.pk)).distinct())
    if not quotas:
        return Quota()
    return Quota(
        minutes_per_day=_most_generous([q.minutes_per_day for q in quotas]),
        minutes_per_month=_most_generous([q.minutes_per_month for q in quotas]),
        cost_per_month=_most_generous([q.cost_per_month for q in quotas]),
    )


def effective_quotas(user_ids: Collection[int]) -> dict[int, Quota]:
    """:func:`effective_quota` of many users at once: two queries, whatever their number.

    Users without any quota (or gone) are left out: they are unlimited.
    """
    if not user_ids:
        return {}
    ids = list(user_ids)
    limits = ("minutes_per_day", "minutes_per_month", "cost_per_month")
    found: dict[int, list[tuple[Any, Any, Any]]] = {}
    own = UsageQuota.objects.filter(user_id__in=ids).values_list("user_id", *limits)
    by_group = UsageQuota.objects.filter(group__user__in=ids).values_list("group__user", *limits)
    wanted = set(ids)
    for user_id, *values in [*own, *by_group]:
        if user_id in wanted:  # a group's other members are not asked about
            found.setdefault(user_id, []).append((values[0], values[1], values[2]))
    return {
        user_id: Quota(
            minutes_per_day=_most_generous([q[0] for q in quotas]),
            minutes_per_month=_most_generous([q[1] for q in quotas]),
            cost_per_month=_most_generous([q[2] for q in quotas]),
        )
        for user_id, quotas in found.items()
    }


def period_starts(now: dt.datetime | None = None) -> tuple[dt.datetime, dt.datetime]:
    """The start of today and of this month, in the site's time zone."""
    local = timezone.localtime(now or timezone.now())
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return day, day.replace(day=1)


@dataclass(frozen=True, slots=True)
class Spent:
    """What a user used in the current day and month."""

    minutes_today: float
    minutes_this_month: float
    cost_this_month: Decimal


def spent(user: AbstractBaseUser | AnonymousUser, now: dt.datetime | None = None) -> Spent:
    """Conversation minutes and estimated cost of ``user`` so far this day and month, written.

    A conversation minute is a minute of audio either way (the user's microphone relayed to
    the assistant plus its spoken replies relayed to the browser), typed messages counting the
    time it takes to say them: see assistant/history/usage.py.
    """
    if not user.is_authenticated:
        return Spent(0.0, 0.0, Decimal(0))
    day, month = period_starts(now)
    minutes = QUOTA_SECONDS / 60.0
    totals = UsageRecord.objects.filter(
        user=user.pk, created_at__gte=month, is_draft=False
    ).aggregate(
        month_minutes=Coalesce(Sum(minutes, output_field=FloatField()), 0.0),
        day_minutes=Coalesce(
            Sum(minutes, filter=Q(created_at__gte=day), output_field=FloatField()), 0.0
        ),
        cost=Sum("estimated_cost"),
    )
    return Spent(
        minutes_today=float(totals["day_minutes"]),
        minutes_this_month=float(totals["month_minutes"]),
        cost_this_month=totals["cost"] or Decimal(0),
    )


def spent_by_user(user_ids: Collection[int], now: dt.datetime | None = None) -> dict[int, Spent]:
    """:func:`spent` of many users at once: one query grouped by user, whatever their number.

    A user with nothing written this month is left out (they spent nothing).
    """
    if not user_ids:
        return {}
    day, month = period_starts(now)
    minutes = QUOTA_SECONDS / 60.0
    rows = (
        UsageRecord.objects.filter(
            user_id__in=list(user_ids), created_at__gte=month, is_draft=False
        )
        .order_by()
        .values("user_id")
        .annotate(
            month_minutes=Coalesce(Sum(minutes, output_field=FloatField()), 0.0),
            day_minutes=Coalesce(
                Sum(minutes, filter=Q(created_at__gte=day), output_field=FloatField()), 0.0
            ),
            cost=Sum("estimated_cost"),
        )
    )
    return {
        row["user_id"]: Spent(
            minutes_today=float(row["day_minutes"]),
            minutes_this_month=float(row["month_minutes"]),
            cost_this_month=row["cost"] or Decimal(0),
        )
        for row in rows
    }


NOTHING_SPENT = Spent(0.0, 0.0, Decimal(0))


REPORT_FIELDS = (
    "username",
    "model",
    "sessions",
    "responses",
    "audio_in_minutes",
    "audio_out_minutes",
    "input_tokens",
    "output_tokens",
    "input_text_tokens",
    "input_audio_tokens",
    "input_cached_tokens",
    "output_text_tokens",
    "output_audio_tokens",
    "estimated_cost",
    "typed_minutes",
    "quota_minutes",
)


def usage_report(since: dt.datetime, until: dt.datetime | None = None) -> list[dict[str, Any]]:
    """One row per user and model with what they used in ``[since, until)``."""
    records = UsageRecord.objects.filter(created_at__gte=since)
    if until is not None:
        records = records.filter(created_at__lt=until)
    rows = (
        records.values("user__username", "model")
        .annotate(
            sessions=Count("session_id", distinct=True),
            responses=Count("id", filter=Q(kind=UsageRecord.Kind.RESPONSE)),
            audio_in=Sum("audio_in_seconds"),
            audio_out=Sum("audio_out_seconds"),
            typed=Sum("typed_seconds"),
            quota=Sum(QUOTA_SECONDS, output_field=FloatField()),
            input_tokens_sum=Sum("input_tokens"),
            output_tokens_sum=Sum("output_tokens"),
            input_text=Sum("input_text_tokens"),
            input_audio=Sum("input_audio_tokens"),
            input_cached=Sum("input_cached_tokens"),
            output_text=Sum("output_text_tokens"),
            output_audio=Sum("output_audio_tokens"),
            cost=Sum("estimated_cost"),
        )
        .order_by("user__username", "model")
    )
    return [
        {
            "username": row["user__username"],
            "model": row["model"],
            "sessions": row["sessions"],
            "responses": row["responses"],
            "audio_in_minutes": round((row["audio_in"] or 0.0) / 60, 3),
            "audio_out_minutes": round((row["audio_out"] or 0.0) / 60, 3),
            "input_tokens": row["input_tokens_sum"] or 0,
            "output_tokens": row["output_tokens_sum"] or 0,
            "input_text_tokens": row["input_text"] or 0,
            "input_audio_tokens": row["input_audio"] or 0,
            "input_cached_tokens": row["input_cached"] or 0,
            "output_text_tokens": row["output_text"] or 0,
            "output_audio_tokens": row["output_audio"] or 0,
            "estimated_cost": str(Decimal(row["cost"] or 0).quantize(COST_PLACES)),
            "typed_minutes": round((row["typed"] or 0.0) / 60, 3),
            "quota_minutes": round((row["quota"] or 0.0) / 60, 3),
        }
        for row in rows
    ]


#: A live session is warned once it has used this much of a quota.
QUOTA_WARNING_FRACTION = 0.8


@dataclass(frozen=True, slots=True)
class QuotaCheck:
    """Where a user stands against their quota: how much is used and when it resets."""

    fraction_used: float
    limit: str  # which limit binds: "day", "month", "cost" or "" when unlimited
    resets_at: dt.datetime | None

    @property
    def exceeded(self) -> bool:
        """True when a limit is used up."""
        return self.fraction_used >= 1.0

    @property
    def warn(self) -> bool:
        """True from :data:`QUOTA_WARNING_FRACTION` of a limit on."""
        return self.fraction_used >= QUOTA_WARNING_FRACTION


def quota_check(
    quota: Quota,
    used: Spent,
    *,
    extra_minutes: float = 0.0,
    extra_cost: Decimal = Decimal(0),
    now: dt.datetime | None = None,
) -> QuotaCheck:
    """Compare ``used`` (plus a live session's ``extra_*`` not yet written) with ``quota``."""
    day, month = period_starts(now)
    next_day = day + dt.timedelta(days=1)
    next_month = (month + dt.timedelta(days=32)).replace(day=1)
    candidates: list[tuple[float, str, dt.datetime]] = []
    if quota.minutes_per_day is not None:
        minutes = used.minutes_today + extra_minutes
        candidates.append((minutes / quota.minutes_per_day, "day", next_day))
    if quota.minutes_per_month is not None:
        minutes = used.minutes_this_month + extra_minutes
        candidates.append((minutes / quota.minutes_per_month, "month", next_month))
    if quota.cost_per_month is not None:
        cost = used.cost_this_month + extra_cost
        candidates.append((float(cost / quota.cost_per_month), "cost", next_month))
    if not candidates:
        return QuotaCheck(0.0, "", None)
    # The binding limit is the most used one; if several are used up, the latest reset.
    fraction, limit, resets = max(candidates, key=lambda c: (min(c[0], 1.0), c[2]))
    return QuotaCheck(fraction, limit, resets)
