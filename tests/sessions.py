"""Fixtures and helpers for tests that open voice sessions through the consumer.

Registered as a plugin in ``tests/conftest.py``: ``default_profile`` and ``user`` are available
to every test; ``close_code`` and ``start`` are imported.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User

from assistant.models import AssistantProfile
from tests.fakes import FakeConnect
from tests.support.consumer import start_session


@pytest.fixture
def default_profile(db: None) -> AssistantProfile:
    # The data migration's default may be there (first test on a fresh database).
    AssistantProfile.objects.filter(is_default=True).exclude(name="Default").update(
        is_default=False
    )
    profile, _ = AssistantProfile.objects.get_or_create(
        name="Default",
        defaults={"instructions": "Be brief.", "is_default": True, "voice": "alloy"},
    )
    return profile


@pytest.fixture
def user(default_profile: AssistantProfile) -> User:
    return User.objects.create_user("alice", password="pw-alice-123")


async def close_code(comm: WebsocketCommunicator, timeout: float = 3.0) -> int:
    async with asyncio.timeout(timeout):
        while True:
            frame = await comm.receive_output(timeout)
            if frame["type"] == "websocket.close":
                return frame.get("code", 1000)


async def start(user: Any, fake: FakeConnect, path: str = "/ws/voice/") -> Any:
    return await start_session(user, path)
