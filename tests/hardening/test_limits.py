"""Limits and authorization over the real SDK against localvoice (consumer in-process).

Rate limits, frame sizes, session duration and idle timeout are the consumer's own behaviour, so
the consumer runs in-process (settings scaled to about a second) with the real upstream path.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from django.contrib.auth.models import User

from assistant import metrics
from assistant.models import AssistantProfile
from tests.hardening.conftest import (
    close_code,
    communicator,
    echo_roundtrip,
    metric,
    next_message,
    ping,
    start_session,
    tone,
)
from tests.support import measurements

pytestmark = [
    pytest.mark.hardening,
    pytest.mark.django_db(transaction=True),
    pytest.mark.integration,
]

TIMINGS = measurements.section("limit timings")


async def test_connection_rate_limit_per_user(
    user: User, settings: Any, real_upstream: str
) -> None:
    settings.VOICE_CONNECTIONS_PER_MINUTE_PER_USER = 3
    settings.VOICE_CONNECTIONS_PER_MINUTE_PER_IP = 1000
    for _ in range(3):
        comm = await start_session(user, client="192.0.2.10")
        await comm.disconnect()
    comm = communicator(user, client="192.0.2.11")  # another address: the user is limited
    connected, _ = await comm.connect()
    assert connected
    code, seen = await close_code(comm)
    assert code == 4429
    assert seen[0]["code"] == "rate_limited"
    await comm.disconnect()


async def test_connection_rate_limit_per_ip(
    user: User, settings: Any, real_upstream: str, default_profile: AssistantProfile
) -> None:
    settings.VOICE_CONNECTIONS_PER_MINUTE_PER_USER = 1000
    settings.VOICE_CONNECTIONS_PER_MINUTE_PER_IP = 3
    others = [
        await User.objects.acreate_user(f"ip-user-{i}", password="pw-x-12345") for i in range(4)
    ]
    for other in others[:3]:
        comm = await start_session(other, client="198.51.100.7")
        await comm.disconnect()
    comm = communicator(others[3], client="198.51.100.7")  # a fresh user, same address
    await comm.connect()
    code, seen = await close_code(comm)
    assert code == 4429
    assert seen[0]["code"] == "rate_limited"
    await comm.disconnect()
    comm = await start_session(others[3], client="198.51.100.8")  # another address is fine
    await comm.disconnect()


async def test_oversized_frames_are_refused_and_the_session_survives(
    user: User, settings: Any, real_upstream: str
) -> None:
    comm = await start_session(user)
    await comm.send_to(bytes_data=b"\x00" * (settings.VOICE_MAX_AUDIO_FRAME_BYTES + 2))
    assert (await next_message(comm, "error"))["code"] == "message_too_large"
    big = json.dumps({"type": "text.send", "text": "x" * settings.VOICE_MAX_CONTROL_BYTES})
    await comm.send_to(text_data=big)
    assert (await next_message(comm, "error"))["code"] == "message_too_large"
    await ping(comm)
    pcm = tone(40)
    await comm.send_to(bytes_data=pcm)
    got = b""
    async with asyncio.timeout(3):
        while len(got) < len(pcm):
            frame = await comm.receive_output(3)
            got += frame.get("bytes") or b""
    assert got == pcm  # audio still flows through the real upstream
    await comm.disconnect()


async def test_bad_browser_input_gets_a_code_and_is_never_forwarded(
    user: User, real_upstream: str
) -> None:
    """The real upstream has faults enabled: a forwarded fault would end the session."""
    comm = await start_session(user)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"text_data": "{not json"}, "bad_json"),
        ({"text_data": "[1, 2]"}, "bad_message"),
        ({"text_data": '{"type": "nope"}'}, "unknown_type"),
        ({"text_data": '{"type": "localvoice.fault", "fault": "drop"}'}, "unknown_type"),
        ({"text_data": '{"type": "session.update", "session": {}}'}, "unknown_type"),
        ({"text_data": '{"type": "input_audio_buffer.append", "audio": "AAAA"}'}, "unknown_type"),
        ({"text_data": '{"type": "text.send", "text": 5}'}, "bad_message"),
        ({"text_data": '{"type": "playback.interrupted", "item_id": "x", "played_ms": -1}'}, ""),
        ({"bytes_data": b"\x00\x01\x02"}, "bad_audio"),
        ({"bytes_data": b"\x00" * 40_000}, "message_too_large"),
    ]
    for frame, code in cases:
        await comm.send_to(**frame)
        assert (await next_message(comm, "error"))["code"] == (code or "bad_message")
    await ping(comm)
    pcm = tone(40)
    assert await echo_roundtrip(comm, pcm) == pcm
    await comm.disconnect()


async def test_control_flood_is_rate_limited_then_closed_4400(
    user: User, settings: Any, real_upstream: str
) -> None:
    settings.VOICE_CONTROL_MESSAGES_PER_MINUTE = 120  # burst 30, 2 per second
    comm = await start_session(user)
    for _ in range(40):
        await comm.send_to(text_data='{"type":"ping"}')
    pongs = limited = 0
    async with asyncio.timeout(3):
        while pongs + limited < 40:
            message = json.loads((await comm.receive_output(3))["text"])
            if message["type"] == "pong":
                pongs += 1
            elif message.get("code") == "rate_limited":
                limited += 1
    assert 30 <= pongs <= 36  # burst 30, plus 2 per second of refill while sending
    assert limited >= 8
    # Keep flooding: beyond 50 refusals the session is closed as abusive.
    started = time.monotonic()
    for _ in range(60):
        await comm.send_to(text_data='{"type":"ping"}')
    code, seen = await close_code(comm)
    TIMINGS["control_flood_close_s"] = time.monotonic() - started
    assert code == 4400
    assert seen[-2]["code"] == "rate_limited"
    await comm.disconnect()


async def test_audio_over_rate_is_dropped_then_closed_4400(
    user: User, settings: Any, real_upstream: str
) -> None:
    comm = await start_session(user)
    dropped = metric(metrics.AUDIO_DROPPED, reason="over_rate")
    frame = tone(40)
    # 6 s of audio at 5x real time: the burst (2 s at x1.5) passes, then some is refused.
    for _ in range(150):
        await comm.send_to(bytes_data=frame)
        await asyncio.sleep(0.008)
    assert (await next_message(comm, "error"))["code"] == "audio_too_fast"
    assert metric(metrics.AUDIO_DROPPED, reason="over_rate") > dropped
    # Persistent abuse: the session ends.
    started = time.monotonic()
    for _ in range(200):
        await comm.send_to(bytes_data=frame)  # ignored once the session has ended
    code, seen = await close_code(comm, timeout=5)
    TIMINGS["audio_abuse_close_s"] = time.monotonic() - started
    assert code == 4400
    assert seen[-2]["code"] == "audio_too_fast"
    await comm.disconnect()


async def test_max_session_duration_ends_with_4410(
    user: User, settings: Any, real_upstream: str
) -> None:
    settings.VOICE_HEARTBEAT_SECONDS = 0.1
    settings.VOICE_MAX_SESSION_SECONDS = 1.0
    started = time.monotonic()
    comm = await start_session(user)
    pcm = tone(20)
    seen: list[dict[str, Any]] = []
    code = None
    async with asyncio.timeout(3):
        while code is None:
            await comm.send_to(bytes_data=pcm)  # active all along: not an idle timeout
            await asyncio.sleep(0.05)
            while not comm.output_queue.empty():
                frame = comm.output_queue.get_nowait()
                if frame["type"] == "websocket.close":
                    code = frame["code"]
                elif frame.get("text"):
                    seen.append(json.loads(frame["text"]))
    took = time.monotonic() - started
    TIMINGS["max_session_1s_closed_after_s"] = took
    assert code == 4410
    assert {"type": "error", "code": "session_expired"}.items() <= seen[-2].items()
    assert 1.0 <= took < 1.6
    await comm.disconnect()


async def test_idle_timeout_ends_with_4408(user: User, settings: Any, real_upstream: str) -> None:
    settings.VOICE_HEARTBEAT_SECONDS = 0.1
    settings.VOICE_IDLE_TIMEOUT_SECONDS = 1.0
    comm = await start_session(user)
    started = time.monotonic()
    code, seen = await close_code(comm, timeout=3)
    took = time.monotonic() - started
    TIMINGS["idle_1s_closed_after_s"] = took
    assert code == 4408
    assert seen[-2]["code"] == "idle_timeout"
    assert 0.8 <= took < 1.6
    await comm.disconnect()


async def test_profile_not_assigned_is_refused_4403_without_upstream(
    user: User, real_upstream: str, captured_sessions: list[Any]
) -> None:
    secret = await AssistantProfile.objects.acreate(name="Finance only", instructions="x")
    comm = communicator(user, f"/ws/voice/?profile={secret.pk}")
    await comm.connect()
    code, seen = await close_code(comm)
    assert code == 4403
    assert seen[0]["code"] == "profile_forbidden"
    assert captured_sessions == []  # no upstream session was even built
    await comm.disconnect()


async def test_user_cannot_open_a_monitor(user: User, real_upstream: str) -> None:
    victim = await User.objects.acreate_user("victim", password="pw-victim-123")
    target = await start_session(victim)
    # The victim's session id is what an attacker would guess or steal.
    from assistant.models import LiveSession

    row = await LiveSession.objects.afirst()
    assert row is not None
    ready = str(row.pk)
    comm = communicator(user, f"/ws/monitor/{ready}/")
    connected, code = await comm.connect()
    assert not connected
    assert code == 4403
    # A staff member without the monitor permission is refused too.
    staff = await User.objects.acreate_user("staffer", password="pw-staff-123", is_staff=True)
    comm = communicator(staff, f"/ws/monitor/{ready}/")
    connected, code = await comm.connect()
    assert not connected
    assert code == 4403
    await ping(target)
    await target.disconnect()
