"""The usage dashboard's numbers and charts (server-rendered SVG: no script, no CDN).

Per day for the last weeks: sessions, conversation minutes (as quotas count them: audio both
ways and typed text) and estimated cost; per user, profile and model for the month; turn
latency (end of speech to the reply's first audio, assistant/voicelive/turn_timing.py) at p50
and p95 per day, per profile and per worker; the slowest replies. Synchronous ORM (an admin
view).
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db.models import Count, FloatField, Sum
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone
from django.utils.translation import gettext

from assistant.history.ledger import QUOTA_SECONDS, period_starts
from assistant.history.models import Turn, UsageRecord

CHART_WIDTH = 640
CHART_HEIGHT = 160
TOP = 10
#: Timed replies read for the latency percentiles at most (the newest): bounds the page's work.
MAX_LATENCY_ROWS = 200_000


@dataclass(frozen=True, slots=True)
class Bar:
    """One bar of a chart, in SVG user units."""

    x: float
    y: float
    width: float
    height: float
    label: str
    value: str


@dataclass(frozen=True, slots=True)
class Chart:
    """A bar chart ready for the template: its bars and its largest value."""

    title: str
    bars: list[Bar]
    maximum: str
    width: int = CHART_WIDTH
    height: int = CHART_HEIGHT


def bar_chart(title: str, points: list[tuple[str, float]], unit: str = "") -> Chart:
    """Bars for ``points`` (label, value), scaled to the chart's height."""
    top = max((value for _, value in points), default=0.0) or 1.0
    slot = CHART_WIDTH / max(len(points), 1)
    bars = []
    for index, (label, value) in enumerate(points):
        height = CHART_HEIGHT * value / top
        bars.append(
            Bar(
                x=round(index * slot + slot * 0.1, 2),
                y=round(CHART_HEIGHT - height, 2),
                width=round(slot * 0.8, 2),
                height=round(height, 2),
                label=label,
                value=f"{value:.2f}{unit}" if isinstance(value, float) else f"{value}{unit}",
            )
        )
    return Chart(title=title, bars=bars, maximum=f"{top:.2f}{unit}")


def daily(days: int, now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Sessions, minutes and cost per day for the last ``days`` days (empty days included)."""
    today = timezone.localdate(now or timezone.now())
    first = today - dt.timedelta(days=days - 1)
    rows = (
        UsageRecord.objects.filter(created_at__date__gte=first)
        .annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(
            sessions=Count("session_id", distinct=True),
            minutes=Coalesce(Sum(QUOTA_SECONDS / 60.0, output_field=FloatField()), 0.0),
            cost=Sum("estimated_cost"),
        )
    )
    by_day: dict[dt.date, dict[str, Any]] = {row["day"]: dict(row) for row in rows}
    result = []
    for offset in range(days):
        day = first + dt.timedelta(days=offset)
        row = by_day.get(day, {})
        result.append(
            {
                "day": day,
                "sessions": row.get("sessions", 0),
                "minutes": float(row.get("minutes", 0.0)),
                "cost": Decimal(row.get("cost") or 0),
            }
        )
    return result


def breakdown(field: str, since: dt.datetime) -> list[dict[str, Any]]:
    """This period's usage grouped by ``field`` (user, profile or model), biggest first."""
    return list(
        UsageRecord.objects.filter(created_at__gte=since)
        .values(field)
        .annotate(
            sessions=Count("session_id", distinct=True),
            minutes=Coalesce(Sum(QUOTA_SECONDS / 60.0, output_field=FloatField()), 0.0),
            cost=Coalesce(Sum("estimated_cost"), Decimal(0)),
        )
        .order_by("-minutes")[:TOP]
    )


def slowest_turns(since: dt.datetime) -> list[Turn]:
    """The assistant turns with the longest wait since ``since``."""
    return list(
        Turn.objects.filter(started_at__gte=since, latency_ms__isnull=False)
        .select_related("conversation__user")
        .order_by("-latency_ms")[:TOP]
    )


def percentile(ordered: Sequence[int], q: float) -> int | None:
    """The nearest-rank ``q``-th percentile (0..100) of sorted ``ordered``; None when empty."""
    if not ordered:
        return None
    rank = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[rank]


def _spread(label: str, values: list[int]) -> dict[str, Any]:
    ordered = sorted(values)
    return {
        "name": label,
        "turns": len(ordered),
        "p50": percentile(ordered, 50),
        "p95": percentile(ordered, 95),
    }


def turn_latency(days: int, now: dt.datetime | None = None) -> dict[str, Any]:
    """Turn latency (ms) at p50 and p95: per day of the last ``days``, per profile, per worker."""
    today = timezone.localdate(now)
    first = today - dt.timedelta(days=days - 1)
    rows = (
        Turn.objects.filter(started_at__date__gte=first, latency_ms__isnull=False)
        .annotate(day=TruncDate("started_at"))
        .order_by("-started_at")
        .values_list("day", "conversation__profile_name", "conversation__worker", "latency_ms")[
            :MAX_LATENCY_ROWS
        ]
    )
    by_day: dict[dt.date, list[int]] = defaultdict(list)
    by_profile: dict[str, list[int]] = defaultdict(list)
    by_worker: dict[str, list[int]] = defaultdict(list)
    for day, profile, worker, latency in rows:
        if latency is None:  # filtered out above; the column is nullable
            continue
        by_day[day].append(latency)
        by_profile[profile].append(latency)
        by_worker[worker].append(latency)
    per_day = [
        {"day": day, **_spread(str(day), by_day.get(day, []))}
        for day in (first + dt.timedelta(days=offset) for offset in range(days))
    ]
    return {
        "per_day": per_day,
        "by_profile": sorted(
            (_spread(name, values) for name, values in by_profile.items()),
            key=lambda row: -(row["p95"] or 0),
        ),
        "by_worker": sorted(
            (_spread(name, values) for name, values in by_worker.items()),
            key=lambda row: -(row["p95"] or 0),
        ),
    }


def dashboard(days: int = 30, now: dt.datetime | None = None) -> dict[str, Any]:
    """Everything the dashboard template shows."""
    _, month = period_starts(now)
    per_day = daily(days, now)
    labels = [row["day"].strftime("%d %b") for row in per_day]
    latency = turn_latency(days, now)
    return {
        "days": days,
        "per_day": per_day,
        "charts": [
            bar_chart(
                gettext("Sessions per day"),
                list(zip(labels, [r["sessions"] for r in per_day], strict=True)),
            ),
            bar_chart(
                gettext("Conversation minutes per day"),
                list(zip(labels, [r["minutes"] for r in per_day], strict=True)),
            ),
            bar_chart(
                gettext("Estimated cost per day"),
                list(zip(labels, [float(r["cost"]) for r in per_day], strict=True)),
            ),
            bar_chart(
                gettext("Turn latency per day, p50 (end of speech to first audio)"),
                list(zip(labels, [r["p50"] or 0 for r in latency["per_day"]], strict=True)),
                " ms",
            ),
            bar_chart(
                gettext("Turn latency per day, p95 (end of speech to first audio)"),
                list(zip(labels, [r["p95"] or 0 for r in latency["per_day"]], strict=True)),
                " ms",
            ),
        ],
        "latency": latency,
        "by_user": breakdown("user__username", month),
        "by_profile": breakdown("profile_name", month),
        "by_model": breakdown("model", month),
        "slowest": slowest_turns(month),
        "month": month,
    }
