"""Usage and quotas over the real path: a real Daphne worker, the real SDK and localvoice.

A worker killed with SIGKILL mid-session has written all of the session's usage but the last
flush interval (it is recorded as it accrues, not only when a response ends), and the quota
still counts it once the session's registry row has gone stale: a new session over quota is
refused. ``localvoice --echo`` sends every appended frame straight back, so audio flows both
ways, in real time, without the models.

With the models: a quota minute counts the assistant's spoken replies too, so typed questions
use up a quota, and a push-to-talk tap pays for the long reply it gets.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from assistant.calls.outbound import MIN_ACK_STEP_BYTES
from tests.support import measurements
from tests.support.audio import silence, speak
from tests.support.processes import manage
from tests.support.servers import Browser, Database, wait_until
from tests.support.talking import (
    FRAME_BYTES,
    FRAME_MS,
    ModelWorker,
    create_user,
    model_worker,
    stream,
)

pytestmark = [pytest.mark.integration]

PASSWORD = "usage-pw-1234"
FLUSH_SECONDS = 1.0
HEARTBEAT_SECONDS = 1.0
STREAM_SECONDS = 8.0
#: The most a SIGKILL may lose: one flush interval, plus a heartbeat for the time it takes.
MAY_LOSE = FLUSH_SECONDS + HEARTBEAT_SECONDS

MEASURED = measurements.section("usage measurements", measurements.milliseconds)
COUNTED = measurements.section("usage counts")


@pytest.fixture(scope="module")
def echo_worker(localvoice_echo: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    logs = tmp_path_factory.mktemp("usage-real")
    with model_worker(
        "usage",
        logs,
        upstream_url=localvoice_echo,
        setup=create_user("kim", PASSWORD),
        extra={
            "HISTORY_FLUSH_SECONDS": str(FLUSH_SECONDS),
            "VOICE_HEARTBEAT_SECONDS": str(HEARTBEAT_SECONDS),
        },
    ) as worker:
        yield worker


class Acks:
    """Counts the assistant audio received and acks it as the page does (in steps)."""

    def __init__(self) -> None:
        self.received = 0
        self._acked = 0

    @property
    def seconds(self) -> float:
        return self.received / 48_000

    async def got(self, socket: Any, nbytes: int) -> None:
        self.received += nbytes
        if self.received - self._acked >= MIN_ACK_STEP_BYTES:
            self._acked = self.received
            await socket.send_json({"type": "audio.ack", "bytes": self.received})


def usage_rows(database: Database, session_id: str) -> list[tuple[str, float, float]]:
    key: Any = uuid.UUID(session_id)
    if database.kind == "sqlite":
        key = key.hex
    return database.query(
        "SELECT response_id, audio_in_seconds, audio_out_seconds FROM assistant_usagerecord "
        "WHERE session_id = %s",
        (key,),
    )


def shell(worker: ModelWorker, code: str) -> str:
    """Run Django shell code against the worker's database; returns what it printed."""
    return manage(worker.daphne.env, "shell", "-c", code).strip().splitlines()[-1]


QUOTA_SECONDS = """
from django.contrib.auth.models import User
from assistant.history.quotas import quota_status
user = User.objects.get(username="kim")
print(quota_status(user_id=user.pk).fraction_used * 60 * {minutes})
"""


async def talk_then_die(worker: ModelWorker, seconds: float) -> tuple[str, float, float]:
    """Stream audio in real time (its echo acked as the page does) and kill the worker
    (SIGKILL) after ``seconds``, mid-stream; returns the session id and the seconds of audio
    sent and received until then."""
    server = worker.daphne
    acks = Acks()
    sent = 0
    async with Browser(server.base_url) as browser:
        await browser.login("kim", PASSWORD)
        socket = await browser.websocket(server.ws_url("/ws/voice/"))
        session_id = (await socket.expect("session.ready", timeout=20))["session_id"]

        async def read() -> None:
            while True:
                frame = await socket.next_frame(timeout=30)
                if frame.kind == "close":
                    return
                if frame.kind == "binary":
                    await acks.got(socket, len(frame.data))

        async def talk() -> None:
            nonlocal sent
            frame = b"\x10\x00" * (FRAME_BYTES // 2)
            started = time.monotonic()
            while True:
                await socket.send_audio(frame)
                sent += len(frame)
                due = started + sent / FRAME_BYTES * FRAME_MS / 1000
                await asyncio.sleep(max(0.0, due - time.monotonic()))

        tasks = [asyncio.create_task(read()), asyncio.create_task(talk())]
        await asyncio.sleep(seconds)
        server.kill()
        spoken, heard = sent, acks.received  # what reached the worker, give or take a frame
        server.wait_exit(timeout=5)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return session_id, spoken / 48_000, heard / 48_000


async def test_a_killed_worker_loses_at_most_a_flush_of_usage_and_quotas_count_the_rest(
    echo_worker: ModelWorker,
) -> None:
    worker, database = echo_worker, echo_worker.database
    # A quota the session stays well under while it talks (16 s of 60).
    shell(
        worker,
        "from django.contrib.auth.models import User\n"
        "from assistant.history.models import UsageQuota\n"
        "UsageQuota.objects.create(user=User.objects.get(username='kim'), minutes_per_day=1)\n",
    )
    try:
        session_id, sent, received = await talk_then_die(worker, STREAM_SECONDS)
        rows = usage_rows(database, session_id)
        written_in = sum(row[1] for row in rows)
        written_out = sum(row[2] for row in rows)
        MEASURED["usage lost to a SIGKILL: audio in"] = sent - written_in
        MEASURED["usage lost to a SIGKILL: audio out"] = received - written_out
        assert received > STREAM_SECONDS - 1, "the echo came back"
        assert written_in >= sent - MAY_LOSE, (rows, sent)
        assert written_out >= received - MAY_LOSE, (rows, received)
        assert [row[0] for row in rows] == [""], rows  # one accrued row: no response ended
        assert written_in <= sent + 0.01
        assert written_out <= received + 0.01

        # The session's registry row goes stale (3 heartbeats): the ledger alone counts it.
        await asyncio.sleep(3 * HEARTBEAT_SECONDS + 0.5)
        counted = float(shell(worker, QUOTA_SECONDS.format(minutes=1)))
        assert counted == pytest.approx(written_in + written_out, abs=0.01)

        # 50 s more written elsewhere: with the killed session's 12 s or more that is over the
        # minute, and the next session is refused at the handshake (admitted without them).
        shell(
            worker,
            "import uuid\n"
            "from django.contrib.auth.models import User\n"
            "from assistant.history.models import UsageRecord\n"
            "UsageRecord.objects.create(user=User.objects.get(username='kim'), "
            "session_id=uuid.uuid4(), model='m', audio_in_seconds=50)\n",
        )
        worker.daphne.start()
        async with Browser(worker.daphne.base_url) as browser:
            await browser.login("kim", PASSWORD)
            socket = await browser.websocket(worker.daphne.ws_url("/ws/voice/"))
            refusal = await socket.expect("error", timeout=20)
            assert refusal["code"] == "quota_exceeded", refusal
            assert await socket.expect_close() == 4402
    finally:
        if not worker.daphne.running:
            worker.daphne.start()
        wait_until(lambda: worker.daphne.running, timeout=5, what="the worker back")


# ---------------------------------------------------------------------- with the models

MODELS_SETUP = f"""
import uuid
from django.contrib.auth.models import User
from assistant.history.models import UsageQuota, UsageRecord
from assistant.models import AssistantProfile
typed = AssistantProfile.objects.create(
    name="Typed", voice="alloy", instructions="Answer every question in two sentences."
)
typist = User.objects.create_user("typist", password={PASSWORD!r})
typed.users.add(typist)
UsageQuota.objects.create(user=typist, minutes_per_day=1)
UsageRecord.objects.create(
    user=typist, session_id=uuid.uuid4(), model="m", audio_in_seconds={60 - 20}
)
ptt = AssistantProfile.objects.create(
    name="Tap", voice="alloy", turn_mode="push_to_talk",
    instructions="Whatever the user says, tell them a story of four sentences about a cat.",
)
tapper = User.objects.create_user("tapper", password={PASSWORD!r})
ptt.users.add(tapper)
UsageQuota.objects.create(user=tapper, minutes_per_day=10)
"""


@pytest.fixture(scope="module")
def models_worker(
    localvoice_models: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ModelWorker]:
    logs = tmp_path_factory.mktemp("usage-models")
    with model_worker(
        "usage-models",
        logs,
        upstream_url=localvoice_models,
        setup=MODELS_SETUP,
        extra={"HISTORY_FLUSH_SECONDS": "0.5", "VOICE_HEARTBEAT_SECONDS": "0.5"},
    ) as worker:
        yield worker


async def read_reply(socket: Any, acks: Acks, timeout: float = 90.0) -> str:
    """Read (acking the audio) until the reply is done, an error comes, or the socket closes;
    returns ``"done"``, the error's code or ``"closed"``."""
    async with asyncio.timeout(timeout):
        while True:
            frame = await socket.next_frame(timeout)
            if frame.kind == "close":
                return "closed"
            if frame.kind == "binary":
                await acks.got(socket, len(frame.data))
            elif frame.data["type"] == "error":
                return str(frame.data["code"])
            elif frame.data["type"] == "response.done":
                return "done"


@pytest.mark.models
async def test_typed_questions_with_spoken_replies_use_up_the_quota(
    models_worker: ModelWorker,
) -> None:
    """Typing buys spoken replies: they count, the session ends over quota and the next one
    is refused. (Before, 60 typed messages counted 0.000 minutes.)"""
    server = models_worker.daphne
    acks = Acks()
    async with Browser(server.base_url) as browser:
        await browser.login("typist", PASSWORD)
        socket = await browser.websocket(server.ws_url("/ws/voice/"))
        await socket.expect("session.ready", timeout=20)
        outcome, turns = "done", 0
        started = time.monotonic()
        while outcome == "done" and turns < 15 and time.monotonic() - started < 240:
            question = f"Question {turns}: what is a good name for a cat?"
            await socket.send_json({"type": "text.send", "text": question})
            outcome = await read_reply(socket, acks)
            turns += 1
        COUNTED["typed turns until the quota (20 s left) ended the session"] = turns
        assert outcome in ("quota_exceeded", "closed"), (outcome, turns, acks.seconds)
        assert await socket.expect_close(timeout=40) == 4402
        errors = [m["code"] for m in socket.texts("error")]
        assert "quota_exceeded" in errors, errors
        assert acks.seconds < 40, "ended within a few replies of the quota"
        again = await browser.websocket(server.ws_url("/ws/voice/"))
        assert (await again.expect("error", timeout=20))["code"] == "quota_exceeded"
        assert await again.expect_close() == 4402


@pytest.mark.models
async def test_a_push_to_talk_tap_pays_for_the_reply_it_gets(models_worker: ModelWorker) -> None:
    """A 0.25 s tap that gets a long spoken reply counts the reply, not just the tap."""
    server = models_worker.daphne
    acks = Acks()
    async with Browser(server.base_url) as browser:
        await browser.login("tapper", PASSWORD)
        socket = await browser.websocket(server.ws_url("/ws/voice/"))
        await socket.expect("session.ready", timeout=20)
        await socket.send_json({"type": "input.press"})
        await socket.expect("state", state="listening")
        tap = (speak("Go on") + silence(250))[: FRAME_BYTES * 6]  # 0.24 s
        await stream(socket, tap)
        await socket.send_json({"type": "input.release"})
        assert await read_reply(socket, acks) == "done"
        await socket.send_json({"type": "session.stop"})
        assert await socket.expect_close() == 1000
    reply = acks.seconds
    # Four times the tap at least (the 0.5B's four-sentence story ran 1.9 s to several seconds).
    assert reply > 1.0, "a reply of some length"
    code = QUOTA_SECONDS.replace('"kim"', '"tapper"').format(minutes=10)
    counted = 0.0

    def written() -> bool:
        nonlocal counted
        counted = float(shell(models_worker, code))
        return counted >= reply

    wait_until(written, timeout=10, interval=0.5, what="the reply counted")
    MEASURED["push-to-talk tap (0.24 s): reply counted"] = counted
    assert counted == pytest.approx(reply + len(tap) / 48_000, abs=0.05)
