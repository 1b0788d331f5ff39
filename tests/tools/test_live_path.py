"""Tools over the whole path, no fakes: a logged-in client speaking (espeak-ng) to real Daphne,
the consumer, the real ``azure-ai-voicelive`` SDK, and localvoice deciding the calls with its
real models; the service runs the real built-ins against its database."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest

from tests.support.audio import silence, speak
from tests.support.browser import Socket
from tests.support.servers import Browser, DaphneServer, wait_until
from tests.support.talking import model_worker, stream

pytestmark = [pytest.mark.integration, pytest.mark.models]

ACK_BYTES = 96_000
PASSWORD = "tools-pw-123"
# The default profile gets the built-ins the spoken requests below need; "power" may use one
# profile per further case (picked with ?profile=): each offers only the tool it is about.
SETUP = """
import json
from django.contrib.auth.models import User
from assistant.models import AssistantProfile
from assistant.tools.models import KnowledgeBase, KnowledgeDocument, Tool
from assistant.tools.secrets import encrypt_headers
User.objects.create_user("toolie", password=PASSWORD)
power = User.objects.create_user("power", password=PASSWORD)
default = AssistantProfile.objects.get(is_default=True)
for t in Tool.objects.filter(builtin__in=["get_current_time", "end_conversation"]):
    t.profiles.add(default)
ids = {}
def profile(name, instructions="You are a helpful voice assistant. Keep answers short."):
    p = AssistantProfile.objects.create(name=name, instructions=instructions)
    p.users.add(power)
    ids[name] = p.pk
    return p
handbook = profile("Handbook")
Tool.objects.get(builtin="search_knowledge_base").profiles.add(handbook)
base = KnowledgeBase.objects.create(name="Acme handbook")
base.profiles.add(handbook)
KnowledgeDocument.objects.create(knowledge_base=base, title="Refund policy", text=REFUNDS)
guarded = profile("Guarded")
clock = Tool.objects.create(
    name="get_time_guarded", kind="http", description="Get the current time.",
    url_template=SERVICE + "/time", allow_private_network=True, requires_approval=True,
    parameters={"type": "object", "properties": {}},
)
clock.profiles.add(guarded)
for name, path, private, timeout in [
    ("Orders", "/status", True, 5.0),
    ("Slow", "/slow", True, 1.0),
    ("Private", "/status", False, 5.0),
]:
    tool = Tool.objects.create(
        name="check_" + name.lower() + "_service_status", kind="http",
        description="Check the status of the order service.", url_template=SERVICE + path,
        allow_private_network=private, timeout_seconds=timeout,
        parameters={"type": "object", "properties": {}},
        interim_phrase="Let me check the service." if name == "Orders" else "",
        secret_headers=encrypt_headers({"X-Api-Key": SECRET}),
    )
    tool.profiles.add(profile(name))
echo = Tool.objects.create(
    name="check_echo_service_status", kind="http",
    description="Check the status of the order service.", url_template=SERVICE + "/echo",
    allow_private_network=True, parameters={"type": "object", "properties": {}},
    secret_headers=encrypt_headers(
        {"X-Api-Key": SECRET, "Authorization": "env:TOOL_SECRET_ECHO"}
    ),
)
echo.profiles.add(profile("Echo"))
reception = profile("Reception")
Tool.objects.get(builtin="hand_over").profiles.add(reception)
profile("Sales", "You are Sales, a cheerful sales assistant. Keep answers short.")
print(json.dumps(ids))
"""
SECRET = "orders-secret-5f7a9c"
ECHO_ENV_SECRET = "Bearer echo-env-token-8d21b4"  # the worker's TOOL_SECRET_ECHO
REFUNDS = (
    "Customers may return any item within 30 days for a full refund, with the receipt. "
    "Opened software is exchanged, not refunded."
)


class OrderService(BaseHTTPRequestHandler):
    """The service the HTTP tools call: an answer, one that comes too late, or one that echoes
    the request's headers back."""

    api_keys: ClassVar[list[str | None]] = []
    authorizations: ClassVar[list[str | None]] = []

    def do_GET(self) -> None:
        self.api_keys.append(self.headers.get("X-Api-Key"))
        self.authorizations.append(self.headers.get("Authorization"))
        if self.path == "/slow":
            time.sleep(4)
        answer: dict[str, Any] = {"order_service": "up", "time": "10:42"}
        if self.path == "/echo":
            answer = {"you_sent": dict(self.headers.items()), **answer}
        body = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        """Quiet."""


@pytest.fixture(scope="module")
def service() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), OrderService)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        thread.join(5)


@pytest.fixture(scope="module")
def server(
    localvoice_models: str, service: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DaphneServer]:
    logs = tmp_path_factory.mktemp("tools-path")
    setup = (
        f"PASSWORD = {PASSWORD!r}\nSERVICE = {service!r}\nREFUNDS = {REFUNDS!r}\n"
        f"SECRET = {SECRET!r}\n"
    )
    with model_worker(
        "tools",
        logs,
        upstream_url=localvoice_models,
        setup=setup + SETUP,
        # Deciding on a call emits nothing until the model is done: slow on 2 busy cores.
        extra={"VOICE_REPLY_STALL_SECONDS": "60", "TOOL_SECRET_ECHO": ECHO_ENV_SECRET},
    ) as worker:
        daphne = worker.daphne
        daphne.database = worker.database  # type: ignore[attr-defined]
        daphne.profiles = json.loads(worker.setup_output.strip().splitlines()[-1])  # type: ignore[attr-defined]
        daphne.service = service  # type: ignore[attr-defined]
        yield daphne


class Listener:
    """Reads a session's frames, acknowledging the assistant's audio as the page does."""

    def __init__(self, socket: Socket) -> None:
        self.socket = socket
        self.audio = 0
        self.acked = 0

    async def until(self, check: Any, timeout: float = 90.0) -> dict[str, Any]:
        """Read until a message satisfies ``check``; a close or an error fails."""
        try:
            return await self._until(check, timeout)
        except TimeoutError:
            seen = [m["type"] for m in self.socket.texts()][-30:]
            print(f"timed out after {seen}")
            raise

    async def _until(self, check: Any, timeout: float) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.socket.next_frame(timeout)
                if frame.kind == "close":
                    return {"type": "(closed)", "code": frame.code}
                if frame.kind == "binary":
                    self.audio += len(frame.data)
                    if self.audio - self.acked >= ACK_BYTES:  # as the page: every 2 s of audio
                        self.acked = self.audio
                        await self.socket.send_json({"type": "audio.ack", "bytes": self.audio})
                    continue
                if frame.data["type"] == "error":
                    seen = [m["type"] for m in self.socket.texts()][-30:]
                    raise AssertionError(f"error from the server: {frame.data} after {seen}")
                if check(frame.data):
                    return dict(frame.data)


def hours_now() -> set[int]:
    """The UTC hour now and a minute ago (the turn may straddle the hour)."""
    now = dt.datetime.now(dt.UTC)
    return {now.hour, (now - dt.timedelta(minutes=2)).hour}


def says_hour(text: str, hours: set[int]) -> bool:
    """``text`` gives one of the hours as digits ("4:05", "04:05", "16:05", "4 PM")."""
    spoken = {str(h) for h in hours} | {f"{h:02d}" for h in hours}
    spoken |= {str(h % 12 or 12) for h in hours}
    return any(
        re.search(rf"(?<!\d){re.escape(s)}(?=\s*(:|h|o'clock|am|pm|a\.m|p\.m))", text, re.I)
        for s in spoken
    )


async def test_asking_the_time_calls_the_clock_and_the_answer_has_the_hour(
    server: DaphneServer,
) -> None:
    async with Browser(server.base_url) as browser:
        await browser.login("toolie", PASSWORD)
        socket = await browser.websocket(server.ws_url("/ws/voice/?tz=UTC"))
        await socket.expect("session.ready", timeout=20)
        listener = Listener(socket)
        sender = asyncio.create_task(
            stream(socket, silence(300) + speak("What time is it?") + silence(1500))
        )
        started = await listener.until(lambda m: m["type"] == "tool.started")
        assert started["name"] == "get_current_time"
        finished = await listener.until(lambda m: m["type"] == "tool.finished")
        assert finished["outcome"] == "ok", finished
        answer = await listener.until(lambda m: m["type"] == "transcript.assistant.done")
        await sender
        assert says_hour(answer["transcript"], hours_now()), answer
        await socket.send_json({"type": "session.stop"})
        assert await socket.expect_close(timeout=10) == 1000


async def test_goodbye_ends_the_session_after_the_goodbye(server: DaphneServer) -> None:
    async with Browser(server.base_url) as browser:
        await browser.login("toolie", PASSWORD)
        socket = await browser.websocket(server.ws_url("/ws/voice/"))
        await socket.expect("session.ready", timeout=20)
        listener = Listener(socket)
        sender = asyncio.create_task(
            stream(socket, silence(300) + speak("Goodbye, thank you!") + silence(1500))
        )
        started = await listener.until(lambda m: m["type"] == "tool.started")
        assert started["name"] == "end_conversation"
        goodbye = await listener.until(lambda m: m["type"] == "transcript.assistant.done")
        assert goodbye["transcript"].strip()
        ending = await listener.until(lambda m: m["type"] in ("session.ending", "(closed)"), 30)
        assert ending == {"type": "session.ending", "reason": "goodbye"}
        assert listener.audio > 0  # the goodbye was spoken before the end
        await sender
        assert await socket.expect_close(timeout=10) == 1000


async def typed_session(server: DaphneServer, browser: Browser, profile: str) -> Listener:
    """A session of "power" on one of its profiles, ready for typed requests."""
    await browser.login("power", PASSWORD)
    profile_id = server.profiles[profile]  # type: ignore[attr-defined]
    socket = await browser.websocket(server.ws_url(f"/ws/voice/?profile={profile_id}&tz=UTC"))
    ready = await socket.expect("session.ready", timeout=20)
    assert ready["profile"]["name"] == profile
    return Listener(socket)


async def ask(listener: Listener, text: str) -> dict[str, Any]:
    """Type ``text``; returns the tool.started of the call it leads to."""
    await listener.socket.send_json({"type": "text.send", "text": text})
    return await listener.until(lambda m: m["type"] in ("tool.started", "(closed)"))


async def test_a_knowledge_base_question_is_answered_from_the_document(
    server: DaphneServer,
) -> None:
    async with Browser(server.base_url) as browser:
        listener = await typed_session(server, browser, "Handbook")
        started = await ask(listener, "Search the handbook for the refund policy.")
        assert started["name"] == "search_knowledge_base"
        assert "refund policy" in started["arguments"].lower()
        finished = await listener.until(lambda m: m["type"] == "tool.finished")
        assert finished["outcome"] == "ok"
        assert "Refund policy" in finished["summary"]  # the document's title, to cite
        answer = await listener.until(lambda m: m["type"] == "transcript.assistant.done")
        said = answer["transcript"].lower()
        assert re.search(r"\b30\b|thirty|receipt|refund", said), answer


async def test_nothing_runs_until_the_user_approves_then_it_does(server: DaphneServer) -> None:
    async with Browser(server.base_url) as browser:
        listener = await typed_session(server, browser, "Guarded")
        started = await ask(listener, "What is the current time?")
        assert started["name"] == "get_time_guarded"
        request = await listener.until(lambda m: m["type"] == "tool.approval.request")
        assert request["call_id"] == started["call_id"]
        assert request["timeout_s"] == 30
        # Nothing happens while the question is open.
        with pytest.raises(TimeoutError):
            await listener.until(lambda m: m["type"] == "tool.finished", timeout=3)
        await listener.socket.send_json(
            {"type": "tool.approval", "call_id": request["call_id"], "approved": True}
        )
        finished = await listener.until(lambda m: m["type"] == "tool.finished")
        assert finished["outcome"] == "ok"
        assert "10:42" in finished["summary"]  # what the service answered


async def test_a_declined_call_never_reaches_the_service(server: DaphneServer) -> None:
    async with Browser(server.base_url) as browser:
        listener = await typed_session(server, browser, "Guarded")
        await ask(listener, "What is the current time?")
        request = await listener.until(lambda m: m["type"] == "tool.approval.request")
        await listener.socket.send_json(
            {"type": "tool.approval", "call_id": request["call_id"], "approved": False}
        )
        finished = await listener.until(lambda m: m["type"] == "tool.finished")
        assert finished["outcome"] == "declined"
        answer = await listener.until(lambda m: m["type"] == "transcript.assistant.done")
        assert answer["transcript"].strip()  # the model explains, the session goes on


@pytest.mark.parametrize(
    ("profile", "outcome", "summary"),
    [
        ("Orders", "ok", '"order_service": "up"'),
        ("Slow", "timeout", "did not answer in time"),
        ("Private", "refused", "private or reserved address"),
    ],
)
async def test_http_tools_answer_time_out_or_are_refused_and_the_session_goes_on(
    server: DaphneServer, profile: str, outcome: str, summary: str
) -> None:
    async with Browser(server.base_url) as browser:
        listener = await typed_session(server, browser, profile)
        started = await ask(listener, "Check the order service status.")
        assert started["name"] == f"check_{profile.lower()}_service_status"
        finished = await listener.until(lambda m: m["type"] == "tool.finished")
        assert finished["outcome"] == outcome, finished
        assert summary in finished["summary"]
        frames = json.dumps(listener.socket.texts())
        assert server.service not in frames  # the URL stays inside
        assert SECRET not in frames
        replies = 2 if profile == "Orders" else 1  # its interim phrase, then the answer

        def answered(_: dict[str, Any]) -> bool:
            return len(listener.socket.texts("transcript.assistant.done")) >= replies

        if not answered({}):
            await listener.until(answered)
        said = [m["transcript"] for m in listener.socket.texts("transcript.assistant.done")]
        if profile == "Orders":
            assert said[0] == "Let me check the service.", said  # exactly, while it ran
            assert OrderService.api_keys[-1] == SECRET  # the service got the secret header...
        assert SECRET not in server.log_tail(100_000)  # ...which no log holds
        assert said[-1].strip()
        assert said[-1] != "Let me check the service."


async def test_hand_over_switches_the_live_session_to_another_profile(
    server: DaphneServer,
) -> None:
    async with Browser(server.base_url) as browser:
        listener = await typed_session(server, browser, "Reception")
        started = await ask(listener, "Please hand me over to Sales.")
        assert started["name"] == "hand_over"
        finished = await listener.until(lambda m: m["type"] == "tool.finished")
        assert finished["outcome"] == "ok"
        handover = await listener.until(lambda m: m["type"] == "profile.handover")
        assert handover["profile"] == {"id": server.profiles["Sales"], "name": "Sales"}  # type: ignore[attr-defined]
        # The same connection goes on, now as Sales.
        answer = await listener.until(lambda m: m["type"] == "transcript.assistant.done")
        assert answer["transcript"].strip()
        await listener.socket.send_json({"type": "session.stop"})
        assert await listener.socket.expect_close(timeout=10) == 1000


async def test_a_spoken_yes_approves_the_call(server: DaphneServer) -> None:
    async with Browser(server.base_url) as browser:
        listener = await typed_session(server, browser, "Guarded")
        sender = asyncio.create_task(
            stream(
                listener.socket, silence(300) + speak("What is the current time?") + silence(1500)
            )
        )
        started = await listener.until(lambda m: m["type"] in ("tool.started", "(closed)"))
        assert started["name"] == "get_time_guarded"
        await listener.until(lambda m: m["type"] == "tool.approval.request")
        await sender
        answer = asyncio.create_task(stream(listener.socket, speak("Yes.") + silence(1500)))
        finished = await listener.until(lambda m: m["type"] == "tool.finished")
        await answer
        assert finished["outcome"] == "ok"
        assert "10:42" in finished["summary"]
        # The reply the "yes" turn started was dropped; the model answers with the result, and
        # no error reaches the page on the way.
        reply = await listener.until(lambda m: m["type"] == "transcript.assistant.done")
        assert "10:42" in reply["transcript"], reply


async def test_secrets_a_service_echoes_back_reach_no_page_history_or_model(
    server: DaphneServer,
) -> None:
    """The service answers with every header it got, the stored secret and the env: one
    included: the page, the history and what the model says never hold either."""
    async with Browser(server.base_url) as browser:
        listener = await typed_session(server, browser, "Echo")
        session_id = listener.socket.texts("session.ready")[0]["session_id"]
        started = await ask(listener, "Check the order service status.")
        assert started["name"] == "check_echo_service_status"
        finished = await listener.until(lambda m: m["type"] == "tool.finished")
        assert finished["outcome"] == "ok", finished
        assert "[redacted]" in finished["summary"], finished  # the echo, without the values
        await listener.until(lambda m: m["type"] == "transcript.assistant.done")
        await listener.socket.send_json({"type": "session.stop"})
        assert await listener.socket.expect_close(timeout=10) == 1000
    # The service did get both secrets...
    assert OrderService.api_keys[-1] == SECRET
    assert OrderService.authorizations[-1] == ECHO_ENV_SECRET
    # ...and nothing outside holds them: the page (and monitors), the history, the log.
    database = server.database  # type: ignore[attr-defined]
    key = uuid.UUID(session_id).hex if database.kind == "sqlite" else uuid.UUID(session_id)

    def ended() -> bool:
        rows = database.query("SELECT ended_at FROM assistant_conversation WHERE id = %s", (key,))
        return bool(rows) and rows[0][0] is not None

    wait_until(ended, timeout=10, what="the ended conversation written")
    turns = database.query(
        "SELECT role, text FROM assistant_turn WHERE conversation_id = %s ORDER BY seq", (key,)
    )
    tool_turns = [text for role, text in turns if role == "tool"]
    assert tool_turns, turns
    assert "[redacted]" in tool_turns[0]
    outside = [json.dumps(listener.socket.texts()), json.dumps(turns), server.log_tail(100_000)]
    for text in outside:
        for secret in [SECRET, ECHO_ENV_SECRET, ECHO_ENV_SECRET.split()[-1]]:
            assert secret not in text
