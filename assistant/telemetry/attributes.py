"""Span names and attributes: the OpenTelemetry GenAI conventions, plus ``voice.*`` of our own.

GenAI conventions (status "Development"): span name ``{gen_ai.operation.name} {model or tool}``;
``gen_ai.provider.name``, ``gen_ai.request.model``, ``gen_ai.conversation.id``,
``gen_ai.usage.input_tokens`` / ``output_tokens``, ``gen_ai.tool.name`` / ``call.id`` /
``type``, ``error.type``. The conventions name no provider for Voice Live yet: ours is
``azure.ai.voicelive``, beside their ``azure.ai.openai`` and ``azure.ai.inference``. Nor do they
have a realtime operation: the session is ``realtime`` (the name the voice proposals use), each
turn ``chat``, a tool call ``execute_tool`` (a well-known value).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opentelemetry.util.types import AttributeValue

if TYPE_CHECKING:
    from assistant.telemetry.turns import ToolRecord, TurnRecord


@dataclass(frozen=True, slots=True)
class CallFacts:
    """What a call's session span says about it from the start."""

    session_id: str
    model: str
    profile_id: int | None
    profile_name: str
    worker: str
    user_ref: str


PROVIDER = "azure.ai.voicelive"
OPERATION_SESSION = "realtime"
OPERATION_TURN = "chat"
OPERATION_TOOL = "execute_tool"

# GenAI semantic conventions.
OPERATION_NAME = "gen_ai.operation.name"
PROVIDER_NAME = "gen_ai.provider.name"
REQUEST_MODEL = "gen_ai.request.model"
CONVERSATION_ID = "gen_ai.conversation.id"
RESPONSE_ID = "gen_ai.response.id"
FINISH_REASONS = "gen_ai.response.finish_reasons"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
TOOL_NAME = "gen_ai.tool.name"
TOOL_CALL_ID = "gen_ai.tool.call.id"
TOOL_TYPE = "gen_ai.tool.type"
# General conventions.
ERROR_TYPE = "error.type"
USER_PSEUDO_ID = "enduser.pseudo.id"
# Ours.
PROFILE = "voice.profile"
PROFILE_ID = "voice.profile.id"
WORKER = "voice.worker"
END_REASON = "voice.end_reason"
TURNS = "voice.turns"
TURN_INDEX = "voice.turn.index"
TURN_TRIGGER = "voice.turn.trigger"
RESPONSES = "voice.responses"
INTERRUPTED = "voice.interrupted"
HEARD_MS = "voice.heard_ms"
FIRST_AUDIO_MS = "voice.service_first_audio_ms"
TOOL_CALLS = "voice.tool_calls"
TOOL_CALLS_DROPPED = "voice.tool_calls_dropped"
TOOL_OUTCOME = "voice.tool.outcome"
UPSTREAM_SESSION_ID = "voice.upstream.session_id"

#: What a session event (a span event on the session span) keeps of its message.
_EVENT_FIELDS = {
    "quota.warning": ("percent", "limit"),
    "profile.handover": (),
    "session.ending": ("reason",),
    "error": ("code",),
}


def span_name(operation: str, target: str) -> str:
    """``{operation} {target}`` as the GenAI conventions name spans (no target: the operation)."""
    return f"{operation} {target}" if target else operation


def session_attributes(facts: CallFacts) -> dict[str, AttributeValue]:
    """The session span's attributes."""
    values: dict[str, AttributeValue] = {
        OPERATION_NAME: OPERATION_SESSION,
        PROVIDER_NAME: PROVIDER,
        REQUEST_MODEL: facts.model,
        CONVERSATION_ID: facts.session_id,
        PROFILE: facts.profile_name,
        WORKER: facts.worker,
        USER_PSEUDO_ID: facts.user_ref,
    }
    if facts.profile_id is not None:
        values[PROFILE_ID] = facts.profile_id
    return values


def turn_attributes(turn: TurnRecord, model: str) -> dict[str, AttributeValue]:
    """A turn span's attributes (``TurnRecord.attributes`` are merged in by the caller)."""
    values: dict[str, AttributeValue] = {
        OPERATION_NAME: OPERATION_TURN,
        PROVIDER_NAME: PROVIDER,
        REQUEST_MODEL: model,
        TURN_INDEX: turn.index,
        TURN_TRIGGER: turn.trigger,
        RESPONSES: len(turn.response_ids),
        INTERRUPTED: turn.interrupted,
        TOOL_CALLS: len(turn.tools) + turn.tools_dropped,
    }
    if turn.response_ids:
        values[RESPONSE_ID] = turn.response_ids[-1]
    if turn.statuses:
        values[FINISH_REASONS] = list(turn.statuses)
    if turn.input_tokens is not None:
        values[INPUT_TOKENS] = turn.input_tokens
    if turn.output_tokens is not None:
        values[OUTPUT_TOKENS] = turn.output_tokens
    if turn.heard_ms is not None:
        values[HEARD_MS] = turn.heard_ms
    if turn.first_audio_ns is not None:
        values[FIRST_AUDIO_MS] = max(0, (turn.first_audio_ns - turn.started_ns) // 1_000_000)
    if turn.tools_dropped:
        values[TOOL_CALLS_DROPPED] = turn.tools_dropped
    if turn.statuses and all(status == "failed" for status in turn.statuses):
        values[ERROR_TYPE] = "response_failed"
    return values


def tool_attributes(tool: ToolRecord) -> dict[str, AttributeValue]:
    """A tool span's attributes; ``error.type`` is the outcome when it was not ``ok``."""
    outcome = tool.outcome or "unfinished"
    values: dict[str, AttributeValue] = {
        OPERATION_NAME: OPERATION_TOOL,
        TOOL_NAME: tool.name,
        TOOL_CALL_ID: tool.call_id,
        TOOL_TYPE: "function",
        TOOL_OUTCOME: outcome,
    }
    if outcome != "ok":
        values[ERROR_TYPE] = outcome
    return values


def connection_attributes(upstream_id: str, model: str) -> dict[str, AttributeValue]:
    """An upstream connect or rollover span's attributes."""
    values: dict[str, AttributeValue] = {PROVIDER_NAME: PROVIDER, REQUEST_MODEL: model}
    if upstream_id:
        values[UPSTREAM_SESSION_ID] = upstream_id
    return values


def session_event_attributes(kind: str, message: Any) -> dict[str, AttributeValue]:
    """The few fields of a session event worth keeping (numbers and codes, never text)."""
    values: dict[str, AttributeValue] = {}
    for name in _EVENT_FIELDS.get(kind, ()):
        value = getattr(message, name, None)
        if isinstance(value, str):
            values[f"voice.{name}"] = str(getattr(value, "value", value))  # a StrEnum's value
        elif isinstance(value, int | float):
            values[f"voice.{name}"] = value
    if kind == "profile.handover":
        profile = getattr(message, "profile", None) or {}
        if isinstance(profile, dict) and isinstance(profile.get("name"), str):
            values[PROFILE] = profile["name"]
    return values
