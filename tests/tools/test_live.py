"""The service's side of live tool calls: a profile's tools in its session configuration, tool
changes reaching live sessions, and the executor (real runner, real ORM, real built-ins)."""

from __future__ import annotations

import datetime as dt
import json
import zoneinfo
from typing import Any

import pytest
from django.contrib.auth.models import User

from assistant import protocol, services
from assistant.codes import ENDINGS, CloseCode, Ending
from assistant.models import AssistantProfile
from assistant.tools.live import SessionToolExecutor, requested_time_zone
from assistant.tools.models import Tool
from assistant.voicelive.session_request import session_request_build
from assistant.voicelive.toolcalls import FunctionCall

pytestmark = pytest.mark.django_db


def builtin(name: str, **kwargs: Any) -> Tool:
    tool, _ = Tool.objects.update_or_create(
        name=name, defaults={"kind": Tool.Kind.BUILTIN, "builtin": name, **kwargs}
    )
    return tool


def http_tool(**kwargs: Any) -> Tool:
    return Tool.objects.create(
        name="orders",
        kind=Tool.Kind.HTTP,
        description="Look up an order.",
        url_template="https://api.example.com/orders/{order_id}",
        parameters={"type": "object", "properties": {"order_id": {"type": "string"}}},
        **kwargs,
    )


@pytest.fixture
def profile() -> AssistantProfile:
    return AssistantProfile.objects.create(name="Helper")


@pytest.fixture
def user(profile: AssistantProfile) -> User:
    user = User.objects.create_user("tooluser", password="x")
    profile.users.add(user)
    return user


def test_the_session_configuration_lists_the_profiles_enabled_tools(
    profile: AssistantProfile, user: User
) -> None:
    builtin("get_current_time", interim_phrase="One moment.").profiles.add(profile)
    http_tool(requires_approval=True, timeout_seconds=2.0).profiles.add(profile)
    builtin("end_conversation", is_enabled=False).profiles.add(profile)
    config = services.profile_config_get(user=user, profile_id=profile.pk)
    assert [t.name for t in config.tools] == ["get_current_time", "orders"]
    clock, orders = config.tools
    assert clock.interim_phrase == "One moment."
    assert orders.requires_approval
    assert orders.timeout_seconds == 2.0
    session = session_request_build(config)
    assert session["tool_choice"] == "auto"
    assert session["tools"][1] == {
        "type": "function",
        "name": "orders",
        "description": "Look up an order.",
        "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}},
    }
    # What the upstream sees never carries the HTTP details.
    assert "api.example.com" not in json.dumps(session)


def test_a_profile_without_tools_offers_none(profile: AssistantProfile, user: User) -> None:
    session = session_request_build(services.profile_config_get(user=user, profile_id=profile.pk))
    assert session["tools"] == []
    assert session["tool_choice"] == "none"


def test_tool_changes_mark_the_profile_changed_and_notify_its_sessions(
    profile: AssistantProfile,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    notified: list[int] = []
    monkeypatch.setattr(
        "assistant.services.profile_changed_notify",
        lambda *, profile_id: notified.append(profile_id),
    )

    def version() -> str:
        profile.refresh_from_db()
        return services.profile_version(profile.updated_at)

    steps = []
    tool = builtin("get_current_time")
    tool.profiles.clear()  # the default profile has the clock from the migrations: only ours here
    before = version()
    with django_capture_on_commit_callbacks(execute=True):
        tool.profiles.add(profile)  # given to the profile
    steps.append(version())
    with django_capture_on_commit_callbacks(execute=True):
        tool.interim_phrase = "Hold on."
        tool.save()  # edited
    steps.append(version())
    with django_capture_on_commit_callbacks(execute=True):
        profile.tools.remove(tool)  # taken away, from the profile's side
    steps.append(version())
    tool.profiles.add(profile)
    with django_capture_on_commit_callbacks(execute=True):
        tool.delete()
    steps.append(version())
    assert len(set([before, *steps])) == 5  # each change is a new version (the slow path)
    assert notified == [profile.pk] * 4  # and a notice (the fast path)


def test_the_time_zone_comes_from_the_browser_when_it_is_a_real_one(settings: Any) -> None:
    settings.TIME_ZONE = "UTC"
    assert requested_time_zone(b"profile=1&tz=Europe%2FParis") == "Europe/Paris"
    assert requested_time_zone(b"tz=Mars%2FOlympus") == "UTC"
    assert requested_time_zone(b"tz=" + b"A" * 100) == "UTC"
    assert requested_time_zone(b"") == "UTC"


class Host:
    """The consumer, as the executor sees it."""

    def __init__(self) -> None:
        self.session_id = None
        self.voice: Any = None
        self.control = None
        self.messages: list[protocol.ServerMessage] = []
        self.ended: list[Ending] = []

    async def send_message(self, message: protocol.ServerMessage) -> None:
        self.messages.append(message)

    async def end(self, ending: Ending) -> None:
        self.ended.append(ending)


@pytest.mark.django_db(transaction=True)
async def test_the_executor_runs_the_profiles_tool_in_the_users_time_zone() -> None:
    profile = await AssistantProfile.objects.acreate(name="Clock")
    tool = await Tool.objects.aupdate_or_create(
        name="get_current_time", defaults={"kind": Tool.Kind.BUILTIN, "builtin": "get_current_time"}
    )
    await tool[0].profiles.aadd(profile)
    user = await User.objects.acreate_user("clockuser")
    executor = SessionToolExecutor(Host(), user=user, time_zone="Asia/Tokyo")
    result = await executor.run_call(FunctionCall("c1", "get_current_time", "{}"), profile.pk)
    answer = json.loads(result.output)
    assert result.outcome == "ok"
    assert answer["time_zone"] == "Asia/Tokyo"
    now = dt.datetime.now(zoneinfo.ZoneInfo("Asia/Tokyo"))
    assert answer["time"][:2] in {
        now.strftime("%H"),
        (now - dt.timedelta(minutes=1)).strftime("%H"),
    }
    # A tool the profile does not have is refused, not run.
    missing = await executor.run_call(
        FunctionCall("c2", "hand_over", '{"profile": "x"}'), profile.pk
    )
    assert missing.outcome == "unknown_tool"


async def test_ending_the_conversation_says_why_then_closes_normally() -> None:
    host = Host()
    await SessionToolExecutor(host, user=None, time_zone="UTC").end_conversation()
    assert host.messages == [protocol.SessionEnding(reason="goodbye")]
    assert host.ended == [Ending.GOODBYE]
    assert ENDINGS[Ending.GOODBYE] == (None, CloseCode.NORMAL)  # no error: a normal close
