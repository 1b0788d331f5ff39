"""Delete conversations older than the retention period (their usage records stay).

Evaluation runs built from conversations follow them: their replayed turns are deleted with
their conversations (a foreign key), and the runs requested before the cutoff go too.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from assistant.evaluation.models import ACTIVE_STATUSES, EvaluationRun, RunSource
from assistant.evaluation.runs import runs_purge
from assistant.history.models import Conversation


class Command(BaseCommand):
    help = (
        "Delete conversations (and their transcripts) that started more than "
        "HISTORY_RETENTION_DAYS days ago, and the evaluation runs built from conversations "
        "that were requested before then. The usage ledger is kept. Run it daily."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, help="override HISTORY_RETENTION_DAYS for this run")
        parser.add_argument("--dry-run", action="store_true", help="count, delete nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        days = options["days"] if options["days"] is not None else settings.HISTORY_RETENTION_DAYS
        if days < 1:
            msg = f"the retention must be at least 1 day (got {days})"
            raise CommandError(msg)
        cutoff = timezone.now() - dt.timedelta(days=days)
        old = Conversation.objects.filter(started_at__lt=cutoff)
        count = old.count()
        if options["dry_run"]:
            runs = (
                EvaluationRun.objects.filter(source=RunSource.CONVERSATIONS, created_at__lt=cutoff)
                .exclude(status__in=ACTIVE_STATUSES)
                .count()
            )
        else:
            old.delete()
            runs = runs_purge(cutoff)
        verb = "Would delete" if options["dry_run"] else "Deleted"
        self.stdout.write(
            f"{verb} {count} conversation(s) that started before {cutoff:%Y-%m-%d %H:%M %Z}"
            f" and {runs} evaluation run(s) built from conversations."
        )
