"""Server event builders and error codes of the Voice Live wire protocol.

Every builder returns a plain dict ready for ``json.dumps``. Field names follow the
``azure-ai-voicelive`` 1.3.1 models so the SDK parses them into typed events.
"""

from __future__ import annotations

import secrets
from enum import StrEnum
from typing import Any

Event = dict[str, Any]


class ErrorCode(StrEnum):
    """Stable error codes sent in ``error`` events."""

    INVALID_JSON = "invalid_json"
    INVALID_EVENT = "invalid_event"
    UNKNOWN_EVENT_TYPE = "unknown_event_type"
    MISSING_PARAMETER = "missing_required_parameter"
    INVALID_VALUE = "invalid_value"
    INVALID_VOICE = "invalid_voice"
    INVALID_AUDIO = "invalid_audio"
    AUDIO_TOO_LARGE = "input_audio_buffer_append_too_large"
    COMMIT_EMPTY = "input_audio_buffer_commit_empty"
    RESPONSE_ACTIVE = "conversation_already_has_active_response"
    CANCEL_NOT_ACTIVE = "response_cancel_not_active"
    ITEM_NOT_FOUND = "item_not_found"
    TRUNCATE_INVALID = "item_truncate_invalid"
    UNSUPPORTED = "unsupported"
    SESSION_EXPIRED = "session_expired"
    SERVER_ERROR = "server_error"


def new_id(prefix: str) -> str:
    """A random id in the service's ``<prefix>_<hex>`` shape."""
    return f"{prefix}_{secrets.token_hex(10)}"


def _event(kind: str, **fields: Any) -> Event:
    return {"type": kind, "event_id": new_id("event"), **fields}


def error(
    code: ErrorCode | str,
    message: str,
    *,
    param: str | None = None,
    event_id: str | None = None,
    error_type: str = "invalid_request_error",
) -> Event:
    """An ``error`` event.

    Args:
        code: machine-readable code (see :class:`ErrorCode`).
        message: human-readable text.
        param: the offending field, when there is one.
        event_id: the ``event_id`` of the client event that caused it.
        error_type: ``invalid_request_error`` or ``server_error``.

    Returns:
        The event dict.
    """
    return _event(
        "error",
        error={
            "type": error_type,
            "code": str(code),
            "message": message,
            "param": param,
            "event_id": event_id,
        },
    )


def session_created(session: dict[str, Any]) -> Event:
    """``session.created`` with the full effective session."""
    return _event("session.created", session=session)


def session_updated(session: dict[str, Any]) -> Event:
    """``session.updated`` with the full effective session."""
    return _event("session.updated", session=session)


def speech_started(audio_start_ms: int, item_id: str) -> Event:
    """``input_audio_buffer.speech_started``."""
    return _event(
        "input_audio_buffer.speech_started", audio_start_ms=audio_start_ms, item_id=item_id
    )


def speech_stopped(audio_end_ms: int, item_id: str) -> Event:
    """``input_audio_buffer.speech_stopped``."""
    return _event("input_audio_buffer.speech_stopped", audio_end_ms=audio_end_ms, item_id=item_id)


def buffer_committed(item_id: str, previous_item_id: str | None) -> Event:
    """``input_audio_buffer.committed``."""
    return _event(
        "input_audio_buffer.committed", item_id=item_id, previous_item_id=previous_item_id
    )


def buffer_cleared() -> Event:
    """``input_audio_buffer.cleared``."""
    return _event("input_audio_buffer.cleared")


def item_created(item: dict[str, Any], previous_item_id: str | None) -> Event:
    """``conversation.item.created``."""
    return _event("conversation.item.created", item=item, previous_item_id=previous_item_id)


def item_retrieved(item: dict[str, Any]) -> Event:
    """``conversation.item.retrieved``."""
    return _event("conversation.item.retrieved", item=item)


def item_deleted(item_id: str) -> Event:
    """``conversation.item.deleted``."""
    return _event("conversation.item.deleted", item_id=item_id)


def item_truncated(item_id: str, content_index: int, audio_end_ms: int) -> Event:
    """``conversation.item.truncated``."""
    return _event(
        "conversation.item.truncated",
        item_id=item_id,
        content_index=content_index,
        audio_end_ms=audio_end_ms,
    )


def transcription_delta(item_id: str, delta: str) -> Event:
    """``conversation.item.input_audio_transcription.delta``."""
    return _event(
        "conversation.item.input_audio_transcription.delta",
        item_id=item_id,
        content_index=0,
        delta=delta,
    )


def transcription_completed(item_id: str, transcript: str) -> Event:
    """``conversation.item.input_audio_transcription.completed``."""
    return _event(
        "conversation.item.input_audio_transcription.completed",
        item_id=item_id,
        content_index=0,
        transcript=transcript,
    )


def transcription_failed(item_id: str, message: str) -> Event:
    """``conversation.item.input_audio_transcription.failed``."""
    return _event(
        "conversation.item.input_audio_transcription.failed",
        item_id=item_id,
        content_index=0,
        error={"type": "server_error", "code": "transcription_failed", "message": message},
    )


def response_created(response: dict[str, Any]) -> Event:
    """``response.created``."""
    return _event("response.created", response=response)


def response_done(response: dict[str, Any]) -> Event:
    """``response.done``."""
    return _event("response.done", response=response)


def output_item_added(response_id: str, item: dict[str, Any]) -> Event:
    """``response.output_item.added``."""
    return _event("response.output_item.added", response_id=response_id, output_index=0, item=item)


def output_item_done(response_id: str, item: dict[str, Any]) -> Event:
    """``response.output_item.done``."""
    return _event("response.output_item.done", response_id=response_id, output_index=0, item=item)


def _part_ids(response_id: str, item_id: str) -> dict[str, Any]:
    return {"response_id": response_id, "item_id": item_id, "output_index": 0, "content_index": 0}


def content_part_added(response_id: str, item_id: str, part: dict[str, Any]) -> Event:
    """``response.content_part.added``."""
    return _event("response.content_part.added", part=part, **_part_ids(response_id, item_id))


def content_part_done(response_id: str, item_id: str, part: dict[str, Any]) -> Event:
    """``response.content_part.done``."""
    return _event("response.content_part.done", part=part, **_part_ids(response_id, item_id))


def audio_delta(response_id: str, item_id: str, b64: str) -> Event:
    """``response.audio.delta``; ``b64`` is base64 PCM16."""
    return _event("response.audio.delta", delta=b64, **_part_ids(response_id, item_id))


def audio_done(response_id: str, item_id: str) -> Event:
    """``response.audio.done``."""
    return _event("response.audio.done", **_part_ids(response_id, item_id))


def audio_transcript_delta(response_id: str, item_id: str, delta: str) -> Event:
    """``response.audio_transcript.delta``."""
    return _event("response.audio_transcript.delta", delta=delta, **_part_ids(response_id, item_id))


def audio_transcript_done(response_id: str, item_id: str, transcript: str) -> Event:
    """``response.audio_transcript.done``."""
    return _event(
        "response.audio_transcript.done", transcript=transcript, **_part_ids(response_id, item_id)
    )


def text_delta(response_id: str, item_id: str, delta: str) -> Event:
    """``response.text.delta``."""
    return _event("response.text.delta", delta=delta, **_part_ids(response_id, item_id))


def text_done(response_id: str, item_id: str, text: str) -> Event:
    """``response.text.done``."""
    return _event("response.text.done", text=text, **_part_ids(response_id, item_id))


def function_call_arguments_delta(
    response_id: str, item_id: str, call_id: str, delta: str
) -> Event:
    """``response.function_call_arguments.delta`` (a fragment of the arguments' JSON)."""
    return _event(
        "response.function_call_arguments.delta",
        response_id=response_id,
        item_id=item_id,
        output_index=0,
        call_id=call_id,
        delta=delta,
    )


def function_call_arguments_done(
    response_id: str, item_id: str, call_id: str, name: str, arguments: str
) -> Event:
    """``response.function_call_arguments.done`` with the whole arguments JSON."""
    return _event(
        "response.function_call_arguments.done",
        response_id=response_id,
        item_id=item_id,
        output_index=0,
        call_id=call_id,
        name=name,
        arguments=arguments,
    )


def usage(
    *,
    input_text_tokens: int,
    input_audio_tokens: int,
    output_text_tokens: int,
    output_audio_tokens: int,
    cached_tokens: int = 0,
) -> dict[str, Any]:
    """A ``usage`` object for ``response.done``; audio token counts are estimates."""
    input_tokens = input_text_tokens + input_audio_tokens
    output_tokens = output_text_tokens + output_audio_tokens
    return {
        "total_tokens": input_tokens + output_tokens,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "input_token_details": {
            "cached_tokens": cached_tokens,
            "text_tokens": input_text_tokens,
            "audio_tokens": input_audio_tokens,
            "image_tokens": 0,
            "cached_tokens_details": {
                "text_tokens": cached_tokens,
                "audio_tokens": 0,
                "image_tokens": 0,
            },
        },
        "output_token_details": {
            "text_tokens": output_text_tokens,
            "audio_tokens": output_audio_tokens,
        },
    }
