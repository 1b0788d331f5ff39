"""The worker's batched quota check: every session's answer, a fixed number of queries.

``quota_statuses`` answers for all the sessions of a worker at once (the checks task,
assistant/calls/checks.py); it must say what ``quota_status`` says for each user alone,
with as many queries for 2 sessions as for 40.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from assistant.history.ledger import (
    Quota,
    effective_quota,
    effective_quotas,
    spent,
    spent_by_user,
)
from assistant.history.models import UsageQuota, UsageRecord
from assistant.history.quotas import QuotaRequest, quota_status, quota_statuses
from assistant.models import LiveSession

pytestmark = pytest.mark.django_db


def people(n: int, *, start: int = 0) -> list[tuple[User, uuid.UUID]]:
    """``n`` users, each with a live session, a quota (own or by group) and some usage."""
    group = Group.objects.get_or_create(name="quota-batch")[0]
    made = []
    for i in range(start, start + n):
        user = User.objects.create_user(f"batch{i}")
        if i % 3 == 0:
            UsageQuota.objects.create(user=user, minutes_per_day=10 + i)
        elif i % 3 == 1:
            user.groups.add(group)
        # i % 3 == 2: no quota of their own; the group's if the group has one (below)
        session = LiveSession.objects.create(
            user=user, worker="w", channel_name=f"c{i}", last_seen=timezone.now()
        )
        LiveSession.objects.filter(pk=session.pk).update(audio_in_seconds=30.0 + i)
        UsageRecord.objects.create(
            user=user, session_id=session.pk, model="m", audio_in_seconds=12.0
        )
        UsageRecord.objects.create(
            user=user, session_id=uuid.uuid4(), model="m", audio_out_seconds=60.0 * (i % 4)
        )
        made.append((user, session.pk))
    UsageQuota.objects.get_or_create(group=group, defaults={"minutes_per_month": 50})
    return made


def test_the_batch_says_what_each_users_own_check_says() -> None:
    crowd = people(9)
    requests = [QuotaRequest(u.pk, sid, 45.0 + n) for n, (u, sid) in enumerate(crowd)]
    # One user without any quota, one gone: both unlimited.
    free = User.objects.create_user("free")
    requests += [QuotaRequest(free.pk, uuid.uuid4(), 999.0), QuotaRequest(10**6, None, 5.0)]
    batch = quota_statuses(requests)
    assert set(batch) == {r.user_id for r in requests}
    for n, (user, sid) in enumerate(crowd):
        alone = quota_status(user_id=user.pk, session_id=sid, own_seconds=45.0 + n)
        assert batch[user.pk] == alone, user.username
    assert batch[free.pk].limit == batch[10**6].limit == ""
    assert any(check.limit == "day" for check in batch.values())
    assert any(check.limit == "month" for check in batch.values())


def test_two_sessions_of_one_user_count_both_exact_counts() -> None:
    user = User.objects.create_user("twice")
    UsageQuota.objects.create(user=user, minutes_per_day=1)
    a, b = uuid.uuid4(), uuid.uuid4()
    check = quota_statuses([QuotaRequest(user.pk, a, 20.0), QuotaRequest(user.pk, b, 25.0)])
    assert check[user.pk].fraction_used == pytest.approx(45.0 / 60.0)


def test_the_number_of_queries_does_not_grow_with_the_sessions() -> None:
    few = people(2)
    many = people(40, start=100)

    def queries(crowd: list[tuple[User, uuid.UUID]]) -> int:
        with CaptureQueriesContext(connection) as captured:
            quota_statuses([QuotaRequest(u.pk, sid, 10.0) for u, sid in crowd])
        return len(captured.captured_queries)

    assert queries(few) == queries(many) == 5
    nobody = [QuotaRequest(User.objects.create_user(f"free{i}").pk) for i in range(5)]
    with CaptureQueriesContext(connection) as captured:
        assert all(not c.limit for c in quota_statuses(nobody).values())
    assert len(captured.captured_queries) == 2  # the quotas, and nothing more for unlimited
    with CaptureQueriesContext(connection) as captured:
        assert quota_statuses([]) == {}
    assert len(captured.captured_queries) == 0


def test_effective_quotas_and_spent_by_user_match_the_single_user_versions() -> None:
    crowd = people(6)
    ids = [u.pk for u, _ in crowd]
    outsider = User.objects.create_user("outsider")
    Group.objects.get(name="quota-batch").user_set.add(outsider)  # not asked about
    quotas = effective_quotas(ids)
    assert outsider.pk not in quotas
    used = spent_by_user(ids)
    for user, _ in crowd:
        assert quotas.get(user.pk, Quota()) == effective_quota(user)
        assert used[user.pk] == spent(user)
    # A second group's quota: the most generous of each limit, as for one user alone.
    member = crowd[1][0]
    rich = Group.objects.create(name="rich")
    UsageQuota.objects.create(group=rich, minutes_per_month=500, cost_per_month=Decimal("5.00"))
    member.groups.add(rich)
    assert effective_quotas([member.pk])[member.pk] == effective_quota(member)
    assert effective_quota(member).minutes_per_month == 500
