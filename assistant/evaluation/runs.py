"""Evaluation runs in the database: request, cancel, claim with a lease, plan, store, finish.

Every change of a run's state is one conditional UPDATE, so two runner processes never both
hold a run: a runner *claims* a queued run (or one whose lease expired: its runner died) by
setting itself as the lease owner, renews the lease while it works, and writes a turn or the
end only while it still holds it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F, Q, QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone

from assistant.evaluation.checks import CheckSpec
from assistant.evaluation.models import (
    ACTIVE_STATUSES,
    EvaluationRun,
    RunSource,
    RunStatus,
    RunTurn,
    TestSet,
    TestTurn,
)
from assistant.evaluation.replay import UserTurn
from assistant.history.models import Conversation, Turn
from assistant.models import AssistantProfile
from assistant.models.versions import profile_snapshot

USER_ROLES = (Turn.Role.USER, Turn.Role.TYPED)
#: How many conversations a run may replay (a run is a sample, not an export).
MAX_CONVERSATIONS = 50


class RunBusy(Exception):
    """The profile already has a queued or running evaluation."""


#: One conversation to replay: the history's conversation id (None for a test set), its turns.
Group = tuple[str | None, list[UserTurn]]
#: A runner looks for queued runs every 2 s (``--poll-seconds``): a run still queued after
#: this long, while no run holds a live lease, has no runner to take it.
RUNNER_MISSING_AFTER = dt.timedelta(seconds=60)


def conversation_groups(profile_id: int, count: int) -> list[Group]:
    """The user turns of the profile's last ``count`` conversations that kept their text.

    Oldest first. Draft conversations are left out: they did not run on a version.
    """
    rows = Conversation.objects.filter(
        profile_id=profile_id, transcript_stored=True, is_draft=False
    ).order_by("-started_at")[:count]
    groups: list[Group] = []
    for conversation in reversed(list(rows)):
        texts = [
            text.strip()
            for text in conversation.turns.filter(role__in=USER_ROLES)
            .order_by("seq")
            .values_list("text", flat=True)
            if text.strip()
        ]
        if texts:
            groups.append((str(conversation.pk), [UserTurn(text) for text in texts]))
    return groups


def test_set_groups(test_set: TestSet) -> list[Group]:
    """A test set is one conversation; its recorded turns are sent as audio."""
    recordings = _recordings(test_set.turns.all())
    turns = [
        UserTurn(turn.text.strip(), recordings.get(turn.pk)) for turn in test_set.replayed_turns()
    ]
    return [(None, turns)] if turns else []


def _recordings(turns: QuerySet[TestTurn]) -> dict[int, bytes]:
    """The recordings of ``turns`` that have one, by turn id, as bytes.

    A BinaryField reads as a memoryview on PostgreSQL.
    """
    stored = turns.exclude(audio=None).values_list("pk", "audio")
    return {pk: bytes(audio) for pk, audio in stored if audio}


def run_user_turns(rows: list[RunTurn]) -> list[UserTurn]:
    """A run's planned turns as the replay sends them, each test-set recording read now.

    A recording deleted since the run was planned (its turn removed from the set) leaves the
    turn's text, which is replayed as text.
    """
    ids = [row.test_turn_id for row in rows if row.test_turn_id]
    recordings = _recordings(TestTurn.objects.filter(pk__in=ids))
    return [UserTurn(row.user_text, recordings.get(row.test_turn_id or 0)) for row in rows]


def runner_state(run: EvaluationRun) -> str:
    """Why a queued run is not running yet; empty for a run no longer queued.

    ``waiting`` for a runner to claim it, ``busy``: a runner is on another run, ``missing``:
    queued past :data:`RUNNER_MISSING_AFTER` while no run is held (no runner seems to run).
    """
    if run.status != RunStatus.QUEUED:
        return ""
    now = timezone.now()
    held = EvaluationRun.objects.filter(
        status__in=[RunStatus.RUNNING, RunStatus.CANCELLING], lease_expires_at__gt=now
    ).exists()
    if held:
        return "busy"
    if run.created_at is not None and now - run.created_at > RUNNER_MISSING_AFTER:
        return "missing"
    return "waiting"


def test_set_checks(test_set: TestSet) -> list[CheckSpec]:
    """A test set's checks as the scorer takes them."""
    return [CheckSpec(check.kind, check.value, check.turn) for check in test_set.checks.all()]


def run_request(
    *,
    profile: AssistantProfile,
    candidate_version: int | None,
    baseline_version: int | None,
    conversations: int | None = None,
    test_set: TestSet | None = None,
    requested_by: Any = None,
) -> EvaluationRun:
    """Queue a run; ``candidate_version`` None is the draft as it is now.

    Raises:
        LookupError: a version that does not exist, or no source.
        RunBusy: the profile already has an active run.
    """
    baseline = baseline_version or profile.version
    for number in (candidate_version, baseline):
        if number is not None and not profile.versions.filter(number=number).exists():
            msg = f"profile {profile.pk} has no version {number}"
            raise LookupError(msg)
    if test_set is None and not conversations:
        msg = "choose a test set or a number of conversations"
        raise LookupError(msg)
    run = EvaluationRun(
        profile=profile,
        candidate_version=candidate_version,
        candidate_snapshot=(
            (profile.draft or profile_snapshot(profile)) if candidate_version is None else None
        ),
        draft_of=profile.version if candidate_version is None else None,
        baseline_version=baseline,
        source=RunSource.TEST_SET if test_set else RunSource.CONVERSATIONS,
        conversations=None if test_set else min(conversations or 0, MAX_CONVERSATIONS),
        test_set=test_set,
        test_set_name=test_set.name if test_set else "",
        requested_by=requested_by,
    )
    try:
        with transaction.atomic():
            run.save()
    except IntegrityError as exc:
        msg = f"profile {profile.pk} already has an evaluation queued or running"
        raise RunBusy(msg) from exc
    return run


def run_cancel(run_id: Any) -> EvaluationRun:
    """Cancel a run: a queued one at once, a running one at its runner's next turn."""
    now = timezone.now()
    EvaluationRun.objects.filter(pk=run_id, status=RunStatus.QUEUED).update(
        status=RunStatus.CANCELLED, finished_at=now, lease_owner=""
    )
    EvaluationRun.objects.filter(pk=run_id, status=RunStatus.RUNNING).update(
        status=RunStatus.CANCELLING
    )
    return EvaluationRun.objects.get(pk=run_id)


def _claimable(now: dt.datetime) -> Q:
    expired = Q(status__in=[RunStatus.RUNNING, RunStatus.CANCELLING]) & (
        Q(lease_expires_at__lt=now) | Q(lease_expires_at__isnull=True)
    )
    return Q(status=RunStatus.QUEUED) | expired


def run_claim(owner: str, lease_seconds: float) -> EvaluationRun | None:
    """Take the oldest queued run, or one whose runner's lease expired; None if there is none."""
    now = timezone.now()
    for run_id in (
        EvaluationRun.objects.filter(_claimable(now))
        .order_by("created_at")
        .values_list("pk", flat=True)[:10]
    ):
        taken = (
            EvaluationRun.objects.filter(pk=run_id)
            .filter(_claimable(now))
            .update(
                lease_owner=owner,
                lease_expires_at=now + dt.timedelta(seconds=lease_seconds),
                attempts=F("attempts") + 1,
                started_at=Coalesce("started_at", now),
            )
        )
        if taken:
            EvaluationRun.objects.filter(pk=run_id, status=RunStatus.QUEUED).update(
                status=RunStatus.RUNNING
            )
            return EvaluationRun.objects.get(pk=run_id)
    return None


def lease_renew(run_id: Any, owner: str, lease_seconds: float) -> str | None:
    """Extend the lease; the run's status, or None when this runner no longer holds it."""
    expires = timezone.now() + dt.timedelta(seconds=lease_seconds)
    held = EvaluationRun.objects.filter(
        pk=run_id, lease_owner=owner, status__in=ACTIVE_STATUSES
    ).update(lease_expires_at=expires)
    if not held:
        return None
    return EvaluationRun.objects.filter(pk=run_id).values_list("status", flat=True).first()


def lease_release(run_id: Any, owner: str) -> None:
    """Give the run back (a runner stopping): the next runner takes it over at once."""
    EvaluationRun.objects.filter(pk=run_id, lease_owner=owner, status__in=ACTIVE_STATUSES).update(
        lease_expires_at=timezone.now() - dt.timedelta(seconds=1)
    )


def run_status(run_id: Any) -> str | None:
    """The run's status now (None: deleted)."""
    return EvaluationRun.objects.filter(pk=run_id).values_list("status", flat=True).first()


def run_plan(run: EvaluationRun) -> list[RunTurn]:
    """The run's turns, planned from its source the first time (a resumed run keeps its plan).

    Returns an empty list when there is nothing to replay.
    """
    with transaction.atomic():
        turns = list(run.turns.order_by("position"))
        if turns:
            return turns
        rows = []
        if run.source == RunSource.TEST_SET:
            set_turns = run.test_set.replayed_turns() if run.test_set else []
            rows = [
                RunTurn(run=run, group=0, user_text=turn.text.strip(), test_turn=turn)
                for turn in set_turns
            ]
        else:
            groups = conversation_groups(run.profile_id, run.conversations or 0)
            for number, (conversation, user_turns) in enumerate(groups):
                rows += [
                    RunTurn(
                        run=run, group=number, conversation_id=conversation, user_text=turn.text
                    )
                    for turn in user_turns
                ]
        for position, row in enumerate(rows):
            row.position = position
        RunTurn.objects.bulk_create(rows)
        EvaluationRun.objects.filter(pk=run.pk).update(turns_total=len(rows), turns_done=0)
    return list(run.turns.order_by("position"))


def turn_store(
    run_id: Any, owner: str, position: int, baseline: dict[str, Any], candidate: dict[str, Any]
) -> bool:
    """Store one turn's answers and count it done; False when the lease was lost."""
    with transaction.atomic():
        held = EvaluationRun.objects.filter(
            pk=run_id, lease_owner=owner, status__in=ACTIVE_STATUSES
        ).update(turns_done=F("turns_done") + 1)
        if not held:
            return False
        RunTurn.objects.filter(run_id=run_id, position=position).update(
            baseline=baseline, candidate=candidate
        )
    return True


def run_finish(
    run_id: Any,
    owner: str,
    status: RunStatus,
    *,
    error_code: str = "",
    detail: str = "",
    check_results: list[dict[str, Any]] | None = None,
) -> bool:
    """End the run (done, cancelled or failed) if this runner still holds it."""
    fields: dict[str, Any] = {
        "status": status,
        "error_code": error_code,
        "error_detail": detail[:2000],
        "finished_at": timezone.now(),
        "lease_expires_at": None,
    }
    if check_results is not None:
        fields["check_results"] = check_results
    return bool(
        EvaluationRun.objects.filter(
            pk=run_id, lease_owner=owner, status__in=ACTIVE_STATUSES
        ).update(**fields)
    )


def runs_purge(cutoff: dt.datetime) -> int:
    """Delete the runs built from conversations requested before ``cutoff`` (the retention).

    Their turns go with their conversations anyway; this takes the rest of the report (its
    summary and the run itself). Runs of test sets are kept: their text is staff-written.
    """
    old = EvaluationRun.objects.filter(source=RunSource.CONVERSATIONS, created_at__lt=cutoff)
    old = old.exclude(status__in=ACTIVE_STATUSES)
    count = old.count()
    old.delete()
    return count
