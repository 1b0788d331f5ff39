"""Usage per user and model over a period, as CSV or JSON (for billing)."""

from __future__ import annotations

import csv
import datetime as dt
import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from assistant.history.ledger import REPORT_FIELDS, usage_report


def _day(value: str) -> dt.datetime:
    try:
        day = dt.date.fromisoformat(value)
    except ValueError as exc:
        msg = f"not a date (YYYY-MM-DD): {value!r}"
        raise CommandError(msg) from exc
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


class Command(BaseCommand):
    help = (
        "One row per user and model: sessions, responses, audio minutes in and out, tokens, "
        "estimated cost, typed minutes and the minutes quotas count, from --since (inclusive) "
        "to --until (exclusive; default: now)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--since", required=True, help="first day, YYYY-MM-DD")
        parser.add_argument("--until", help="day after the last one, YYYY-MM-DD")
        parser.add_argument("--format", choices=["csv", "json"], default="csv")

    def handle(self, *args: Any, **options: Any) -> None:
        since = _day(options["since"])
        until = _day(options["until"]) if options["until"] else None
        if until is not None and until <= since:
            msg = "--until must be after --since"
            raise CommandError(msg)
        rows = usage_report(since, until)
        if options["format"] == "json":
            self.stdout.write(json.dumps(rows, indent=2))
            return
        writer = csv.DictWriter(self.stdout, fieldnames=REPORT_FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
