"""Quotas of live sessions: refused at the handshake, warned at 80 %, ended at 100 %.

What a user has spent is the ledger's written usage plus what their live sessions used and
the writer has not written yet: this session's own usage (its exact count) and their other
live sessions' (from the registry rows, refreshed on every heartbeat of whichever worker holds
them). So a session on another worker counts here within one heartbeat, and two sessions of
one user cannot both run on past the quota for longer than that. With the default of one live
session per user (``VOICE_SESSIONS_PER_USER``) a second session replaces or is refused by the
first anyway: the claim serialises on the user's row.

Minutes are counted as assistant/history/usage.py defines them: audio both ways plus typed
text. A live session's usage reaches the ledger on every flush of the history writer (its
accrued row), so a session whose worker died counts there, all but its last flush interval,
once its registry row has gone stale.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
import uuid
from collections.abc import Iterable
from typing import NamedTuple, Protocol

from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.db.models import FloatField, Sum
from django.utils import timezone

from assistant import protocol
from assistant.codes import ERROR_MESSAGES, Ending, ErrorCode, State
from assistant.history.ledger import (
    NOTHING_SPENT,
    QUOTA_SECONDS,
    Quota,
    QuotaCheck,
    effective_quota,
    effective_quotas,
    quota_check,
    spent,
    spent_by_user,
)
from assistant.history.live import SessionHistory
from assistant.history.models import UsageRecord
from assistant.history.usage import Usage
from assistant.live.registry import stale_before
from assistant.models import LiveSession
from assistant.voicelive.session import VoiceLiveSession

logger = logging.getLogger(__name__)

#: A user without any quota is checked again this often (a quota set meanwhile applies then).
UNLIMITED_RECHECK_SECONDS = 60.0
#: A session over quota waits at most this long for its running reply before it ends.
MAX_REPLY_WAIT_SECONDS = 30.0
# How often the end waits' re-checks whether the reply is over.
_REPLY_POLL_SECONDS = 0.2
# Nothing is limited.
_UNLIMITED = QuotaCheck(0.0, "", None)
#: Browser messages that start a turn (and so a reply): refused once the quota is used up.
NEW_TURN_MESSAGES = (protocol.TextSend, protocol.InputRelease)


def _limited_user(user_id: int) -> tuple[AbstractBaseUser, Quota] | None:
    """The user and their effective quota; None if the user is gone or has no limit."""
    user = get_user_model().objects.filter(pk=user_id).first()
    if user is None:
        return None
    quota = effective_quota(user)
    return None if quota.unlimited else (user, quota)


class QuotaRequest(NamedTuple):
    """One session's (or one handshake's) question to :func:`quota_statuses`."""

    user_id: int
    #: The session asking, whose ``own_seconds`` replace its registry row's (None: a handshake).
    session_id: uuid.UUID | None = None
    #: What that session has used so far (``Usage.quota_seconds``).
    own_seconds: float = 0.0


def quota_statuses(requests: Iterable[QuotaRequest]) -> dict[int, QuotaCheck]:
    """Where each asking user stands now, live sessions included (synchronous ORM: off the loop).

    The worker's batched check: five queries whatever the number of sessions (two when no
    one asking has a quota) — the users' effective quotas, then for the limited ones their
    written usage this day and month grouped by user, their live registry rows, and what the
    ledger already has of those sessions. A user's live usage not written yet is the sum over
    their live sessions of what each used beyond its written part: the asking sessions' own
    exact counts, the others' from their registry rows (refreshed by their workers' heartbeats).

    Returns:
        One check per user asked about (every session of a user gets the same answer).
    """
    requests = list(requests)
    own: dict[int, dict[uuid.UUID, float]] = {}
    for request in requests:
        asking = own.setdefault(request.user_id, {})
        if request.session_id is not None:
            asking[request.session_id] = request.own_seconds
    checks = dict.fromkeys(own, _UNLIMITED)
    quotas = {pk: q for pk, q in effective_quotas(own).items() if not q.unlimited}
    if not quotas:
        return checks
    live: dict[int, dict[uuid.UUID, float]] = {pk: {} for pk in quotas}
    for pk, user_id, audio_in, audio_out, typed in LiveSession.objects.filter(
        user_id__in=list(quotas), last_seen__gte=stale_before()
    ).values_list("pk", "user_id", "audio_in_seconds", "audio_out_seconds", "typed_seconds"):
        live[user_id][pk] = Usage(audio_in, audio_out, typed).quota_seconds
    for user_id in quotas:
        live[user_id] |= own[user_id]
    # Everything of those sessions the ledger has: their responses and accrued rows.
    session_ids = [sid for sessions in live.values() for sid in sessions]
    written = dict(
        UsageRecord.objects.filter(session_id__in=session_ids, is_draft=False)
        .order_by()
        .values("session_id")
        .annotate(seconds=Sum(QUOTA_SECONDS, output_field=FloatField()))
        .values_list("session_id", "seconds")
    )
    used = spent_by_user(quotas)
    for user_id, quota in quotas.items():
        unwritten = sum(
            max(0.0, seconds - (written.get(sid) or 0.0)) for sid, seconds in live[user_id].items()
        )
        spent_so_far = used.get(user_id, NOTHING_SPENT)
        checks[user_id] = quota_check(quota, spent_so_far, extra_minutes=unwritten / 60.0)
    return checks


aquota_statuses = database_sync_to_async(quota_statuses)


def quota_status(
    *, user_id: int, session_id: uuid.UUID | None = None, own_seconds: float = 0.0
) -> QuotaCheck:
    """Where ``user_id`` stands now, live sessions included (synchronous ORM: off the loop).

    Args:
        user_id: the user.
        session_id: the session asking, whose ``own_seconds`` replace its registry row's.
        own_seconds: what that session has used so far (``Usage.quota_seconds``).
    """
    return quota_statuses([QuotaRequest(user_id, session_id, own_seconds)])[user_id]


aquota_status = database_sync_to_async(quota_status)


def resets_at_text(check: QuotaCheck) -> str | None:
    """When the binding limit resets, as ISO 8601 in the site's time zone."""
    if check.resets_at is None:
        return None
    return timezone.localtime(check.resets_at).isoformat(timespec="seconds")


def quota_error(check: QuotaCheck) -> protocol.QuotaError:
    """``quota_exceeded`` with when it resets."""
    code = ErrorCode.QUOTA_EXCEEDED
    return protocol.QuotaError(
        code=code, message=ERROR_MESSAGES[code], resets_at=resets_at_text(check)
    )


async def handshake_refusal(user_id: int) -> protocol.QuotaError | None:
    """The error to refuse a new session with, or None when the user may talk.

    A database failure lets the session start: the heartbeat checks again.
    """
    try:
        check = await aquota_status(user_id=user_id)
    except Exception as exc:
        logger.warning("quota check at the handshake failed (%s); admitted", type(exc).__name__)
        return None
    return quota_error(check) if check.exceeded else None


class QuotaSession(Protocol):
    """The live session a :class:`LiveQuota` watches (the voice consumer)."""

    voice: VoiceLiveSession | None
    ended: bool

    async def send_message(self, message: protocol.ServerMessage) -> None:
        """Send a control message to the browser."""

    async def end(self, ending: Ending, *, error: protocol.Error | None = None) -> None:
        """End the call: tell the browser why (``error``: more precisely), and close."""


class LiveQuota:
    """Re-checks one live session's user against their quota, with the worker's batched check.

    Args:
        session: the live session.
        history: its history (how much of the latest reply is still playing).
        user_id: its user.
        session_id: its registry id (the conversation's id).
    """

    def __init__(
        self,
        session: QuotaSession,
        *,
        history: SessionHistory | None,
        user_id: int,
        session_id: uuid.UUID,
    ) -> None:
        self._session = session
        self._history = history
        self._user_id = user_id
        self._session_id = session_id
        self.warned = False
        #: Ends the session once the running reply is over (held; the consumer cancels it).
        self.ending: asyncio.Task[None] | None = None
        self._used_up: QuotaCheck | None = None  # the check that started the ending
        self._unlimited_until = 0.0  # monotonic: no quota applied at the last check

    def request(self) -> QuotaRequest | None:
        """This session's question for the worker's next batched check; None: not due.

        On the loop, no I/O: the worker's check task (assistant/calls/checks.py) asks
        every session, runs one :func:`quota_statuses` for all of them in the database
        thread and hands each its answer (:meth:`apply`).
        """
        session = self._session
        if self.ending is not None or session.ended:
            return None
        if self._history is not None:
            self._history.sync()  # the rollover's upstream id and the audio so far, no I/O
        if time.monotonic() < self._unlimited_until:
            return None  # no quota a moment ago: spare the database a row per session per beat
        own = Usage.of(session.voice).quota_seconds
        return QuotaRequest(self._user_id, self._session_id, own)

    async def apply(self, check: QuotaCheck) -> None:
        """The answer to :meth:`request`: warn once at 80 %, end after the reply at 100 %."""
        session = self._session
        if self.ending is not None or session.ended:
            return
        if not check.limit:
            self._unlimited_until = time.monotonic() + UNLIMITED_RECHECK_SECONDS
        elif check.exceeded:
            logger.info(
                "voice session %s: %s quota used up (%.0f %%); ending after the reply",
                self._session_id,
                check.limit,
                check.fraction_used * 100,
            )
            self._used_up = check
            self.ending = asyncio.create_task(self._end_after_reply(check))
        elif check.warn and not self.warned:
            self.warned = True
            await session.send_message(
                protocol.QuotaWarning(
                    percent=min(99, int(check.fraction_used * 100)),
                    limit=check.limit,
                    resets_at=resets_at_text(check),
                )
            )

    def refusal(self, message: protocol.BrowserMessage) -> protocol.QuotaError | None:
        """The answer to a new turn while the session ends over quota; None: let it through.

        The session only winds down then: a typed message or a push-to-talk turn would buy
        a reply past the quota.
        """
        if self._used_up is None or not isinstance(message, NEW_TURN_MESSAGES):
            return None
        return quota_error(self._used_up)

    async def _end_after_reply(self, check: QuotaCheck) -> None:
        """End the session once no reply is being prepared, spoken or played (bounded)."""
        session = self._session
        loop = asyncio.get_running_loop()
        deadline = loop.time() + MAX_REPLY_WAIT_SECONDS
        while not session.ended and loop.time() < deadline:
            voice = session.voice
            # A reply asked for (the user finished a turn) or running.
            if voice is None or not (voice.reply_running or voice.state == State.PROCESSING):
                break
            await asyncio.sleep(_REPLY_POLL_SECONDS)
        # Then the browser plays what it was sent of it (measured once: audio that keeps
        # coming outside a reply is not waited for).
        playing = self._history.playout_remaining() if self._history else 0.0
        if playing > 0.0 and not session.ended:
            await asyncio.sleep(min(playing, max(0.0, deadline - loop.time())))
        waited = MAX_REPLY_WAIT_SECONDS - (deadline - loop.time())
        logger.info("voice session %s: ending (over quota) after %.1f s", self._session_id, waited)
        await session.end(Ending.QUOTA_EXCEEDED, error=quota_error(check))


def quota_left(user_id: int, now: dt.datetime | None = None) -> dict[str, object] | None:
    """What the talk page shows: what is left this period per limit; None when unlimited."""
    limited = _limited_user(user_id)
    if limited is None:
        return None
    user, quota = limited
    used = spent(user, now)
    left: dict[str, object] = {}
    if quota.minutes_per_day is not None:
        left["minutes_today"] = max(0.0, quota.minutes_per_day - used.minutes_today)
    if quota.minutes_per_month is not None:
        left["minutes_this_month"] = max(0.0, quota.minutes_per_month - used.minutes_this_month)
    if quota.cost_per_month is not None:
        left["cost_this_month"] = max(0, quota.cost_per_month - used.cost_this_month)
    return left
