"""A call's place in the logs and traces: its log context, its trace (with tracing on).

Bound once, when the call has its session id and before it creates any task, so the call's
tasks inherit both the log context and the session span (context variables).
"""

from __future__ import annotations

import functools
import uuid

from django.conf import settings
from django.utils.crypto import salted_hmac

from assistant.codes import Ending, ErrorCode
from assistant.live.registry import worker_name
from assistant.live.worker import worker
from assistant.telemetry.attributes import CallFacts
from assistant.telemetry.call_trace import CallTrace, call_trace_start
from assistant.telemetry.logs import log_context_bind, user_pseudonym
from assistant.telemetry.tracing import tracer, tracing_flush
from assistant.voicelive.config import SessionConfig

#: Endings that are failures on a trace (status ERROR, ``error.type``): the rest are the user's,
#: the staff's or the service's choice (stop, goodbye, idle, quota, takeover, drain, ...).
FAILED_ENDINGS = frozenset(
    {
        Ending.UPSTREAM_LOST,
        Ending.INTERNAL,
        Ending.CLIENT_TOO_SLOW,
        Ending.PROTOCOL_VIOLATION,
        Ending.CONNECTION_LOST,
    }
)


@functools.cache
def _pseudonym_key(secret_key: str) -> bytes:
    """The key of users' pseudonyms, derived from ``SECRET_KEY`` for this purpose alone."""
    return salted_hmac("assistant.telemetry.user-pseudonym", "key", secret=secret_key).digest()


def user_ref(user_id: object) -> str:
    """The pseudonym logs and traces name a user by (never the username or the email)."""
    return user_pseudonym(user_id, _pseudonym_key(settings.SECRET_KEY))


def call_tracing_start(
    session_id: uuid.UUID, user_id: object, config: SessionConfig
) -> CallTrace | None:
    """Bind the call's log context; start its trace if tracing is on (and make it current)."""
    ref = user_ref(user_id)
    log_context_bind(str(session_id), ref)
    call_trace = call_trace_start(
        tracer(),
        CallFacts(
            session_id=str(session_id),
            model=config.model,
            profile_id=config.profile_id,
            profile_name=config.profile_name,
            worker=worker_name(),
            user_ref=ref,
        ),
    )
    if call_trace is not None:
        call_trace.attach()
        # A draining worker pushes the queued spans out before it stops (registered once).
        worker.drain_hook_add(tracing_flush)
    return call_trace


def failure(ending: Ending, code: ErrorCode | None) -> str | None:
    """The error a trace records for ``ending`` (its code, or its name), or None if clean."""
    if ending not in FAILED_ENDINGS:
        return None
    return code.value if code is not None else ending.value
