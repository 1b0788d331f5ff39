"""The cross-worker registry of live voice sessions (rows in the database).

A worker claims a row when a session starts, refreshes it on every heartbeat and deletes it
at the end. A row whose heartbeat stopped (a crashed worker) counts as gone after a few
periods: the sessions console hides it, and the user's next claim deletes it.
End requests (terminate, takeover, logout) are written to the row as well as sent over the
channel layer, so they land even when a layer message is lost.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connections, transaction
from django.db.models import Field
from django.utils import timezone

from assistant import protocol
from assistant.codes import Ending
from assistant.live.layer import layer_send_sync
from assistant.models import LiveSession, MonitorAttachment
from assistant.voicelive.config import profile_version

logger = logging.getLogger(__name__)

STALE_AFTER_HEARTBEATS = 3


def worker_name() -> str:
    """This worker's label in the sessions console (``VOICE_WORKER_NAME`` or host:pid)."""
    return settings.VOICE_WORKER_NAME or f"{socket.gethostname()}:{os.getpid()}"


def user_group(user_id: int) -> str:
    """The channel-layer group of every live session of one user."""
    return f"user.{user_id}"


def stale_before() -> datetime:
    """Rows last seen before this moment belong to dead workers."""
    window = settings.VOICE_HEARTBEAT_SECONDS * STALE_AFTER_HEARTBEATS
    return timezone.now() - timedelta(seconds=window)


@dataclass(frozen=True, slots=True)
class Claim:
    """The outcome of claiming a live-session slot for a user."""

    session_id: uuid.UUID | None
    replaced: list[tuple[uuid.UUID, str]] = field(default_factory=list)

    @property
    def refused(self) -> bool:
        """True when the user is at the limit and the policy is to refuse."""
        return self.session_id is None


def session_claim(*, user_id: int, profile_id: int, channel_name: str) -> Claim:
    """Register a new live session, enforcing the per-user limit across workers.

    With the ``takeover`` policy the oldest sessions beyond the limit are marked replaced
    (their workers close them); with ``refuse`` the new session is refused.
    """
    limit = max(1, settings.VOICE_SESSIONS_PER_USER)
    with transaction.atomic():
        # Lock the user row so two workers claiming at once serialise here.
        get_user_model().objects.select_for_update().filter(pk=user_id).first()
        LiveSession.objects.filter(user_id=user_id, last_seen__lt=stale_before()).delete()
        live = list(
            LiveSession.objects.filter(user_id=user_id, end_reason="").order_by("started_at")
        )
        replaced: list[tuple[uuid.UUID, str]] = []
        if len(live) >= limit:
            if settings.VOICE_SESSION_POLICY != "takeover":
                return Claim(session_id=None)
            victims = live[: len(live) - limit + 1]
            LiveSession.objects.filter(pk__in=[v.pk for v in victims]).update(
                end_reason=Ending.REPLACED.value
            )
            replaced = [(v.pk, v.channel_name) for v in victims]
        row = LiveSession.objects.create(
            user_id=user_id,
            profile_id=profile_id,
            worker=worker_name(),
            channel_name=channel_name,
            last_seen=timezone.now(),
        )
    return Claim(session_id=row.pk, replaced=replaced)


asession_claim = database_sync_to_async(session_claim)


@dataclass(frozen=True, slots=True)
class Beat:
    """What one session reports on a heartbeat."""

    session_id: uuid.UUID
    state: str
    audio_in_seconds: float
    audio_out_seconds: float
    #: Typed messages, as quotas count them (assistant/history/usage.py).
    typed_seconds: float = 0.0


# The columns a heartbeat writes, in the order of its UPDATE's parameters.
_BEAT_FIELDS = ("last_seen", "state", "audio_in_seconds", "audio_out_seconds", "typed_seconds")


@dataclass(frozen=True, slots=True)
class Orders:
    """What the registry tells one live session on a heartbeat: the layer's slow path.

    Attributes:
        end_reason: why the session must end (``terminated``, ``replaced``, ``logout``, or
            ``gone`` when its row was swept); empty to go on.
        profile_version: the version of the session's profile as saved now (empty if none).
        monitors: the monitors attached to the session (channel name -> wants audio).
    """

    end_reason: str = ""
    profile_version: str = ""
    monitors: dict[str, bool] = field(default_factory=dict)


def sessions_tick(beats: list[Beat]) -> dict[uuid.UUID, Orders]:
    """One heartbeat of many sessions: write their rows, read what they must act on.

    One SELECT (rows with their profile's version), one ``executemany`` UPDATE, one SELECT of
    the monitor attachments. Raw SQL for the update: one parameterised statement run per row
    in C, where the ORM's ``bulk_update`` would build a CASE expression per field in Python.

    Returns:
        The orders of every session in ``beats``.
    """
    if not beats:
        return {}
    ids = [b.session_id for b in beats]
    found = {
        pk: (reason, profile_version(updated))
        for pk, reason, updated in LiveSession.objects.filter(pk__in=ids).values_list(
            "pk", "end_reason", "profile__updated_at"
        )
    }
    monitors: dict[uuid.UUID, dict[str, bool]] = {}
    for session_id, channel, audio in MonitorAttachment.objects.filter(
        session_id__in=list(found)
    ).values_list("session_id", "channel_name", "audio"):
        monitors.setdefault(session_id, {})[channel] = audio
    orders = {
        b.session_id: Orders(end_reason=Ending.GONE.value)
        for b in beats
        if b.session_id not in found
    }
    orders |= {
        pk: Orders(end_reason=reason, profile_version=version, monitors=monitors.get(pk, {}))
        for pk, (reason, version) in found.items()
    }
    conn = connections[LiveSession.objects.db]
    meta = LiveSession._meta
    fields = [cast("Field[Any, Any]", meta.get_field(name)) for name in (*_BEAT_FIELDS, "id")]
    quote = conn.ops.quote_name
    assignments = ", ".join(f"{quote(str(f.column))} = %s" for f in fields[:-1])
    # Identifiers from the model's own metadata; every value is a query parameter.
    sql = (
        f"UPDATE {quote(meta.db_table)} SET {assignments} "  # noqa: S608
        f"WHERE {quote(str(fields[-1].column))} = %s"
    )
    last_seen = fields[0].get_db_prep_value(timezone.now(), conn)
    rows = [
        (
            last_seen,
            b.state,
            b.audio_in_seconds,
            b.audio_out_seconds,
            b.typed_seconds,
            fields[-1].get_db_prep_value(b.session_id, conn),
        )
        for b in beats
        if b.session_id in found
    ]
    # One transaction: in autocommit every row would be its own commit (an fsync each on SQLite:
    # 230 ms for 300 sessions, against about 3 ms like this).
    with transaction.atomic(using=conn.alias), conn.cursor() as cursor:
        cursor.executemany(sql, rows)
    return orders


asessions_tick = database_sync_to_async(sessions_tick)


def monitor_attach(*, session_id: uuid.UUID, channel_name: str, audio: bool) -> bool:
    """Record a monitor of a live session (the slow path of ``monitor.attach``).

    Returns:
        False when the session no longer exists.
    """
    if not LiveSession.objects.filter(pk=session_id).exists():
        return False
    MonitorAttachment.objects.update_or_create(
        channel_name=channel_name, defaults={"session_id": session_id, "audio": audio}
    )
    return True


amonitor_attach = database_sync_to_async(monitor_attach)


def monitor_detach(*, channel_name: str) -> None:
    """Forget a monitor (its socket closed)."""
    MonitorAttachment.objects.filter(channel_name=channel_name).delete()


amonitor_detach = database_sync_to_async(monitor_detach)


def session_release(*, session_id: uuid.UUID) -> None:
    """Remove a finished session's row."""
    LiveSession.objects.filter(pk=session_id).delete()


asession_release = database_sync_to_async(session_release)


def session_end_request(*, session_id: uuid.UUID, reason: Ending) -> bool:
    """Ask the worker holding a session to end it (terminate from the admin).

    Returns:
        False when the session no longer exists.
    """
    row = LiveSession.objects.filter(pk=session_id).first()
    if row is None:
        return False
    LiveSession.objects.filter(pk=session_id).update(end_reason=reason)
    layer_send_sync(row.channel_name, protocol.session_end(reason))
    return True


def user_sessions_end(*, user_id: int, reason: Ending) -> int:
    """End every live session of a user (logout); returns how many were marked."""
    count = LiveSession.objects.filter(user_id=user_id).update(end_reason=reason)
    layer_send_sync(user_group(user_id), protocol.session_end(reason), group=True)
    return count
