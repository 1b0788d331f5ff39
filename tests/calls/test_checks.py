"""The worker's checks task: every session's quota and login, one database job per tick.

The sessions' own timers do no database work any more; what grows with the sessions on a
tick is a few attribute reads each on the loop, and the rows of one batched job in the
database thread (tests/history/test_quota_batch.py, tests/live/test_revalidation_batch.py
count its queries).
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth.models import User
from django.utils import timezone

from assistant.calls import checks
from assistant.calls.checks import Answers, LoginRequest, SessionChecks
from assistant.history import quotas
from assistant.history.ledger import QuotaCheck
from assistant.history.models import UsageQuota
from assistant.history.quotas import QuotaRequest
from assistant.models import AssistantProfile
from tests.fakes import FakeConnect
from tests.sessions import close_code, start

Job = tuple[list[QuotaRequest], list[LoginRequest]]


async def tick(members: list[Member]) -> None:
    """One tick of a checks task these members joined (its own timer cancelled)."""
    task = SessionChecks()
    for member in members:
        task.join(member.session_id, member)
    await task.tick({m.session_id: m for m in members})
    await task.close()


class Member:
    def __init__(self, user_id: int, *, key: str = "k") -> None:
        self.session_id = uuid.uuid4()
        self.user_id = user_id
        self.key = key
        self.answers: list[tuple[QuotaCheck | None, bool | None]] = []

    def quota_request(self) -> QuotaRequest | None:
        return QuotaRequest(self.user_id, self.session_id, 1.0)

    def login_request(self) -> LoginRequest | None:
        return LoginRequest(self.key, self.user_id)

    async def checked(self, quota: QuotaCheck | None, login_valid: bool | None) -> None:
        self.answers.append((quota, login_valid))


async def test_one_database_job_for_all_the_sessions_of_a_tick(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    jobs: list[Job] = []
    warned = QuotaCheck(0.85, "day", None)

    async def run(q: list[QuotaRequest], logins: list[LoginRequest]) -> Answers:
        jobs.append((q, logins))
        return Answers(
            quotas={r.user_id: warned for r in q}, logins={r.session_key for r in logins[1:]}
        )

    monkeypatch.setattr(checks, "achecks_run", run)
    members = [Member(n, key=f"key{n}") for n in range(250)]
    members.append(Member(999, key=""))  # no login session: nothing to look up, gone
    await tick(members)
    assert len(jobs) == 1
    assert len(jobs[0][0]) == 251  # every quota question
    assert len(jobs[0][1]) == 250  # every login that can be looked up
    assert members[0].answers == [(warned, False)]  # its key was not among the valid ones
    assert all(m.answers == [(warned, True)] for m in members[1:250])
    assert members[250].answers == [(warned, False)]


async def test_a_failed_job_ends_nobody_and_answers_nothing(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def run(q: list[QuotaRequest], logins: list[LoginRequest]) -> Answers:
        raise RuntimeError("database is locked")

    monkeypatch.setattr(checks, "achecks_run", run)
    member = Member(1)
    await tick([member])
    assert member.answers == [(None, None)]
    assert "checks of 1 sessions failed" in caplog.text


def test_one_failing_half_spares_the_other(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(requests: object) -> Any:
        raise RuntimeError("no such table")

    monkeypatch.setattr(checks, "quota_statuses", broken)
    monkeypatch.setattr(checks, "logins_still_valid", lambda pairs: {"a"})
    answers = checks.checks_run([QuotaRequest(1)], [LoginRequest("a", 1)])
    assert answers.quotas is None
    assert answers.logins == {"a"}
    assert "quota checks of 1 sessions failed" in caplog.text


@pytest.mark.django_db(transaction=True)
async def test_live_sessions_are_checked_together_not_one_by_one(
    default_profile: AssistantProfile,
    fake_connect: FakeConnect,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Three live sessions with quotas: each tick is one job carrying all three; the sessions'
    own timers ask the database nothing (the handshake's check is the only other one)."""
    settings.VOICE_HEARTBEAT_SECONDS = 0.05
    jobs: list[Job] = []
    handshakes: list[int] = []
    real_run, real_status = checks.achecks_run, quotas.aquota_status

    async def run(q: list[QuotaRequest], logins: list[LoginRequest]) -> Answers:
        jobs.append((q, logins))
        return await real_run(q, logins)

    async def status(**kwargs: Any) -> QuotaCheck:
        handshakes.append(kwargs["user_id"])
        return await real_status(**kwargs)

    monkeypatch.setattr(checks, "achecks_run", run)
    monkeypatch.setattr(quotas, "aquota_status", status)

    @database_sync_to_async
    def users() -> list[User]:
        made = [User.objects.create_user(f"checked{n}") for n in range(3)]
        for user in made:
            UsageQuota.objects.create(user=user, minutes_per_day=60)
        return made

    comms = [await start(user, fake_connect) for user in await users()]
    jobs.clear()
    started = timezone.now()
    await asyncio.sleep(0.6)
    elapsed = (timezone.now() - started).total_seconds()
    assert 0 < len(jobs) <= elapsed / 0.05 + 2  # one job per tick, not one per session
    assert all(len(q) == 3 for q, _ in jobs)
    assert len(handshakes) == 3
    for comm in comms:
        await comm.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_login_without_a_session_ends_at_the_first_revalidation(
    user: User, fake_connect: FakeConnect, settings: Any
) -> None:
    """A socket whose scope has no login session cannot be re-validated: ended (4401)."""
    settings.VOICE_HEARTBEAT_SECONDS = 0.05
    settings.VOICE_REVALIDATE_SECONDS = 0.1
    comm = await start(user, fake_connect)
    assert await close_code(comm) == 4401
