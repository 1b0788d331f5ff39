"""Secret headers on real calls: a real HTTP server on 127.0.0.1, tools from the database, the
real executor, runner and HTTP client, and the real live session around them (only the SDK's
connection is faked, to see the ``function_call_output`` the model would read).

- A name the policy does not allow is never sent: the call is "misconfigured", and the log says
  which header, which variable and why.
- A service that echoes the request's headers back (in its answer, its error page, even its
  Content-Type) gets the secret values redacted before anything else sees the result.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from aiohttp import web
from channels.db import database_sync_to_async
from django.contrib.auth.models import User

from assistant import metrics, services
from assistant.models import AssistantProfile
from assistant.tools.http import ERROR_BODY_CHARS
from assistant.tools.live import SessionToolExecutor
from assistant.tools.models import Tool
from assistant.tools.secrets import encrypt_headers
from assistant.voicelive.session import VoiceLiveSession
from assistant.voicelive.toolcall_text import result_summary
from assistant.voicelive.toolcalls import FunctionCall
from tests.fakes import FakeConnect
from tests.support.inprocess import served
from tests.tools.test_live import Host
from tests.voicelive.test_session import UPSTREAM, RecordingSink
from tests.voicelive.test_toolcalls import ask_for, outputs

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "sk-live/7f3a+9Qz=Rr81"
LITERAL = f"Bearer {TOKEN}"  # typed into the admin, stored encrypted
FROM_ENV = "tsk_4e1f9c2b/8a7d+x0"  # the value of env:TOOL_SECRET_ECHO
SERVER_KEY = "django-secret-that-must-stay-home-31f"
#: Every spelling of the secrets a leak could take.
LEAKS = [
    TOKEN,
    FROM_ENV,
    TOKEN[:10],
    FROM_ENV[:10],
    quote(TOKEN, safe=""),
    quote(FROM_ENV, safe=""),
    TOKEN.replace("/", "\\/"),
    SERVER_KEY,
]


@pytest.fixture
async def echo() -> AsyncIterator[dict[str, Any]]:
    """A service that echoes the request's headers back, every way a real one might."""
    seen: dict[str, Any] = {"headers": []}

    def headers_of(request: web.Request) -> dict[str, str]:
        seen["headers"].append(dict(request.headers))
        return dict(request.headers)

    async def answer(request: web.Request) -> web.Response:
        headers = headers_of(request)
        return web.json_response(
            {
                "headers": headers,  # as is, in JSON
                "as_json_text": json.dumps(headers).replace("/", "\\/"),  # escaped twice over
                "as_query": urlencode(headers),  # percent-encoded
                "note": f"you sent {headers.get('Authorization', '').split()[-1]} in plain",
            }
        )

    async def error(request: web.Request) -> web.Response:
        headers = headers_of(request)
        body = f"X-Env-Key: {headers['X-Env-Key']}\n"
        # The token straddles the cut of the error body: half a secret is a leak too.
        body += "x" * (ERROR_BODY_CHARS - len(body) - len("Authorization: Bearer ") - 10)
        body += "\n".join(f"{name}: {value}" for name, value in headers.items())
        return web.Response(status=500, text=body)

    async def content_type(request: web.Request) -> web.Response:
        headers = headers_of(request)
        return web.Response(
            body=b"\x00\x01", headers={"Content-Type": f"image/x-{headers['X-Env-Key']}"}
        )

    app = web.Application()
    app.router.add_get("/answer/{order_id}", answer)
    app.router.add_get("/error/{order_id}", error)
    app.router.add_get("/type/{order_id}", content_type)
    async with served(app) as base:
        seen["base"] = base
        yield seen


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOOL_SECRET_ECHO", FROM_ENV)
    monkeypatch.setenv("DJANGO_SECRET_KEY", SERVER_KEY)
    monkeypatch.setenv("ORDERS_API_KEY", "not-on-the-allow-list-77")


@database_sync_to_async
def user_with_tool(base: str, path: str, secret_headers: dict[str, str]) -> User:
    """A user whose profile has the tool ``echo`` calling ``base + path``."""
    profile = AssistantProfile.objects.create(name="Echo")
    user = User.objects.create_user("echo-user", password="x")
    profile.users.add(user)
    tool = Tool.objects.create(
        name="echo",
        kind=Tool.Kind.HTTP,
        description="Echo.",
        parameters={"type": "object", "properties": {"order_id": {"type": "string"}}},
        url_template=base + path + "/{order_id}",
        allow_private_network=True,  # the test's server is on 127.0.0.1
        secret_headers=encrypt_headers(secret_headers),
    )
    tool.profiles.add(profile)
    return user


def counted(outcome: str) -> float:
    return float(metrics.TOOL_CALLS.labels(tool="echo", outcome=outcome)._value.get())


@pytest.mark.usefixtures("environment")
@pytest.mark.parametrize(
    ("reference", "why"),
    [
        ("DJANGO_SECRET_KEY", "one of the server's own secrets, which tools may never send"),
        ("ORDERS_API_KEY", "which is not allowed (TOOLS_SECRET_ENV_NAMES: TOOL_SECRET_*)"),
    ],
)
async def test_a_name_not_allowed_is_never_sent_and_the_tool_is_misconfigured(
    echo: dict[str, Any], caplog: pytest.LogCaptureFixture, reference: str, why: str
) -> None:
    """A tool stored before the policy (or the setting changed since) sends nothing at all:
    not the variable, and not the request without it."""
    user = await user_with_tool(
        echo["base"], "/answer", {"Authorization": LITERAL, "X-Env-Key": f"env:{reference}"}
    )
    profile_id = (await AssistantProfile.objects.aget(name="Echo")).pk
    executor = SessionToolExecutor(Host(), user=user, time_zone="UTC")
    errors = counted("error")
    with caplog.at_level(logging.INFO):
        result = await executor.run_call(
            FunctionCall("c1", "echo", '{"order_id": "7"}'), profile_id
        )
    assert (result.outcome, json.loads(result.output)) == (
        "error",
        {"error": "the tool is misconfigured"},
    )
    assert echo["headers"] == []  # no request at all
    assert counted("error") == errors + 1  # a bounded label: the reason is in the log
    assert f"secret header X-Env-Key names {reference}, {why}" in caplog.text
    for leak in [SERVER_KEY, "not-on-the-allow-list-77", TOKEN]:
        assert leak not in caplog.text


@pytest.mark.usefixtures("environment")
@pytest.mark.parametrize(("path", "outcome"), [("/answer", "ok"), ("/error", "error")])
async def test_an_echoed_secret_reaches_neither_the_model_nor_the_page(
    echo: dict[str, Any],
    fake_connect: FakeConnect,
    caplog: pytest.LogCaptureFixture,
    path: str,
    outcome: str,
) -> None:
    """The live session's call: the function_call_output the model reads and the tool.finished
    line the page and monitors get (history keeps that line) carry no secret."""
    user = await user_with_tool(
        echo["base"], path, {"Authorization": LITERAL, "X-Env-Key": "env:TOOL_SECRET_ECHO"}
    )
    profile = await AssistantProfile.objects.aget(name="Echo")
    config = await services.aprofile_config_get(user=user, profile_id=profile.pk)
    sink = RecordingSink()
    executor = SessionToolExecutor(Host(), user=user, time_zone="UTC")
    voice = VoiceLiveSession(config=config, upstream=UPSTREAM, sink=sink, tools=executor)
    await voice.start()
    try:
        with caplog.at_level(logging.DEBUG):
            conn = fake_connect.last
            ask_for(conn, "echo", call_id="call_1", response_id="r1", args='{"order_id": "7"}')
            await conn.wait_for("response.create", timeout=10)
    finally:
        await voice.aclose()
    # The service did get the secrets: they were sent, then taken out of its answer.
    assert echo["headers"][-1]["Authorization"] == LITERAL
    assert echo["headers"][-1]["X-Env-Key"] == FROM_ENV
    (output,) = outputs(conn)
    (finished,) = (m for m in sink.messages if m["type"] == "tool.finished")
    assert finished["outcome"] == outcome
    assert "[redacted]" in output["output"]
    seen_outside = [output["output"], json.dumps(sink.messages), caplog.text]
    for text in seen_outside:
        for leak in LEAKS:
            assert leak not in text, (leak, text[:300])
    if outcome == "ok":
        echoed = json.loads(output["output"])
        assert echoed["headers"]["Authorization"] == "[redacted]"  # the whole value
        assert echoed["headers"]["X-Env-Key"] == "[redacted]"
        assert echoed["headers"]["Host"].startswith("127.0.0.1")  # the rest is untouched
        assert echoed["note"] == "you sent [redacted] in plain"  # its token alone
        assert "[redacted]" in finished["summary"]


@pytest.mark.usefixtures("environment")
async def test_a_secret_in_the_answers_content_type_is_redacted_too(
    echo: dict[str, Any],
) -> None:
    user = await user_with_tool(echo["base"], "/type", {"X-Env-Key": "env:TOOL_SECRET_ECHO"})
    profile_id = (await AssistantProfile.objects.aget(name="Echo")).pk
    executor = SessionToolExecutor(Host(), user=user, time_zone="UTC")
    result = await executor.run_call(FunctionCall("c1", "echo", '{"order_id": "7"}'), profile_id)
    assert result.outcome == "error"
    assert json.loads(result.output) == {"error": "unsupported answer (image/x-[redacted])"}
    assert FROM_ENV not in result_summary(result.output)
