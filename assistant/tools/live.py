"""The service's side of a live session's tool calls (the executor of ``toolcalls.py``).

Runs a call with :func:`assistant.tools.runner.run_tool` (the tool looked up afresh, so a tool
an admin just disabled is refused), in the user's time zone, and carries out the two actions a
built-in can ask for: hand over to another profile the user may use, and end the session.
"""

from __future__ import annotations

import logging
import uuid
import zoneinfo
from typing import Any, Protocol
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from django.conf import settings

from assistant import metrics, protocol, services
from assistant.codes import ClientError, Ending
from assistant.live.control import ControlSubscription
from assistant.models import LiveSession
from assistant.tools.context import ToolContext
from assistant.tools.runner import run_tool
from assistant.tools.specs import ToolSpec, tools_for_profile
from assistant.voicelive.session import VoiceLiveSession
from assistant.voicelive.toolcalls import CallResult, FunctionCall

logger = logging.getLogger(__name__)

MAX_TIME_ZONE_CHARS = 64


class ToolHost(Protocol):
    """The live session the calls run for (the voice consumer)."""

    session_id: uuid.UUID | None
    voice: VoiceLiveSession | None
    control: ControlSubscription | None

    async def send_message(self, message: protocol.ServerMessage) -> None:
        """Send a control message to the browser."""

    async def end(self, ending: Ending) -> None:
        """End the call: tell the browser why, close, let go of everything."""


def requested_time_zone(query_string: bytes) -> str:
    """The browser's IANA time zone (``tz`` query parameter), or the site's when unusable."""
    raw = (parse_qs(query_string.decode("latin-1")).get("tz") or [""])[0]
    if raw and len(raw) <= MAX_TIME_ZONE_CHARS:
        try:
            zoneinfo.ZoneInfo(raw)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            pass
        else:
            return raw
    return str(settings.TIME_ZONE)


class SessionToolExecutor:
    """Runs one live session's tool calls for its user.

    Args:
        host: the session (the consumer).
        user: the logged-in user.
        time_zone: the user's time zone (from the browser).
    """

    def __init__(self, host: ToolHost, *, user: Any, time_zone: str) -> None:
        self._host = host
        self._user = user
        self._time_zone = time_zone

    async def run_call(self, call: FunctionCall, profile_id: int) -> CallResult:
        """Run ``call`` with the profile's tool of that name (none: the model is told)."""
        try:
            spec, context = await database_sync_to_async(self._prepare)(call.name, profile_id)
        except Exception as exc:
            logger.error("tool %s: could not be loaded (%s)", call.name, type(exc).__name__)
            metrics.count_tool_call(call.name, "error")
            return CallResult('{"error": "the tool could not be loaded"}', "error")
        result = await run_tool(spec, call.name, call.arguments, context)
        return CallResult(
            output=result.output,
            outcome=result.outcome,
            end_session=result.end_session,
            handover_profile_id=result.handover_profile_id,
        )

    def _prepare(self, name: str, profile_id: int) -> tuple[ToolSpec | None, ToolContext]:
        spec = next((s for s in tools_for_profile(profile_id) if s.name == name), None)
        choices = services.profile_choices_for_user(user=self._user)
        context = ToolContext(
            user_id=self._user.pk,
            profile_id=profile_id,
            time_zone=self._time_zone,
            handover_profiles={choice.id: choice.name for choice in choices},
        )
        return spec, context

    async def hand_over(self, profile_id: int) -> bool:
        """Switch the live session to ``profile_id`` (same connection, context kept)."""
        voice = self._host.voice
        if voice is None:
            return False
        try:
            config = await services.aprofile_config_get(user=self._user, profile_id=profile_id)
        except ClientError:
            return False  # not (or no longer) one the user may use
        await voice.update_config(config)
        if self._host.session_id is not None:
            await _registry_profile_set(self._host.session_id, config.profile_id)
        if self._host.control is not None:
            await self._host.control.join(services.profile_group(config.profile_id))
        await self._host.send_message(
            protocol.ProfileHandover(profile={"id": config.profile_id, "name": config.profile_name})
        )
        logger.info("voice session %s handed over to profile %s", self._host.session_id, profile_id)
        return True

    async def end_conversation(self) -> None:
        """The assistant said goodbye: tell the page why, then close normally."""
        await self._host.send_message(protocol.SessionEnding(reason=Ending.GOODBYE))
        await self._host.end(Ending.GOODBYE)


@database_sync_to_async
def _registry_profile_set(session_id: uuid.UUID, profile_id: int) -> None:
    """The registry row follows the session's profile (admins see it; the heartbeat uses it)."""
    LiveSession.objects.filter(pk=session_id).update(profile_id=profile_id)
