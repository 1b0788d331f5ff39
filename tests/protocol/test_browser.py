"""The browser message schema: pure parsing and encoding."""

from __future__ import annotations

import json

import pytest

from assistant import codes, protocol
from assistant.codes import ClientError, ErrorCode

MAX = 16384


def parse(text: str) -> protocol.BrowserMessage:
    return protocol.parse_browser_message(text, max_chars=MAX)


def test_known_messages_parse_to_typed_values() -> None:
    assert parse('{"type": "ping"}') == protocol.Ping()
    assert parse('{"type": "session.stop"}') == protocol.SessionStop()
    assert parse('{"type": "response.cancel"}') == protocol.ResponseCancel()
    assert parse('{"type": "text.send", "text": " hi "}') == protocol.TextSend(text="hi")
    assert parse('{"type": "audio.ack", "bytes": 96000}') == protocol.AudioAck(received=96000)
    assert parse(
        '{"type": "playback.interrupted", "item_id": "item_1", "played_ms": 1500.7}'
    ) == protocol.PlaybackInterrupted(item_id="item_1", played_ms=1500)
    assert parse(
        '{"type": "tool.approval", "call_id": "call_1", "approved": false}'
    ) == protocol.ToolApproval(call_id="call_1", approved=False)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("", ErrorCode.BAD_JSON),
        ("{", ErrorCode.BAD_JSON),
        ("null", ErrorCode.BAD_MESSAGE),
        ('"ping"', ErrorCode.BAD_MESSAGE),
        ("{}", ErrorCode.BAD_MESSAGE),
        ('{"type": 1}', ErrorCode.BAD_MESSAGE),
        ('{"type": "input_audio_buffer.append", "audio": "AAAA"}', ErrorCode.UNKNOWN_TYPE),
        ('{"type": "text.send", "text": "   "}', ErrorCode.BAD_MESSAGE),
        ('{"type": "audio.ack"}', ErrorCode.BAD_MESSAGE),
        ('{"type": "audio.ack", "bytes": -1}', ErrorCode.BAD_MESSAGE),
        ('{"type": "audio.ack", "bytes": "10"}', ErrorCode.BAD_MESSAGE),
        ('{"type": "audio.ack", "bytes": 9007199254740992}', ErrorCode.BAD_MESSAGE),
        ('{"type": "text.send", "text": "' + "a" * 2001 + '"}', ErrorCode.BAD_MESSAGE),
        (
            '{"type": "playback.interrupted", "item_id": "x", "played_ms": -1}',
            ErrorCode.BAD_MESSAGE,
        ),
        (
            '{"type": "playback.interrupted", "item_id": "x", "played_ms": true}',
            ErrorCode.BAD_MESSAGE,
        ),
        (
            '{"type": "playback.interrupted", "item_id": "x", "played_ms": NaN}',
            ErrorCode.BAD_MESSAGE,
        ),
        ('{"type": "playback.interrupted", "item_id": "", "played_ms": 1}', ErrorCode.BAD_MESSAGE),
        ("[" * 100000 + "]" * 100000, ErrorCode.MESSAGE_TOO_LARGE),
        ('{"type": "tool.approval", "call_id": "c1"}', ErrorCode.BAD_MESSAGE),
        ('{"type": "tool.approval", "call_id": "c1", "approved": 1}', ErrorCode.BAD_MESSAGE),
        ('{"type": "tool.approval", "call_id": "", "approved": true}', ErrorCode.BAD_MESSAGE),
        (
            '{"type": "tool.approval", "call_id": "' + "c" * 129 + '", "approved": true}',
            ErrorCode.BAD_MESSAGE,
        ),
    ],
)
def test_invalid_messages_raise_stable_codes(text: str, code: ErrorCode) -> None:
    with pytest.raises(ClientError) as caught:
        parse(text)
    assert caught.value.code == code


def test_deep_nesting_within_the_size_limit_is_a_clean_error() -> None:
    with pytest.raises(ClientError) as caught:
        protocol.parse_browser_message("[" * 5000 + "]" * 5000, max_chars=20000)
    assert caught.value.code in (ErrorCode.BAD_JSON, ErrorCode.BAD_MESSAGE)


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (b"", ErrorCode.BAD_AUDIO),
        (b"\x00" * 3, ErrorCode.BAD_AUDIO),
        (b"\x00" * 34, ErrorCode.MESSAGE_TOO_LARGE),
    ],
)
def test_audio_frames_are_validated(frame: bytes, code: ErrorCode) -> None:
    with pytest.raises(ClientError) as caught:
        protocol.validate_audio_frame(frame, max_bytes=32)
    assert caught.value.code == code
    protocol.validate_audio_frame(b"\x00" * 32, max_bytes=32)


def test_every_error_code_has_fixed_text() -> None:
    assert set(codes.ERROR_MESSAGES) == set(ErrorCode)
    message = json.loads(protocol.encode(protocol.error(ErrorCode.UPSTREAM_UNAVAILABLE)))
    assert message == {
        "type": "error",
        "code": "upstream_unavailable",
        "message": codes.ERROR_MESSAGES[ErrorCode.UPSTREAM_UNAVAILABLE],
    }


def test_retryable_close_codes_are_the_drain_and_busy_codes() -> None:
    assert {int(code) for code in codes.RETRYABLE_CLOSE_CODES} == {4001, 4503}


def test_nesting_is_refused_the_same_way_wherever_it_is_parsed() -> None:
    """The decoder's own recursion limit depends on the caller's stack; ours does not."""
    nested = '{"type": "ping", "x": ' + "[" * 900 + "]" * 900 + "}"
    with pytest.raises(ClientError) as caught:
        parse(nested)
    assert caught.value.code == ErrorCode.BAD_MESSAGE
    # Brackets inside a string are text, not nesting.
    text = '{"type": "text.send", "text": "' + "[{" * 200 + '"}'
    assert parse(text) == protocol.TextSend(text="[{" * 200)
