"""Traces over the whole path: a spoken conversation that calls a tool, exported over OTLP/HTTP;
and a rollover of the upstream connection, as a span of its own.

A logged-in client speaks (espeak-ng) to real Daphne, the consumer, the real azure-ai-voicelive
SDK and localvoice with its real models, which calls the built-in clock. Daphne exports with the
standard OTLP/HTTP exporter to a real receiver started here, which decodes the protobuf; the
test asserts the span tree, the GenAI attributes, and the trace id in the worker's JSON logs.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.audio import silence, speak
from tests.support.browser import Socket
from tests.support.localvoice import LocalVoiceProcess
from tests.support.otlp import OtlpReceiver, ReceivedSpan, otlp_receiver
from tests.support.servers import Browser, DaphneServer
from tests.support.talking import model_worker, stream

pytestmark = [pytest.mark.integration]

PASSWORD = "traces-pw-123"
WORKER = "traced"
SETUP = f"""
from django.contrib.auth.models import User
from assistant.models import AssistantProfile
from assistant.tools.models import Tool
User.objects.create_user("tracy", password={PASSWORD!r})
default = AssistantProfile.objects.get(is_default=True)
Tool.objects.get(builtin="get_current_time").profiles.add(default)
"""
ACK_BYTES = 96_000
SERVER_KIND = 2  # SPAN_KIND_SERVER in the OTLP protobuf
ERROR_STATUS = 2  # STATUS_CODE_ERROR


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    with otlp_receiver() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def server(
    localvoice_models: str, receiver: OtlpReceiver, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DaphneServer]:
    logs = tmp_path_factory.mktemp("otlp-path")
    with model_worker(
        WORKER,
        logs,
        upstream_url=localvoice_models,
        setup=SETUP,
        extra={
            "VOICE_REPLY_STALL_SECONDS": "60",
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "200",  # export every 0.2 s, not 5 s: a shorter test
            "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=test",
            "VOICE_LOG_FORMAT": "json",
        },
    ) as worker:
        yield worker.daphne


async def converse(socket: Socket) -> tuple[dict, dict]:
    """Ask the time aloud; returns (tool.started, the answer's transcript.assistant.done)."""
    sender = asyncio.create_task(
        stream(socket, silence(300) + speak("What time is it?") + silence(1500))
    )
    audio = acked = 0
    started: dict = {}
    async with asyncio.timeout(120):
        while True:
            frame = await socket.next_frame(120)
            assert frame.kind != "close", socket.texts("error")
            if frame.kind == "binary":
                audio += len(frame.data)
                if audio - acked >= ACK_BYTES:  # as the page does
                    acked = audio
                    await socket.send_json({"type": "audio.ack", "bytes": audio})
                continue
            message = frame.data
            assert message["type"] != "error", message
            if message["type"] == "tool.started":
                started = message
            elif message["type"] == "transcript.assistant.done" and started:
                await sender
                return started, message


def json_log_records(path: Path) -> list[dict]:
    records = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
    return records


def children(spans: list[ReceivedSpan], parent: ReceivedSpan) -> list[ReceivedSpan]:
    return [s for s in spans if s.parent_span_id == parent.span_id]


@pytest.mark.models
async def test_a_spoken_conversation_with_a_tool_call_exports_its_span_tree(
    server: DaphneServer, receiver: OtlpReceiver
) -> None:
    async with Browser(server.base_url) as browser:
        await browser.login("tracy", PASSWORD)
        socket = await browser.websocket(server.ws_url("/ws/voice/?tz=UTC"))
        ready = await socket.expect("session.ready", timeout=20)
        session_id = ready["session_id"]
        tool_started, answer = await converse(socket)
        assert tool_started["name"] == "get_current_time"
        assert answer["transcript"].strip()
        await socket.send_json({"type": "session.stop"})
        assert await socket.expect_close(timeout=10) == 1000

    def session_ended(spans: list[ReceivedSpan]) -> bool:
        return any(
            s.attributes.get("gen_ai.conversation.id") == session_id and not s.parent_span_id
            for s in spans
        )

    spans = await asyncio.to_thread(receiver.wait_for, session_ended, 30)
    [root] = [
        s
        for s in spans
        if s.attributes.get("gen_ai.conversation.id") == session_id and not s.parent_span_id
    ]
    tree = [s for s in spans if s.trace_id == root.trace_id]

    # The session: the root, a server span named as the GenAI conventions say.
    model = root.attributes["gen_ai.request.model"]
    assert model
    assert root.name == f"realtime {model}"
    assert root.kind == SERVER_KIND
    assert root.attributes["gen_ai.operation.name"] == "realtime"
    assert root.attributes["gen_ai.provider.name"] == "azure.ai.voicelive"
    assert root.attributes["voice.worker"] == WORKER
    assert root.attributes["voice.profile"]
    assert root.attributes["voice.end_reason"] == "stopped"
    assert len(root.attributes["enduser.pseudo.id"]) == 16
    assert "tracy" not in json.dumps(root.attributes)  # a pseudonym, never the username
    assert root.status_code != ERROR_STATUS
    assert root.resource["service.name"] == "voice-assistant"
    assert root.resource["service.instance.id"] == WORKER
    assert root.resource["deployment.environment"] == "test"
    assert root.scope == "assistant.telemetry"

    # Its children: the upstream connection and the turns.
    under_root = children(tree, root)
    [connect] = [s for s in under_root if s.name == "voice.upstream.connect"]
    assert connect.attributes["voice.upstream.session_id"]
    assert root.start_ns <= connect.start_ns <= connect.end_ns <= root.end_ns
    turns = [s for s in under_root if s.name == f"chat {model}"]
    assert turns, [s.name for s in under_root]
    assert root.attributes["voice.turns"] == len(turns)
    for turn in turns:
        assert turn.attributes["gen_ai.operation.name"] == "chat"
        assert turn.attributes["gen_ai.provider.name"] == "azure.ai.voicelive"
        assert root.start_ns <= turn.start_ns <= turn.end_ns <= root.end_ns

    # The tool call, under the turn the user's question opened.
    [tool] = [s for s in tree if s.name == "execute_tool get_current_time"]
    [asked] = [t for t in turns if t.span_id == tool.parent_span_id]
    assert asked.attributes["voice.turn.trigger"] == "speech"
    assert asked.attributes["voice.tool_calls"] == 1
    assert asked.attributes["voice.responses"] >= 2  # the call, then the spoken answer
    assert "audio.start" in asked.events
    assert "response.done" in asked.events
    assert asked.attributes["voice.service_first_audio_ms"] >= 0
    # The turn's timing record (assistant/voicelive/turn_timing.py) joined its span: the turn
    # latency from the end of speech, with its parts.
    assert 0 < asked.attributes["voice.turn_latency_ms"] < 30_000
    assert asked.attributes["voice.eot_ms"] >= 0
    assert asked.attributes["voice.tool_ms"] > 0
    assert asked.attributes["gen_ai.response.finish_reasons"]
    assert tool.attributes["gen_ai.operation.name"] == "execute_tool"
    assert tool.attributes["gen_ai.tool.name"] == "get_current_time"
    assert tool.attributes["gen_ai.tool.call.id"] == tool_started["call_id"]
    assert tool.attributes["voice.tool.outcome"] == "ok"
    assert asked.start_ns <= tool.start_ns <= tool.end_ns <= asked.end_ns

    # The worker's JSON log lines of this call carry its trace id and session id.
    records = json_log_records(server.log_path)
    mine = [r for r in records if r.get("session_id") == session_id]
    assert mine, server.log_tail()
    assert all(r.get("trace_id") == root.trace_id for r in mine), mine
    assert any("started" in r["message"] for r in mine)
    assert all(r.get("user") == root.attributes["enduser.pseudo.id"] for r in mine)


@pytest.fixture(scope="module")
def localvoice_short() -> Iterator[LocalVoiceProcess]:
    """The echo engine, ending each upstream session after 2 s as the service does at its limit."""
    server = LocalVoiceProcess("--echo", "--max-session-seconds", "2").start(timeout=60)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def rolling_server(
    localvoice_short: LocalVoiceProcess,
    receiver: OtlpReceiver,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[DaphneServer]:
    logs = tmp_path_factory.mktemp("otlp-rollover")
    with model_worker(
        "rolling",
        logs,
        upstream_url=localvoice_short.endpoint,
        setup=f"from django.contrib.auth.models import User\n"
        f"User.objects.create_user('rolly', password={PASSWORD!r})\n",
        extra={
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "200",
        },
    ) as worker:
        yield worker.daphne


async def test_a_rollover_is_a_span_under_the_session_with_the_new_upstream_id(
    rolling_server: DaphneServer, receiver: OtlpReceiver
) -> None:
    async with Browser(rolling_server.base_url) as browser:
        await browser.login("rolly", PASSWORD)
        socket = await browser.websocket(rolling_server.ws_url("/ws/voice/"))
        ready = await socket.expect("session.ready", timeout=20)
        # Across the engine's 2 s limit: the relay rolls over to a fresh connection.
        await stream(socket, silence(4500))
        await socket.send_json({"type": "session.stop"})
        assert await socket.expect_close(timeout=10) == 1000
        assert socket.texts("error") == []

    def ended(spans: list[ReceivedSpan]) -> bool:
        return any(s.attributes.get("gen_ai.conversation.id") == ready["session_id"] for s in spans)

    spans = await asyncio.to_thread(receiver.wait_for, ended, 30)
    [root] = [s for s in spans if s.attributes.get("gen_ai.conversation.id") == ready["session_id"]]
    under_root = [s for s in spans if s.parent_span_id == root.span_id]
    [connect] = [s for s in under_root if s.name == "voice.upstream.connect"]
    rollovers = [s for s in under_root if s.name == "voice.upstream.rollover"]
    assert rollovers, [s.name for s in under_root]
    upstream_ids = [connect.attributes["voice.upstream.session_id"]] + [
        s.attributes["voice.upstream.session_id"] for s in rollovers
    ]
    assert len(set(upstream_ids)) == len(upstream_ids)  # a fresh upstream session each time
    assert root.attributes["voice.end_reason"] == "stopped"
    for rollover in rollovers:
        assert rollover.status_code != ERROR_STATUS
        assert rollover.trace_id == root.trace_id
        assert connect.end_ns <= rollover.start_ns <= rollover.end_ns <= root.end_ns


async def test_a_stopping_worker_exports_what_it_still_holds(
    localvoice_echo: str, receiver: OtlpReceiver, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Spans queued for a minute are out before the worker exits on SIGTERM (the drain's flush)."""
    logs = tmp_path_factory.mktemp("otlp-exit")
    with model_worker(
        "exiting",
        logs,
        upstream_url=localvoice_echo,
        setup=f"from django.contrib.auth.models import User\n"
        f"User.objects.create_user('quitter', password={PASSWORD!r})\n",
        extra={
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "60000",  # nothing leaves on the timer during the test
            "VOICE_DRAIN_SECONDS": "2",
        },
    ) as worker:
        daphne = worker.daphne
        async with Browser(daphne.base_url) as browser:
            await browser.login("quitter", PASSWORD)
            socket = await browser.websocket(daphne.ws_url("/ws/voice/"))
            ready = await socket.expect("session.ready", timeout=20)
            await stream(socket, silence(500))
            await socket.send_json({"type": "session.stop"})
            assert await socket.expect_close(timeout=10) == 1000
        await asyncio.sleep(1.0)
        mine = [
            s
            for s in receiver.snapshot()
            if s.attributes.get("gen_ai.conversation.id") == ready["session_id"]
        ]
        assert mine == []  # still queued in the worker
        daphne.sigterm()
        assert await asyncio.to_thread(daphne.wait_exit, 15) == 0

    spans = receiver.snapshot()
    [root] = [s for s in spans if s.attributes.get("gen_ai.conversation.id") == ready["session_id"]]
    assert any(s.parent_span_id == root.span_id for s in spans)  # its connect span too
