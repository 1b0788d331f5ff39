"""The call's parts that need no socket: endings, dispatch by type, the worker tasks."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import pytest

from assistant import protocol
from assistant.calls.commands import COMMAND_TYPES, CallCommands
from assistant.calls.supervisor import CONTROL_TYPES, requested_ending
from assistant.codes import ENDINGS, REQUESTED_ENDINGS, CloseCode, Ending, ErrorCode, State
from assistant.live.periodic import WorkerTask
from assistant.protocol.browser import ALLOWED_BROWSER_TYPES
from assistant.protocol.dispatch import handler_name, handlers


def test_every_ending_says_what_the_browser_is_told() -> None:
    assert set(ENDINGS) == set(Ending)
    for ending, (error, close) in ENDINGS.items():
        assert error is None or isinstance(error, ErrorCode), ending
        assert isinstance(close, CloseCode), ending
    # The user's and the assistant's own endings are no error; an admin's is.
    assert ENDINGS[Ending.STOPPED] == (None, CloseCode.NORMAL)
    assert ENDINGS[Ending.TERMINATED] == (ErrorCode.TERMINATED, CloseCode.TERMINATED)
    assert ENDINGS[Ending.LOGOUT][1] == CloseCode.UNAUTHENTICATED


@pytest.mark.parametrize(
    ("reason", "ending"),
    [
        ("terminated", Ending.TERMINATED),
        ("replaced", Ending.REPLACED),
        ("logout", Ending.LOGOUT),
        ("gone", Ending.GONE),
        ("stopped", Ending.GONE),  # not one another worker may ask for
        ("internal", Ending.GONE),
        ("", Ending.GONE),
        ("nonsense", Ending.GONE),
    ],
)
def test_an_end_request_can_only_ask_for_the_requestable_endings(
    reason: str, ending: Ending
) -> None:
    assert requested_ending(reason) == ending
    assert requested_ending(reason) in REQUESTED_ENDINGS


def test_handlers_are_named_after_their_message_types() -> None:
    assert handler_name("session.end") == "session_end"
    assert handler_name("turn_mode.set") == "turn_mode_set"

    class Owner:
        async def session_end(self) -> None:
            pass

    assert set(handlers(Owner(), ["session.end"])) == {"session.end"}
    with pytest.raises(AttributeError):
        handlers(Owner(), ["session.end", "profile.changed"])  # a missing handler fails early


def test_every_browser_message_but_the_ack_has_a_command() -> None:
    types = ALLOWED_BROWSER_TYPES - {protocol.AudioAck.type}
    assert set(COMMAND_TYPES) == types


def test_every_control_message_has_a_handler() -> None:
    assert set(CONTROL_TYPES) == {
        protocol.SESSION_END,
        protocol.PROFILE_CHANGED,
        protocol.MONITOR_ATTACH,
        protocol.MONITOR_DETACH,
    }


class _Call:
    """A call as its commands see it."""

    def __init__(self, state: State = State.READY) -> None:
        self.voice: Any = object()
        self.history = None
        self.quota = None
        self.state = state
        self.sent: list[protocol.ServerMessage] = []
        self.answered: list[protocol.ServerMessage] = []
        self.ended: list[Ending] = []

    async def send_message(self, message: protocol.ServerMessage) -> None:
        self.sent.append(message)

    async def answer(self, message: protocol.ServerMessage) -> None:
        self.answered.append(message)

    async def clear_playback(self) -> None:
        pass

    async def end(self, ending: Ending) -> None:
        self.ended.append(ending)


async def test_ping_and_stop_are_answered_before_the_upstream_is_ready() -> None:
    call = _Call(State.CONNECTING)
    commands = CallCommands(call)
    assert await commands.dispatch(protocol.Ping()) is None
    assert call.answered == [protocol.Pong()]  # to the browser alone: no monitor copy
    assert call.sent == []
    assert await commands.dispatch(protocol.TextSend(text="hi")) == ErrorCode.NOT_READY
    assert await commands.dispatch(protocol.SessionStop()) is None
    assert call.ended == [Ending.STOPPED]


class _Ticker(WorkerTask[int]):
    name = "test-ticker"

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[dict[uuid.UUID, int]] = []

    async def _run(self) -> None:
        self.seen.append(self.members())
        raise RuntimeError("boom")


async def test_a_worker_task_that_crashes_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    ticker = _Ticker()
    first = uuid.uuid4()
    with caplog.at_level(logging.ERROR, logger="assistant.live.periodic"):
        ticker.join(first, 1)
        task = ticker._task
        assert task is not None
        with pytest.raises(RuntimeError):
            await task
        await asyncio.sleep(0)  # the done callback runs
    assert ticker.seen == [{first: 1}]
    assert any("test-ticker crashed" in r.getMessage() for r in caplog.records)
    # The next call to join starts it again.
    ticker.join(uuid.uuid4(), 2)
    assert ticker._task is not task
    await ticker.close()


async def test_a_worker_task_ends_with_its_last_member() -> None:
    class Sleeper(WorkerTask[None]):
        name = "test-sleeper"

        async def _run(self) -> None:
            await asyncio.Event().wait()

    sleeper = Sleeper()
    a, b = uuid.uuid4(), uuid.uuid4()
    sleeper.join(a, None)
    sleeper.join(b, None)
    task = sleeper._task
    assert task is not None
    sleeper.leave(a)
    await asyncio.sleep(0)
    assert not task.done()
    sleeper.leave(b)
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not sleeper.is_member(b)
