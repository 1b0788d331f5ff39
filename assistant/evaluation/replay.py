"""Replay stored user turns against a profile configuration, in text, on the configured engine.

One upstream connection per conversation and side: its user turns are sent in order, each
answered before the next, so every turn has the replayed answers (not the recorded ones) as
context. A conversation resumed after a restart gets its stored turns back as context (the
user's text and that side's answer) before the next turn is replayed.
A call is recorded (name, arguments, how it was answered) and answered by the replay's
:data:`~assistant.evaluation.replay_tools.ToolAnswer`: built-in tools run as a dry run, other
tools never (``replay_tools.py``), so tools with side effects never act.
No dry-run is offered to tools: the rule is the same for every tool (docs/evaluation.md).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from azure.ai.voicelive.models import ServerEventType

from assistant.history.ledger import TokenUsage
from assistant.voicelive.config import SessionConfig, UpstreamSettings
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

    def as_json(self) -> dict[str, Any]:
        """The answer as the report's JSON holds it."""
        return {
            "text": self.text,
            "tool_calls": self.tool_calls,
            "latency_ms": self.latency_ms,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
        }


async def replay_conversation(
    *,
    config: SessionConfig,
    upstream: UpstreamSettings,
    user_turns: list[str],
    tools: ToolAnswer = never_run,
    turn_timeout: float = 90.0,
) -> list[ReplayedAnswer]:
    """Replay one conversation's user turns on a fresh connection configured from ``config``.

    Raises:
        ReplayError: the engine sent an error, or a turn got no answer within ``turn_timeout``.
        VoiceLiveUnavailable: the engine could not be reached.
    """
    opened = await open_connection(config=config, upstream=upstream)
    try:
        return [
            await replay_turn(opened.conn, text, tools=tools, turn_timeout=turn_timeout)
            for text in user_turns
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
    user_turns: Sequence[str],
    done: Sequence[tuple[str, str]] = (),
    on_turn: TurnDone,
    tools: tuple[ToolAnswer, ToolAnswer] = (never_run, never_run),
    turn_timeout: float = 90.0,
) -> None:
    """Replay one conversation on a connection per side, turn by turn, baseline first.

    ``user_turns`` are all the conversation's user turns, in order; ``done`` the answers of
    its first turns, already replayed (a resumed run), as (baseline, candidate) texts: they are
    put back as context after their user texts, then the rest is replayed. ``on_turn`` is
    awaited after each turn with both answers (it stores them, and may raise to stop).

    Raises:
        ReplayError, TimeoutError, VoiceLiveUnavailable: as :func:`replay_conversation`.
    """
    opened = []
    try:
        for config in (baseline, candidate):
            opened.append(await open_connection(config=config, upstream=upstream))
        old, new = opened[0].conn, opened[1].conn
        for user, (old_text, new_text) in zip(user_turns, done, strict=False):
            for conn, text in ((old, old_text), (new, new_text)):
                await conn.send(message_item("user", user))
                await conn.send(message_item("assistant", text))
        for index, text in enumerate(user_turns[len(done) :], start=len(done)):
            before = await replay_turn(old, text, tools=tools[0], turn_timeout=turn_timeout)
            after = await replay_turn(new, text, tools=tools[1], turn_timeout=turn_timeout)
            await on_turn(index, before, after)
    finally:
        for each in opened:
            await close_quietly(each.conn)
            await close_credential(each.credential)


async def replay_turn(
    conn: Any, text: str, *, turn_timeout: float, tools: ToolAnswer = never_run
) -> ReplayedAnswer:
    """Send one user turn, ask for a text reply, and collect it (tool rounds included).

    Each tool call is answered by ``tools`` and recorded with how it was answered.

    Raises:
        ReplayError: the engine sent an error.
        TimeoutError: no complete answer within ``turn_timeout``.
    """
    answer = ReplayedAnswer()
    parts: list[str] = []
    await conn.send(message_item("user", text))
    started = time.monotonic()
    await conn.send({"type": "response.create", "response": {"modalities": ["text"]}})
    rounds = 0
    pending: list[tuple[str, str, dict[str, Any]]] = []  # call id, raw arguments, record
    async with asyncio.timeout(turn_timeout):
        while True:
            event = await conn.recv()
            kind = event.type
            if kind in _TEXT_DELTAS:
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
                    break
                rounds += 1
                for call_id, raw, call in pending:
                    output, call["answered"] = await tools(call["name"], raw)
                    await conn.send(function_output_item(call_id, output))
                pending.clear()
                await conn.send({"type": "response.create", "response": {"modalities": ["text"]}})
    answer.text = "".join(parts).strip()
    return answer


def _arguments(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw  # as the model wrote it: the report shows what it sent
