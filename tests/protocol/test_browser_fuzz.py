"""Fuzzing the browser protocol: the parser alone, then the consumer over a fake SDK connection.

Every message is judged by an oracle (the pure validators, themselves fuzzed first): invalid
ones must be answered with exactly one ``error`` carrying a stable code, in order; valid ones
must produce exactly their upstream effect, and nothing else may reach the upstream.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings as django_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assistant import metrics, protocol
from assistant.codes import ERROR_MESSAGES, ClientError, ErrorCode
from assistant.voicelive.session import VoiceLiveSession
from tests.fakes import FakeConnect
from tests.support import measurements
from tests.support.consumer import communicator, next_message
from tests.support.logs import ErrorLogCollector

pytestmark = pytest.mark.hardening

FUZZED = measurements.section("fuzzing")


class Examples:
    """How much one fuzz test fed in; its fixture fails the test if Hypothesis ran short."""

    def __init__(self) -> None:
        self.messages = 0
        self.sessions = 0


@pytest.fixture
def examples(request: pytest.FixtureRequest) -> Iterator[Examples]:
    seen = Examples()
    yield seen
    minimum = request.node.get_closest_marker("min_messages").args[0]
    FUZZED[f"{request.node.name}: messages"] = seen.messages
    if seen.sessions:
        FUZZED[f"{request.node.name}: sessions"] = seen.sessions
    assert seen.messages >= minimum, f"only {seen.messages} messages fuzzed"


ERROR_CODES = {code.value for code in ErrorCode}
SERVER_TYPES = {
    "state",
    "session.ready",
    "playback.clear",
    "error",
    "pong",
    "turn_mode",
}
# What the consumer may ever send upstream in reaction to browser input.
UPSTREAM_ALLOWED = {
    "input_audio_buffer.append",
    "conversation.item.truncate",
    "conversation.item.create",
    "response.create",
    "response.cancel",
}

# ----------------------------------------------------------------------------- strategies

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
type_names = st.sampled_from(
    [
        "ping",
        "playback.interrupted",
        "response.cancel",
        "text.send",
        "audio.ack",
        "input.press",
        "input.release",
        "turn_mode.set",
        # Upstream event names a browser must never be able to forward.
        "session.update",
        "input_audio_buffer.append",
        "response.create",
        "conversation.item.create",
        "localvoice.fault",
        "PING",
        "ping ",
        "",
    ]
) | st.text(max_size=20)
near_valid = st.fixed_dictionaries(
    {"type": type_names},
    optional={
        "item_id": st.text(max_size=140) | json_values,
        "played_ms": st.integers(min_value=-(2**70), max_value=2**70)
        | st.floats(allow_nan=True)
        | json_values,
        "text": st.text(min_size=0, max_size=2100) | json_values,
        "bytes": st.integers(min_value=-(2**60), max_value=2**60) | json_values,
        "extra": json_values,
    },
)


def _json_text(value: Any) -> str:
    return json.dumps(value, allow_nan=True)


def _deep(depth: int, kind: str) -> str:
    if kind == "list":
        return "[" * depth + "]" * depth
    return '{"type":"ping","x":' + '{"a":' * depth + "1" + "}" * depth + "}"


text_frames = st.one_of(
    near_valid.map(_json_text),
    json_values.map(_json_text),
    st.text(max_size=300),
    st.tuples(st.integers(min_value=1, max_value=20_000), st.sampled_from(["list", "dict"])).map(
        lambda t: _deep(*t)
    ),
    # Huge integers: beyond Python's int-string limit, and merely out of range.
    st.integers(min_value=1, max_value=6000).map(
        lambda n: '{"type":"playback.interrupted","item_id":"i","played_ms":' + "9" * n + "}"
    ),
    # Oversized control frames.
    st.integers(min_value=16_000, max_value=40_000).map(
        lambda n: '{"type":"ping","pad":"' + "a" * n + '"}'
    ),
    st.just('{"type":"ping"}'),
    st.text(min_size=1, max_size=50).map(
        lambda s: json.dumps({"type": "text.send", "text": "say " + s})
    ),
)
binary_frames = st.one_of(
    st.binary(max_size=4000),
    st.binary(min_size=1, max_size=64).map(lambda b: b * 64),
    st.integers(min_value=32_000, max_value=33_500).map(bytes),
    st.just(b""),
)
frames = st.one_of(
    text_frames.map(lambda t: ("text", t)), binary_frames.map(lambda b: ("bytes", b))
)

# ----------------------------------------------------------------------------- oracles


def _judge_text(text: str) -> tuple[str | None, protocol.BrowserMessage | None]:
    try:
        message = protocol.parse_browser_message(
            text, max_chars=django_settings.VOICE_MAX_CONTROL_BYTES
        )
    except ClientError as exc:
        return exc.code.value, None
    return None, message


def _judge_audio(data: bytes) -> str | None:
    try:
        protocol.validate_audio_frame(data, max_bytes=django_settings.VOICE_MAX_AUDIO_FRAME_BYTES)
    except ClientError as exc:
        return exc.code.value
    return None


def _is_frame_subsequence(stream: bytes, chunks: list[bytes]) -> bool:
    """True when ``stream`` is the concatenation of some of ``chunks``, in order."""
    reachable = {0}
    for chunk in chunks:
        reachable |= {pos + len(chunk) for pos in reachable if stream.startswith(chunk, pos)}
    return len(stream) in reachable


# ----------------------------------------------------------------------------- parser


@pytest.mark.min_messages(4000)
@settings(
    max_examples=4000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.one_of(text_frames, near_valid.map(_json_text)))
def test_parser_raises_only_client_errors_with_stable_codes(text: str, examples: Examples) -> None:
    examples.messages += 1
    try:
        message = protocol.parse_browser_message(text, max_chars=16_384)
    except ClientError as exc:
        code = exc.code
    else:
        code = None
    if code is not None:
        assert code in ErrorCode
        # The reply is fixed text: never an echo of the input.
        assert json.loads(protocol.encode(protocol.error(code)))["message"] == ERROR_MESSAGES[code]
        return
    # Whatever parsed is a well-formed, allowlisted message with in-range fields.
    data = json.loads(text)
    assert data["type"] in protocol.ALLOWED_BROWSER_TYPES
    if isinstance(message, protocol.PlaybackInterrupted):
        assert isinstance(message.item_id, str)
        assert 0 < len(message.item_id) <= 128
        assert isinstance(message.played_ms, int)
        assert 0 <= message.played_ms <= 24 * 3600 * 1000
    elif isinstance(message, protocol.TextSend):
        assert isinstance(message.text, str)
        assert 0 < len(message.text) <= protocol.MAX_TEXT_MESSAGE_CHARS


# ----------------------------------------------------------------------------- consumer


@pytest.fixture
def relaxed_limits(settings: Any) -> None:
    # The fuzzer checks the reply to every message: no rate limit may interfere.
    settings.VOICE_CONTROL_MESSAGES_PER_MINUTE = 10**9
    settings.VOICE_AUDIO_RATE_LIMIT = 10**6
    settings.VOICE_CONNECTIONS_PER_MINUTE_PER_USER = 10**9
    settings.VOICE_CONNECTIONS_PER_MINUTE_PER_IP = 10**9


def _backlog_drops() -> float:
    return metrics.AUDIO_DROPPED.labels(reason="upstream_backlog")._value.get()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("relaxed_limits")
@pytest.mark.min_messages(7000)
@settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batch=st.lists(frames, min_size=40, max_size=90))
async def test_consumer_survives_any_browser_input(
    batch: list[tuple[str, Any]],
    user: Any,
    fake_connect: FakeConnect,
    captured_sessions: list[VoiceLiveSession],
    error_logs: ErrorLogCollector,
    examples: Examples,
) -> None:
    comm = communicator(user)
    try:
        await _fuzz_one_session(comm, batch, fake_connect, captured_sessions, examples)
    finally:
        await comm.disconnect()
    assert not error_logs.records, [r.getMessage() for r in error_logs.records]


async def _fuzz_one_session(
    comm: Any,
    batch: list[tuple[str, Any]],
    fake_connect: FakeConnect,
    captured_sessions: list[VoiceLiveSession],
    examples: Examples,
) -> None:
    connected, _ = await comm.connect()
    assert connected
    await next_message(comm, "session.ready")
    examples.sessions += 1
    conn = fake_connect.last
    session = captured_sessions[-1]
    drops_before = _backlog_drops()

    expected_errors: list[str] = []
    expected_pongs = 0
    valid_audio: list[bytes] = []
    truncates: list[tuple[str, int]] = []
    texts: list[str] = []
    for kind, payload in batch:
        if kind == "bytes":
            code = _judge_audio(payload)
            if code is None:
                valid_audio.append(payload)
            else:
                expected_errors.append(code)
            await comm.send_input({"type": "websocket.receive", "bytes": payload})
            examples.messages += 1
            continue
        code, message = _judge_text(payload)
        if isinstance(message, protocol.SessionStop):
            continue  # it ends the session by design; the sequence goes on without it
        if code is not None:
            expected_errors.append(code)
        elif isinstance(message, protocol.Ping):
            expected_pongs += 1
        elif isinstance(message, protocol.PlaybackInterrupted):
            truncates.append((message.item_id, message.played_ms))
        elif isinstance(message, protocol.TextSend):
            texts.append(message.text)
        elif isinstance(message, protocol.AudioAck):
            # The fake upstream sends no audio, so nothing can be acknowledged: every ack
            # (even a well-formed one) is refused by the consumer.
            expected_errors.append(ErrorCode.BAD_MESSAGE.value)
        elif isinstance(message, protocol.InputPress | protocol.InputRelease):
            # The site default profile talks by voice activity: no push-to-talk there.
            expected_errors.append(ErrorCode.PUSH_TO_TALK_OFF.value)
        elif isinstance(message, protocol.TurnModeSet):
            expected_errors.append(ErrorCode.TURN_MODE_LOCKED.value)
        await comm.send_input({"type": "websocket.receive", "text": payload})
        examples.messages += 1

    # The session still answers a ping after all of it.
    await comm.send_to(text_data='{"type":"ping"}')
    seen_errors: list[str] = []
    pongs = 0
    async with asyncio.timeout(10):
        while pongs < expected_pongs + 1:
            frame = await comm.receive_output(10)
            assert frame["type"] == "websocket.send", f"session closed: {frame}"
            if frame.get("text") is None:
                continue
            message = json.loads(frame["text"])
            assert message["type"] in SERVER_TYPES, message
            if message["type"] == "error":
                assert message["code"] in ERROR_CODES
                assert message["message"] == ERROR_MESSAGES[ErrorCode(message["code"])]
                seen_errors.append(message["code"])
            elif message["type"] == "pong":
                pongs += 1
    assert seen_errors == expected_errors

    # Let the audio sender drain, then check what reached the upstream.
    deadline = time.monotonic() + 3
    while session.microphone.queued_frames and time.monotonic() < deadline:
        await asyncio.sleep(0.005)
    for _ in range(5):
        await asyncio.sleep(0)
    upstream = conn.sent[1:]  # [0] is the session.update of the connect
    assert {event["type"] for event in upstream} <= UPSTREAM_ALLOWED
    assert [
        (e["item_id"], e["audio_end_ms"]) for e in conn.sent_of("conversation.item.truncate")
    ] == truncates
    assert [
        e["item"]["content"][0]["text"] for e in conn.sent_of("conversation.item.create")
    ] == texts
    assert len(conn.sent_of("response.create")) == len(texts)
    appended = conn.appended_audio()
    if _backlog_drops() == drops_before:
        assert appended == b"".join(valid_audio)
    else:
        assert _is_frame_subsequence(appended, valid_audio)
    for event in conn.sent_of("input_audio_buffer.append"):
        assert len(base64.b64decode(event["audio"])) % 2 == 0
