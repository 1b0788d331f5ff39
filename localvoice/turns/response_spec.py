"""What one response should do: the session merged with ``response.create``'s overrides."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from localvoice.protocol.errors import ProtocolError
from localvoice.protocol.events import ErrorCode
from localvoice.protocol.session_config import SessionConfig, validate_modalities
from localvoice.protocol.tools import ToolError, validate_tool_choice, validate_tools
from localvoice.protocol.voices import VoiceChoice, VoiceError, VoiceMap
from localvoice.turns.conversation import Item

MAX_REPLY_TOKENS = 60


@dataclass(slots=True)
class ResponseSpec:
    """What one response should do: the session merged with ``response.create`` overrides."""

    instructions: str
    modalities: list[str]
    voice: VoiceChoice
    voice_value: Any
    output_rate: int
    output_format: str
    temperature: float
    max_tokens: int
    input_audio_ms: int = 0
    pre_generated: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    tools: list[dict[str, Any]] = field(default_factory=list)
    tool_choice: Any = "auto"
    #: On barge-in, cut the assistant item to the audio played (``turn_detection.auto_truncate``).
    auto_truncate: bool = False


def response_spec(
    session: SessionConfig,
    voice_map: VoiceMap,
    params: dict[str, Any] | None,
    additional: str | None,
    *,
    speaks: bool = True,
) -> ResponseSpec:
    """Validate ``response.create``'s ``response`` and merge it over the session.

    Args:
        session: the session's settings.
        voice_map: resolves ``voice``.
        params: the event's ``response`` object (``None``: the session as it is).
        additional: the event's ``additional_instructions``.
        speaks: False when the pipeline cannot speak (``--echo``): the reply is text.

    Returns:
        The response's settings.

    Raises:
        ProtocolError: an invalid field (``response.voice``, ``response.temperature``, ...).
    """
    params = params or {}
    data = session.data
    voice_value = params.get("voice", data.get("voice"))
    try:
        voice = voice_map.resolve(voice_value)
    except VoiceError as exc:
        raise ProtocolError(ErrorCode.INVALID_VOICE, str(exc), "response.voice") from exc
    instructions = params.get("instructions", data.get("instructions") or "")
    if not isinstance(instructions, str):
        msg = "instructions must be a string"
        raise ProtocolError(ErrorCode.INVALID_VALUE, msg, "response.instructions")
    if additional:
        instructions = f"{instructions}\n{additional}".strip()
    modalities = data.get("modalities") or ["text", "audio"]
    if "modalities" in params:
        modalities = validate_modalities(params["modalities"], "response.modalities")
    limit = params.get("max_output_tokens", data.get("max_response_output_tokens"))
    max_tokens = limit if isinstance(limit, int) and limit > 0 else MAX_REPLY_TOKENS
    temperature = params.get("temperature", data.get("temperature", 0.8))
    if not isinstance(temperature, int | float):
        msg = "temperature must be a number"
        raise ProtocolError(ErrorCode.INVALID_VALUE, msg, "response.temperature")
    try:
        tools = validate_tools(params.get("tools", data.get("tools") or []), "response.tools")
        tool_choice = validate_tool_choice(
            params.get("tool_choice", data.get("tool_choice", "auto")), "response.tool_choice"
        )
    except ToolError as exc:
        raise ProtocolError(exc.code, str(exc), exc.param) from exc
    pre = params.get("pre_generated_assistant_message")
    pre_text = Item(pre).text() if isinstance(pre, dict) else None
    if not speaks:
        modalities = ["text"]  # echo mode: replies are text (pre-generated, or empty)
    return ResponseSpec(
        instructions=instructions,
        modalities=modalities,
        voice=voice,
        voice_value=voice_value,
        output_rate=session.output_rate,
        output_format=str(data["output_audio_format"]),
        temperature=float(temperature),
        max_tokens=min(max_tokens, MAX_REPLY_TOKENS),
        pre_generated=pre_text,
        tools=tools,
        tool_choice=tool_choice,
        auto_truncate=bool(session.turn_detection and session.turn_detection.auto_truncate),
    )
