"""Replay stored user turns against a profile configuration on the configured engine.

One upstream connection per conversation and side: its user turns are sent in order, each
answered before the next, so every turn has the replayed answers (not the recorded ones) as
context. A conversation resumed after a restart gets its stored turns back as context (what
that side heard of the user, and its answer) before the next turn is replayed.

A turn is text, or a recording (a test set's audio turn): a recording is sent as audio, as a
push-to-talk turn (appended, committed, then the reply asked for), so what each side's speech
recognition heard (``heard``) is part of its answer. Replies are asked for in text.

A call is recorded (name, arguments, how it was answered) and answered by the replay's
:data:`ToolAnswer` (``replay_tools.py``): built-in tools run as a dry run, an HTTP tool that
declares an answer for evaluations gets that answer, other tools are never called, and MCP
servers (which Voice Live would call itself) are not offered: tools with side effects never act
(docs/evaluation.md).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from azure.ai.voicelive.models import ServerEventType

from assistant.history.ledger import TokenUsage
from assistant.voicelive.audio_json import audio_append
from assistant.voicelive.config import SessionConfig, UpstreamSettings
from assistant.voicelive.talk_modes import PUSH_TO_TALK
from assistant.voicelive.upstream import (
    close_credential,
    close_quietly,
    function_output_item,
    message_item,
    open_connection,
)

#: What a tool call gets during a replay instead of running.
TOOL_NOT_RUN = json.dumps({"replay": "this tool is not run during a replay; answer without it"})
#: How a call was answered, as the report shows it (``replay_tools.py`` has the others).
NOT_RUN = "not run"
#: (tool name, raw JSON arguments) -> (the function_call_output, how it was answered).
ToolAnswer = Callable[[str, str], Awaitable[tuple[str, str]]]


async def never_run(name: str, raw_arguments: str) -> tuple[str, str]:
    """The answer of every tool when none may run."""
    return TOOL_NOT_RUN, NOT_RUN


#: Tool rounds answered within one turn before the turn is cut (a model calling in a loop).
MAX_TOOL_ROUNDS = 3
_TEXT_DELTAS = {
    ServerEventType.RESPONSE_TEXT_DELTA,
    ServerEventType.RESPONSE_AUDIO_TRANSCRIPT_DELTA,
}
#: A recording goes out in appends of half a second of 24 kHz PCM16 (Voice Live takes up to
#: 15 MiB per append; small enough that no frame nears the socket's limits).
AUDIO_CHUNK_BYTES = 24_000


@dataclass(frozen=True, slots=True)
class UserTurn:
    """One user turn to replay: its text, and its recording when it has one.

    A turn with ``audio`` (24 kHz PCM16 mono) is sent as audio; ``text`` is then its label (what
    the report shows as the user's turn), not sent.
    """

    text: str
    audio: bytes | None = None


class ContextTurn(NamedTuple):
    """A turn already replayed, put back as context when a conversation is resumed."""

    #: What this side heard of the user (a recording's transcript), or the user's text.
    user: str
    answer: str


def _user_turn(turn: UserTurn | str) -> UserTurn:
    return turn if isinstance(turn, UserTurn) else UserTurn(turn)


def replay_session(config: SessionConfig, turns: Sequence[UserTurn]) -> SessionConfig:
    """The session a replay opens: no MCP servers, and turn detection off for recordings.

    MCP servers are called by Voice Live itself, not through this service, so a replay could
    not stop a call with side effects: they are left out of the session (the model answers
    without them). With a recording among the turns, push-to-talk's ``turn_detection: null``:
    the replay commits each recording itself and asks for the reply once, so the service
    neither ends a turn at a pause nor answers by itself.
    """
    tools = tuple(tool for tool in config.tools if tool.definition.get("type") != "mcp")
    if tools != config.tools:
        config = replace(config, tools=tools)
    if any(turn.audio for turn in turns):
        return replace(config, turn_mode=PUSH_TO_TALK)
    return config


def expects_transcript(config: SessionConfig) -> bool:
    """Whether the engine sends a transcript of a recording (its transcription is on)."""
    return bool(config.input_transcription_model)


class ReplayError(Exception):
    """The engine refused or failed a replay (its message says how)."""


@dataclass
class ReplayedAnswer:
    """The assistant's answer to one replayed user turn."""

    text: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    latency_ms: int | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    usage: list[TokenUsage] = field(default_factory=list)
    #: A recorded turn: what the engine's speech recognition heard (None for a text turn).
    heard: str | None = None
    #: A recorded turn whose transcription failed: the engine's message.
    heard_error: str = ""

    def as_json(self) -> dict[str, Any]:
        """The answer as the report's JSON holds it (``heard`` for a recorded turn only)."""
        answer: dict[str, Any] = {
            "text": self.text,
            "tool_calls": self.tool_calls,
            "latency_ms": self.latency_ms,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
        }
        if self.heard is not None:
            answer["heard"] = self.heard
        if self.heard_error:
            answer["heard_error"] = self.heard_error
        return answer


async def replay_conversation(
    *,
    config: SessionConfig,
    upstream: UpstreamSettings,
    user_turns: Sequence[UserTurn | str],
    tools: ToolAnswer = never_run,
    turn_timeout: float = 90.0,
) -> list[ReplayedAnswer]:
    """Replay one conversation's user turns on a fresh connection configured from ``config``.

    Raises:
        ReplayError: the engine sent an error, or a turn got no answer within ``turn_timeout``.
        VoiceLiveUnavailable: the engine could not be reached.
    """
    turns = [_user_turn(turn) for turn in user_turns]
    opened = await open_connection(config=replay_session(config, turns), upstream=upstream)
    try:
        return [
            await replay_turn(
                opened.conn,
                turn,
                tools=tools,
                turn_timeout=turn_timeout,
                transcript_expected=expects_transcript(config),
            )
            for turn in turns
        ]
    finally:
        await close_quietly(opened.conn)
        await close_credential(opened.credential)


#: Called with each replayed turn's (index in its conversation, baseline, candidate) answers.
TurnDone = Callable[[int, ReplayedAnswer, ReplayedAnswer], Awaitable[None]]


async def replay_side_by_side(
    *,
    baseline: SessionConfig,
    candidate: SessionConfig,
    upstream: UpstreamSettings,
    user_turns: Sequence[UserTurn],
    done: Sequence[tuple[ContextTurn, ContextTurn]] = (),
    on_turn: TurnDone,
    tools: tuple[ToolAnswer, ToolAnswer] = (never_run, never_run),
    turn_timeout: float = 90.0,
) -> None:
    """Replay one conversation on a connection per side, turn by turn, baseline first.

    ``user_turns`` are all the conversation's user turns, in order; ``done`` its first turns,
    already replayed (a resumed run), as (baseline, candidate) context: each side gets back
    what it heard and its answer, then the rest is replayed. ``on_turn`` is awaited after each
    turn with both answers (it stores them, and may raise to stop).

    Raises:
        ReplayError, TimeoutError, VoiceLiveUnavailable: as :func:`replay_conversation`.
    """
    opened = []
    try:
        for config in (baseline, candidate):
            session = replay_session(config, user_turns)
            opened.append(await open_connection(config=session, upstream=upstream))
        old, new = opened[0].conn, opened[1].conn
        for contexts in done:
            for conn, context in zip((old, new), contexts, strict=True):
                await conn.send(message_item("user", context.user))
                await conn.send(message_item("assistant", context.answer))
        sides = ((old, tools[0], baseline), (new, tools[1], candidate))
        for index, turn in enumerate(user_turns[len(done) :], start=len(done)):
            before, after = [
                await replay_turn(
                    conn,
                    turn,
                    tools=answer,
                    turn_timeout=turn_timeout,
                    transcript_expected=expects_transcript(config),
                )
                for conn, answer, config in sides
            ]
            await on_turn(index, before, after)
    finally:
        for each in opened:
            await close_quietly(each.conn)
            await close_credential(each.credential)


async def _send_recording(conn: Any, pcm: bytes) -> None:
    """A recording as a push-to-talk turn: appended in chunks, then committed."""
    for offset in range(0, len(pcm), AUDIO_CHUNK_BYTES):
        await conn.send(audio_append(pcm[offset : offset + AUDIO_CHUNK_BYTES]))
    await conn.send({"type": "input_audio_buffer.commit"})


async def replay_turn(
    conn: Any,
    turn: UserTurn | str,
    *,
    turn_timeout: float,
    tools: ToolAnswer = never_run,
    transcript_expected: bool = True,
) -> ReplayedAnswer:
    """Send one user turn, ask for a text reply, and collect it (tool rounds included).

    A recorded turn is sent as audio; its transcript (``heard``) is awaited too when
    ``transcript_expected`` (the session's transcription is on), as it may come after the
    reply. Each tool call is answered by ``tools`` and recorded with how it was answered.

    Raises:
        ReplayError: the engine sent an error.
        TimeoutError: no complete answer (or transcript) within ``turn_timeout``.
    """
    turn = _user_turn(turn)
    answer = ReplayedAnswer()
    parts: list[str] = []
    started = time.monotonic()
    if turn.audio:
        await _send_recording(conn, turn.audio)
    else:
        await conn.send(message_item("user", turn.text))
        started = time.monotonic()
    await conn.send({"type": "response.create", "response": {"modalities": ["text"]}})
    awaiting_transcript = bool(turn.audio) and transcript_expected
    replied = False
    rounds = 0
    pending: list[tuple[str, str, dict[str, Any]]] = []  # call id, raw arguments, record
    async with asyncio.timeout(turn_timeout):
        while not replied or awaiting_transcript:
            event = await conn.recv()
            kind = event.type
            if kind == ServerEventType.CONVERSATION_ITEM_INPUT_AUDIO_TRANSCRIPTION_COMPLETED:
                answer.heard = str(event.get("transcript") or "").strip()
                awaiting_transcript = False
            elif kind == ServerEventType.CONVERSATION_ITEM_INPUT_AUDIO_TRANSCRIPTION_FAILED:
                error = event.get("error") or {}
                answer.heard = ""
                answer.heard_error = str(error.get("message") or "transcription failed")
                awaiting_transcript = False
            elif kind in _TEXT_DELTAS:
                if answer.latency_ms is None:
                    answer.latency_ms = round((time.monotonic() - started) * 1000)
                parts.append(str(event.get("delta") or ""))
            elif kind == ServerEventType.RESPONSE_FUNCTION_CALL_ARGUMENTS_DONE:
                raw = str(event.get("arguments") or "{}")
                call = {"name": str(event.get("name") or ""), "arguments": _arguments(raw)}
                answer.tool_calls.append(call)
                pending.append((str(event.get("call_id") or ""), raw, call))
            elif kind == ServerEventType.ERROR:
                error = event.get("error") or {}
                msg = f"the engine refused the replay: {error.get('code')}: {error.get('message')}"
                raise ReplayError(msg)
            elif kind == ServerEventType.RESPONSE_DONE:
                usage = TokenUsage.from_event((event.get("response") or {}).get("usage"))
                answer.usage.append(usage)
                answer.input_tokens += usage.input_tokens
                answer.output_tokens += usage.output_tokens
                if not pending or rounds >= MAX_TOOL_ROUNDS:
                    replied = True
                    continue
                rounds += 1
                for call_id, raw, call in pending:
                    output, call["answered"] = await tools(call["name"], raw)
                    await conn.send(function_output_item(call_id, output))
                pending.clear()
                await conn.send({"type": "response.create", "response": {"modalities": ["text"]}})
    answer.text = "".join(parts).strip()
    if turn.audio and answer.heard is None:
        answer.heard = ""  # the engine sent no transcript: its transcription is off
        answer.heard_error = "no transcript (the profile's speech recognition is off)"
    return answer


def _arguments(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw  # as the model wrote it: the report shows what it sent
