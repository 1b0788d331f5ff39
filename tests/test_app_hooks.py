"""The hooks the lower layers own, and the apps above that plug into them when ready.

``live.worker`` runs drain hooks (the history app's last write) and ``services`` asks for a
session's tools (the tools app's lookup), so neither imports the apps above it.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.contrib.auth.models import User

from assistant import services
from assistant.history.writer import history
from assistant.live import worker as worker_module
from assistant.models import AssistantProfile
from assistant.tools.models import Tool


async def test_a_drain_awaits_each_hook_once_and_a_failing_one_stops_no_other(
    settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.VOICE_DRAIN_SECONDS = 0.1
    drained = worker_module.Worker()
    ran: list[str] = []

    async def broken() -> None:
        raise ConnectionError("database down")

    async def last_write() -> None:
        ran.append("last write")

    drained.drain_hook_add(broken)
    drained.drain_hook_add(last_write)
    drained.drain_hook_add(last_write)
    with caplog.at_level(logging.WARNING, logger="assistant.live.worker"):
        await drained.drain(stop_server=False)
    assert ran == ["last write"]
    assert "broken failed (ConnectionError)" in caplog.text


def test_the_history_app_gives_the_worker_its_last_write() -> None:
    assert history.close in worker_module.worker._drain_hooks


@pytest.mark.django_db
def test_the_tools_app_gives_sessions_their_profiles_tools(user: User) -> None:
    profile = AssistantProfile.objects.create(name="Support")
    profile.users.add(user)
    Tool.objects.get(name="get_current_time").profiles.add(profile)
    config = services.profile_config_get(user=user, profile_id=profile.pk)
    assert [tool.name for tool in config.tools] == ["get_current_time"]
