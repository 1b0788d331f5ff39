"""The periodic database checks of all the sessions of one worker, batched: quotas and logins.

Each session used to re-check its user's quota on every heartbeat and its login every
``VOICE_REVALIDATE_SECONDS`` from its own timer: a job and several queries per session in the
worker's one database thread, whose Python (ORM, model instances) holds the GIL while the
event loop waits for it at every socket send (docs/logbook/benchmarks.md, issue 25). So one task per
worker ticks every ``VOICE_HEARTBEAT_SECONDS``, half a period after the registry heartbeat
(assistant/live/beats.py) so the two do not reach the database thread together: on the loop it
asks every session what is due (a few attribute reads each), runs one job in the database
thread with a fixed number of queries for all of them (``quota_statuses``,
``logins_still_valid``), then hands each session its answer on the loop. A database failure
ends nobody's call: the next tick asks again.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, field
from typing import Protocol

from channels.db import database_sync_to_async
from django.conf import settings

from assistant.history.ledger import QuotaCheck
from assistant.history.quotas import QuotaRequest, quota_statuses
from assistant.live.admission import logins_still_valid
from assistant.live.beats import next_tick_delay
from assistant.live.looplag import lag_probe
from assistant.live.periodic import WorkerTask

logger = logging.getLogger(__name__)

#: Where the checks tick within the heartbeat period, from the heartbeat's own tick.
PHASE_SHIFT = 0.5
#: Sessions are asked, and answered, in slices of this many, the loop free in between
#: (well under a millisecond of loop a slice: bench/tick_cost.py).
SLICE = 100


@dataclass(frozen=True, slots=True)
class LoginRequest:
    """A session's login, to re-validate: its login session key and the user it opened for."""

    session_key: str
    user_id: int | None

    @property
    def checkable(self) -> bool:
        """False without a login session or user: nothing to look up, the login is gone."""
        return bool(self.session_key) and self.user_id is not None


class Checked(Protocol):
    """A live session, as the checks see it (the session's supervisor)."""

    def quota_request(self) -> QuotaRequest | None:
        """Its quota question for this tick; None: not due (no I/O, on the loop)."""

    def login_request(self) -> LoginRequest | None:
        """Its login to re-validate on this tick; None: not due."""

    async def checked(self, quota: QuotaCheck | None, login_valid: bool | None) -> None:
        """The answers (None: not asked, or the database failed)."""


@dataclass(slots=True)
class Answers:
    """What one tick's database job found (None: that half failed, logged)."""

    quotas: dict[int, QuotaCheck] | None = field(default_factory=dict)
    logins: set[str] | None = field(default_factory=set)


def checks_run(quotas: list[QuotaRequest], logins: list[LoginRequest]) -> Answers:
    """Both checks of one tick (synchronous ORM: in the database thread).

    A failure of one spares the other.
    """
    answers = Answers()
    if quotas:
        try:
            answers.quotas = quota_statuses(quotas)
        except Exception as exc:
            logger.warning("quota checks of %d sessions failed (%s)", len(quotas), exc)
            answers.quotas = None
    if logins:
        try:
            pairs = [(r.session_key, r.user_id) for r in logins if r.user_id is not None]
            answers.logins = logins_still_valid(pairs)
        except Exception as exc:
            logger.warning("login re-validation of %d sessions failed (%s)", len(logins), exc)
            answers.logins = None
    return answers


achecks_run = database_sync_to_async(checks_run)


class SessionChecks(WorkerTask[Checked]):
    """One checks task per worker (per event loop) for all its sessions."""

    name = "voice-session-checks"

    async def _run(self) -> None:
        while True:
            period = settings.VOICE_HEARTBEAT_SECONDS
            await asyncio.sleep(next_tick_delay(period, shift=PHASE_SHIFT))
            members = self.members()
            if not members:
                return
            await self.tick(members)

    async def tick(self, members: dict[uuid.UUID, Checked]) -> None:
        """Ask every member what is due, check it all in one database job, hand out the answers."""
        asked: dict[uuid.UUID, tuple[QuotaRequest | None, LoginRequest | None]] = {}
        items = list(members.items())
        for start in range(0, len(items), SLICE):
            if start:
                await asyncio.sleep(0)  # let frames through between slices
            with lag_probe.span("checks.collect", min(SLICE, len(items) - start)):
                for sid, member in items[start : start + SLICE]:
                    asked[sid] = (member.quota_request(), member.login_request())
        quotas = [q for q, _ in asked.values() if q is not None]
        logins = [r for _, r in asked.values() if r is not None and r.checkable]
        if quotas or logins:
            try:
                with lag_probe.span("checks.database", len(quotas) + len(logins)):
                    answers = await achecks_run(quotas, logins)
            except Exception as exc:
                # The database thread could not even start the job: nobody's call ends for it.
                logger.warning("checks of %d sessions failed (%s)", len(asked), exc)
                answers = Answers(quotas=None, logins=None)
        else:
            answers = Answers()
        answered = list(asked.items())
        for start in range(0, len(answered), SLICE):
            if start:
                await asyncio.sleep(0)
            with lag_probe.span("checks.apply", min(SLICE, len(answered) - start)):
                for sid, (quota, login) in answered[start : start + SLICE]:
                    member = members[sid]
                    if not self.is_member(sid):
                        continue  # left while the tick was in the database
                    try:
                        await member.checked(*_answers_for(answers, quota, login))
                    except Exception:
                        # One session's failure (its socket gone mid-send) spares the others.
                        logger.warning("voice session %s: checks failed", sid, exc_info=True)


def _answers_for(
    answers: Answers, quota: QuotaRequest | None, login: LoginRequest | None
) -> tuple[QuotaCheck | None, bool | None]:
    """One member's answers out of a tick's (None where not asked or the database failed)."""
    check = None
    if quota is not None and answers.quotas is not None:
        check = answers.quotas.get(quota.user_id)
    valid: bool | None = None
    if login is not None:
        if not login.checkable:
            valid = False  # no login session to hold the socket open with
        elif answers.logins is not None:
            valid = login.session_key in answers.logins
    return check, valid


session_checks = SessionChecks()
