"""Function calls of one Voice Live session: recorded, run, answered, bounded and cancellable.

The model asks for a tool with ``response.function_call_arguments.done`` (the call's item is
also in ``response.output_item.done`` and in ``response.done``'s output). When that response is
done, :class:`ToolCalls` runs its calls in a task of its own — so a slow tool never holds the
receive loop — through the :class:`ToolExecutor` the service provides (the Django side:
``assistant/tools/live.py``), sends one ``function_call_output`` item per call, then
``response.create`` so the model answers with the results.

- Rounds are bounded per user turn (:data:`MAX_ROUNDS`): past it, calls are answered with an
  error telling the model to answer without tools.
- Barge-in, a typed message, the browser's cancel and the session's end cancel a running round
  (cancelled, then awaited with a timeout); its unanswered calls get a "cancelled" output.
- A tool that requires approval waits for the page (``tool.approval``) or a spoken yes / no,
  at most :data:`APPROVAL_SECONDS`; no answer is a no. An interim phrase is spoken while a
  tool runs (``response.create`` with a pre-generated assistant message, as Voice Live does).
- The ``end_conversation`` tool ends the session once the goodbye reply has been heard; the
  ``hand_over`` tool switches the session's profile before the model answers.

No Django here: the executor is a protocol.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from assistant import metrics, protocol
from assistant.codes import ErrorCode
from assistant.protocol import BYTES_PER_SECOND
from assistant.voicelive.config import SessionConfig, SessionTool
from assistant.voicelive.sink import SessionSink
from assistant.voicelive.toolcall_text import (
    CANCELLED,
    DECLINED,
    TOO_MANY_ROUNDS,
    UNAVAILABLE,
    arguments_summary,
    result_summary,
    spoken_answer,
)

logger = logging.getLogger(__name__)

#: Outcomes decided here, not by running the tool.
COORDINATOR_OUTCOMES = frozenset({"declined", "cancelled", "too_many_rounds"})
#: Tool rounds (responses that call tools) allowed per user turn.
MAX_ROUNDS = 4
#: How long the user has to approve a call.
APPROVAL_SECONDS = 30.0
#: Beyond the tool's own timeout, for the executor's lookups around it.
EXECUTOR_GRACE_SECONDS = 5.0
#: How long a cancelled round gets to unwind.
CANCEL_TIMEOUT = 2.0
#: After the goodbye reply: its audio's length plus this, at most GOODBYE_MAX_WAIT.
GOODBYE_MARGIN_SECONDS = 0.8
GOODBYE_MAX_WAIT = 30.0


@dataclass(frozen=True, slots=True)
class FunctionCall:
    """One call the model asked for."""

    call_id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class CallResult:
    """What a call gave: the output the model reads, and what the session does next.

    Attributes:
        output: the ``function_call_output`` text.
        outcome: ``ok``, ``invalid_arguments``, ``error``, ``timeout``, ``refused``,
            ``unknown_tool``, ``declined``, ``cancelled``, ``too_many_rounds``.
        end_session: end the session once the model's next reply has been heard.
        handover_profile_id: switch the session to this profile before the model answers.
    """

    output: str
    outcome: str = "ok"
    end_session: bool = False
    handover_profile_id: int | None = None


class ToolExecutor(Protocol):
    """What the service does for the calls (the Django side: runner, ORM, profiles)."""

    async def run_call(self, call: FunctionCall, profile_id: int) -> CallResult:
        """Run one call for the session's user in ``profile_id``; failures are results."""

    async def hand_over(self, profile_id: int) -> bool:
        """Switch the live session to ``profile_id``; False if the user may not use it."""

    async def end_conversation(self) -> None:
        """End the session cleanly: the assistant said goodbye."""


class ToolUpstream(Protocol):
    """What the coordinator asks of the session that holds the connection."""

    @property
    def config(self) -> SessionConfig:
        """The profile the session runs with now."""

    @property
    def connected(self) -> bool:
        """True while there is a connection to send on."""

    @property
    def audio_out_bytes(self) -> int:
        """Assistant audio relayed to the browser so far."""

    async def send_function_output(self, call_id: str, output: str) -> None:
        """Send ``conversation.item.create`` with a ``function_call_output`` item."""

    async def send_create(self) -> None:
        """Send ``response.create``."""

    async def send_spoken(self, text: str) -> None:
        """Send ``response.create`` speaking exactly ``text`` (a pre-generated message)."""

    def expect_reply(self) -> None:
        """A reply was asked for (arms the reply watchdog)."""


class ToolCalls:
    """The function calls of one session.

    Args:
        upstream: the session, for what needs the connection.
        sink: the browser side (tool lines, approval requests).
        executor: runs the calls (None: every call is answered "not available").
    """

    def __init__(
        self,
        *,
        upstream: ToolUpstream,
        sink: SessionSink,
        executor: ToolExecutor | None,
        max_rounds: int = MAX_ROUNDS,
        approval_seconds: float = APPROVAL_SECONDS,
    ) -> None:
        self._upstream = upstream
        self._sink = sink
        self._executor = executor
        self._max_rounds = max_rounds
        self._approval_seconds = approval_seconds
        # Calls seen per response, answered once that response is done.
        self._pending: dict[str, dict[str, FunctionCall]] = {}
        self._rounds = 0  # since the user's last turn
        self._round_task: asyncio.Task[None] | None = None
        self._end_task: asyncio.Task[None] | None = None
        # Calls of the running round without an output yet (answered "cancelled" on cancel).
        self._unanswered: dict[str, FunctionCall] = {}
        self._approvals: dict[str, asyncio.Future[bool]] = {}
        self._end_after_reply = False
        self._reply_audio_from = 0
        #: A spoken yes / no answered an approval: the reply its turn starts is not wanted
        #: (the model would answer "yes" to a call without its output); the router cancels it.
        self.drop_turn_reply = False
        self._closed = False
        #: Seconds spent in tool rounds so far (the turn timer reads it: turn_timing.py).
        self.tool_seconds = 0.0

    @property
    def busy(self) -> bool:
        """True while a round runs (the model's answer is still to be asked for)."""
        return self._round_task is not None and not self._round_task.done()

    @property
    def awaiting_approval(self) -> bool:
        """True while a call waits for the user's yes or no."""
        return bool(self._approvals)

    # ------------------------------------------------------------------ server events

    def on_arguments_done(self, event: Any) -> None:
        """``response.function_call_arguments.done``: the call is complete; record it."""
        self._record(
            event.get("response_id"),
            event.get("call_id"),
            event.get("name"),
            event.get("arguments"),
        )

    def on_output_item_done(self, event: Any) -> None:
        """``response.output_item.done``: a ``function_call`` item is a call too (once)."""
        item = event.get("item") or {}
        if item.get("type") == "function_call":
            self._record(
                event.get("response_id"),
                item.get("call_id"),
                item.get("name"),
                item.get("arguments"),
            )

    def _record(self, response_id: Any, call_id: Any, name: Any, arguments: Any) -> None:
        if not isinstance(call_id, str) or not call_id or not isinstance(name, str):
            metrics.UPSTREAM_ERRORS.labels(kind="bad_tool_call").inc()
            logger.warning("voice live sent a function call without call id or name; ignored")
            return
        calls = self._pending.setdefault(str(response_id or ""), {})
        calls.setdefault(call_id, FunctionCall(call_id, name, str(arguments or "")))

    async def on_response_done(self, response: Mapping[str, Any]) -> None:
        """A response ended: run the calls it made, or end the session after a goodbye."""
        response_id = str(response.get("id") or "")
        calls = self._pending.pop(response_id, {})
        for item in response.get("output") or []:
            if isinstance(item, Mapping) and item.get("type") == "function_call":
                call_id, name = item.get("call_id"), item.get("name")
                if isinstance(call_id, str) and call_id and isinstance(name, str):
                    calls.setdefault(
                        call_id, FunctionCall(call_id, name, str(item.get("arguments") or ""))
                    )
        if self._closed:
            return
        if not calls:
            if self._end_after_reply and not self.busy:
                self._end_after_reply = False
                heard = self._upstream.audio_out_bytes - self._reply_audio_from
                self._end_task = asyncio.create_task(
                    self._guarded(self._end_when_heard(heard)), name="voicelive goodbye"
                )
            return
        if response.get("status") == "cancelled" or self.busy:
            # Interrupted before it was done (or, against the protocol, while another round
            # runs): answered, so the conversation never holds a call without its output.
            for call in calls.values():
                await self._answer(call, "cancelled", CANCELLED)
            return
        self._round_task = asyncio.create_task(
            self._guarded(self._round(list(calls.values()))), name="voicelive tool round"
        )

    # ------------------------------------------------------------------ the user

    async def on_user_turn(self) -> None:
        """The user speaks or types: a new turn (rounds counted afresh), a running tool stops.

        Not while a call waits for approval: the speech may well be the answer.
        """
        self._rounds = 0
        if not self.awaiting_approval:
            await self.cancel()

    def on_user_transcript(self, transcript: str) -> bool:
        """A finished user transcript: a spoken yes or no answers the oldest approval."""
        if not self._approvals:
            return False
        answer = spoken_answer(transcript)
        if answer is None:
            return False
        answered = self.answer_approval(next(iter(self._approvals)), answer)
        self.drop_turn_reply = answered
        return answered

    def answer_approval(self, call_id: str, approved: bool) -> bool:
        """The page's (or the voice's) answer; False if no such call waits."""
        future = self._approvals.get(call_id)
        if future is None or future.done():
            return False
        future.set_result(approved)
        return True

    async def cancel(self) -> None:
        """Stop the running round; its unanswered calls are answered "cancelled"."""
        task = self._round_task
        if task is None or task.done():
            return
        task.cancel()
        await asyncio.wait([task], timeout=CANCEL_TIMEOUT)
        for call in list(self._unanswered.values()):
            await self._answer(call, "cancelled", CANCELLED)
        self._unanswered.clear()

    async def aclose(self) -> None:
        """The session ends: cancel what runs (the connection is going, nothing is sent)."""
        self._closed = True
        current = asyncio.current_task()
        tasks = [
            task
            for task in (self._round_task, self._end_task)
            if task is not None and task is not current and not task.done()
        ]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=CANCEL_TIMEOUT)

    # ------------------------------------------------------------------ a round

    async def _guarded(self, work: Any) -> None:
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            metrics.UPSTREAM_ERRORS.labels(kind="internal").inc()
            logger.error("tool round failed (%s)", type(exc).__name__, exc_info=exc)
            await self._sink.upstream_lost(ErrorCode.INTERNAL)

    async def _round(self, calls: list[FunctionCall]) -> None:
        started = time.monotonic()
        try:
            await self._round_calls(calls)
        finally:
            self.tool_seconds += time.monotonic() - started

    async def _round_calls(self, calls: list[FunctionCall]) -> None:
        self._rounds += 1
        too_many = self._rounds > self._max_rounds
        self._unanswered = {call.call_id: call for call in calls}
        end_session = False
        handover: int | None = None
        for call in calls:
            result = (
                CallResult(TOO_MANY_ROUNDS, "too_many_rounds")
                if too_many
                else await self._call(call)
            )
            await self._answer(call, result.outcome, result.output)
            end_session = end_session or result.end_session
            handover = result.handover_profile_id or handover
        if handover is not None and self._executor is not None:
            await self._executor.hand_over(handover)
        if not self._upstream.connected:
            return
        self._end_after_reply = self._end_after_reply or end_session
        self._reply_audio_from = self._upstream.audio_out_bytes
        self.drop_turn_reply = False  # from here on, a reply starting is the one asked for
        await self._upstream.send_create()
        self._upstream.expect_reply()

    async def _call(self, call: FunctionCall) -> CallResult:
        tool = self._upstream.config.tool(call.name)
        summary = arguments_summary(call.arguments)
        await self._sink.send_message(
            protocol.ToolCallStarted(call_id=call.call_id, name=call.name, arguments=summary)
        )
        if tool is not None and tool.requires_approval and not await self._approved(call, summary):
            return CallResult(DECLINED, "declined")
        if tool is not None and tool.interim_phrase:
            await self._upstream.send_spoken(tool.interim_phrase)
        return await self._execute(call, tool)

    async def _approved(self, call: FunctionCall, summary: str) -> bool:
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._approvals[call.call_id] = future
        try:
            await self._sink.send_message(
                protocol.ToolApprovalRequest(
                    call_id=call.call_id,
                    name=call.name,
                    arguments=summary,
                    timeout_s=int(self._approval_seconds),
                )
            )
            async with asyncio.timeout(self._approval_seconds):
                return await future
        except TimeoutError:
            return False
        finally:
            self._approvals.pop(call.call_id, None)

    async def _execute(self, call: FunctionCall, tool: SessionTool | None) -> CallResult:
        if self._executor is None:
            self._count(call, "error")
            return CallResult(UNAVAILABLE, "error")
        limit = (tool.timeout_seconds if tool else 0.0) + EXECUTOR_GRACE_SECONDS
        started = time.monotonic()
        try:
            async with asyncio.timeout(limit):
                return await self._executor.run_call(call, self._upstream.config.profile_id)
        except TimeoutError:
            logger.warning("tool %s: no result after %.1f s", call.name, time.monotonic() - started)
            metrics.UPSTREAM_ERRORS.labels(kind="tool").inc()
            self._count(call, "timeout")
            return CallResult(json.dumps({"error": "the tool did not answer in time"}), "timeout")
        except Exception as exc:
            logger.error(
                "tool %s: the executor failed (%s)", call.name, type(exc).__name__, exc_info=exc
            )
            metrics.UPSTREAM_ERRORS.labels(kind="tool").inc()
            self._count(call, "error")
            return CallResult(json.dumps({"error": "the tool failed"}), "error")

    def _count(self, call: FunctionCall, outcome: str) -> None:
        # A name the model made up is "unknown", as the runner labels it: the labels stay few.
        known = self._upstream.config.tool(call.name) is not None
        metrics.count_tool_call(call.name if known else "unknown", outcome)

    async def _answer(self, call: FunctionCall, outcome: str, output: str) -> None:
        """The call's output upstream, and its line on the page."""
        self._unanswered.pop(call.call_id, None)
        if outcome in COORDINATOR_OUTCOMES:  # the runner logs and counts the calls it ran
            logger.info("tool %s: %s", call.name[:64], outcome)
            self._count(call, outcome)
        if self._upstream.connected:
            await self._upstream.send_function_output(call.call_id, output)
        await self._sink.send_message(
            protocol.ToolCallFinished(
                call_id=call.call_id,
                name=call.name,
                outcome=outcome,
                summary=result_summary(output),
            )
        )

    async def _end_when_heard(self, reply_audio_bytes: int) -> None:
        """Let the browser play the goodbye (sent faster than real time), then end."""
        wait = reply_audio_bytes / BYTES_PER_SECOND + GOODBYE_MARGIN_SECONDS
        await asyncio.sleep(min(wait, GOODBYE_MAX_WAIT))
        if self._executor is not None and not self._closed:
            await self._executor.end_conversation()
