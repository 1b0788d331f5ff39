"""Push-to-talk, the turn-mode switch, the greeting and idle handling, over the fake upstream.

The consumer runs for real (WebsocketCommunicator); the Voice Live SDK is faked at its import
site (``tests/fakes.py``), which records every event sent upstream in order.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from django.contrib.auth.models import User

from assistant.models import AssistantProfile
from assistant.voicelive.talk_modes import CHECK_IN_INSTRUCTIONS, MODEL_GREETING_INSTRUCTIONS
from tests.fakes import FakeConnect
from tests.sessions import close_code, start
from tests.support.consumer import next_message

pytestmark = pytest.mark.django_db(transaction=True)

# 0.5 s of 24 kHz PCM16 in five frames: enough for a turn.
TURN_FRAMES = [bytes([i]) * 4800 for i in range(1, 6)]


async def _profile(**fields: Any) -> None:
    await AssistantProfile.objects.filter(name="Default").aupdate(**fields)


async def _press(comm: Any) -> None:
    await comm.send_json_to({"type": "input.press"})


async def _release(comm: Any) -> None:
    await comm.send_json_to({"type": "input.release"})


def _answer(fake: FakeConnect, response_id: str) -> None:
    """The upstream runs the reply asked for, to its end (no audio)."""
    response = {"id": response_id, "object": "realtime.response"}
    fake.last.push(
        {"type": "response.created", "event_id": "c", "response": {**response, "status": "x"}}
    )
    fake.last.push(
        {"type": "response.done", "event_id": "d", "response": {**response, "status": "completed"}}
    )


async def _codes_until_pong(comm: Any) -> list[str]:
    """The error codes the browser got before the answer to a ping sent now."""
    await comm.send_json_to({"type": "ping"})
    codes = []
    while True:
        frame = await comm.receive_output(3)
        message = json.loads(frame.get("text") or "{}")
        if message.get("type") == "pong":
            return codes
        if message.get("type") == "error":
            codes.append(message["code"])


async def _sent_types_after(fake: FakeConnect, kind: str, timeout: float = 2.0) -> list[str]:
    """The upstream event types sent after the first ``kind`` (waits until it was sent)."""
    await fake.last.wait_for(kind, timeout=timeout)
    types = [event["type"] for event in fake.last.sent]
    return types[types.index(kind) :]


async def test_push_to_talk_configures_no_turn_detection_and_tells_the_page(
    user: User, default_profile: AssistantProfile, fake_connect: FakeConnect
) -> None:
    await _profile(turn_mode="push_to_talk")
    comm = await start(user, fake_connect)
    mode = await next_message(comm, "turn_mode")
    assert mode == {"type": "turn_mode", "mode": "push_to_talk", "can_switch": False}
    session = fake_connect.last.sent_of("session.update")[0]["session"]
    assert "turn_detection" in session
    assert session["turn_detection"] is None
    await comm.disconnect()


async def test_hold_speak_release_commits_after_the_audio_and_asks_for_a_reply(
    user: User, default_profile: AssistantProfile, fake_connect: FakeConnect
) -> None:
    await _profile(turn_mode="push_to_talk")
    comm = await start(user, fake_connect)
    await _press(comm)
    await next_message(comm, "playback.clear")
    assert (await next_message(comm, "state"))["state"] == "listening"
    for frame in TURN_FRAMES:
        await comm.send_to(bytes_data=frame)
    await _release(comm)
    assert (await next_message(comm, "state"))["state"] == "processing"
    await fake_connect.last.wait_for("response.create")
    types = [e["type"] for e in fake_connect.last.sent]
    clear = types.index("input_audio_buffer.clear")
    commit = types.index("input_audio_buffer.commit")
    # Every frame sent before the release is appended before the commit, then the reply.
    appended = [
        i for i, kind in enumerate(types) if kind == "input_audio_buffer.append" and i > clear
    ]
    assert appended
    assert max(appended) < commit < types.index("response.create")
    assert fake_connect.last.appended_audio() == b"".join(TURN_FRAMES)
    assert fake_connect.last.sent_of("response.cancel") == []  # nothing was running
    await comm.disconnect()


async def test_push_to_talk_drops_audio_sent_without_a_press(
    user: User, default_profile: AssistantProfile, fake_connect: FakeConnect
) -> None:
    """Audio while the button is up is never heard nor committed later (issue 19)."""
    await _profile(turn_mode="push_to_talk")
    comm = await start(user, fake_connect)
    stray = b"\x07\x00" * 12000  # 24,000 bytes, as the red team sent
    await comm.send_to(bytes_data=stray)
    assert await _codes_until_pong(comm) == []  # dropped quietly: a page's stray frame
    assert fake_connect.last.appended_audio() == b""
    await _press(comm)
    assert (await next_message(comm, "state"))["state"] == "listening"
    for frame in TURN_FRAMES:
        await comm.send_to(bytes_data=frame)
    await _release(comm)
    await fake_connect.last.wait_for("response.create")
    # Audio after the release is dropped too: the next turn starts empty.
    await comm.send_to(bytes_data=stray)
    assert await _codes_until_pong(comm) == []
    assert fake_connect.last.appended_audio() == b"".join(TURN_FRAMES)
    await _press(comm)
    await _release(comm)
    # The stray audio did not count towards the turn.
    assert (await next_message(comm, "error"))["code"] == "input_too_short"
    assert fake_connect.last.appended_audio() == b"".join(TURN_FRAMES)
    await comm.disconnect()


async def test_press_during_a_reply_interrupts_it_like_barge_in(
    user: User, default_profile: AssistantProfile, fake_connect: FakeConnect
) -> None:
    await _profile(turn_mode="push_to_talk")
    comm = await start(user, fake_connect)
    fake_connect.last.push(
        {
            "type": "response.created",
            "event_id": "e1",
            "response": {"id": "resp_9", "object": "realtime.response", "status": "in_progress"},
        }
    )
    await asyncio.sleep(0.05)
    await _press(comm)
    await next_message(comm, "playback.clear")
    types = await _sent_types_after(fake_connect, "response.cancel")
    assert "input_audio_buffer.clear" in types
    await comm.disconnect()


async def test_a_too_short_turn_is_a_clear_non_fatal_error(
    user: User, default_profile: AssistantProfile, fake_connect: FakeConnect
) -> None:
    await _profile(turn_mode="push_to_talk")
    comm = await start(user, fake_connect)
    await _press(comm)
    assert (await next_message(comm, "state"))["state"] == "listening"
    await comm.send_to(bytes_data=b"\x01\x00" * 480)  # 20 ms
    await _release(comm)
    assert (await next_message(comm, "state"))["state"] == "ready"
    assert (await next_message(comm, "error"))["code"] == "input_too_short"
    assert fake_connect.last.sent_of("input_audio_buffer.commit") == []
    assert len(fake_connect.last.sent_of("input_audio_buffer.clear")) == 2  # press, release
    # The session carries on: a real turn still works.
    await _press(comm)
    for frame in TURN_FRAMES:
        await comm.send_to(bytes_data=frame)
    await _release(comm)
    await fake_connect.last.wait_for("input_audio_buffer.commit")
    await comm.disconnect()


async def test_press_and_release_without_push_to_talk_are_refused(
    user: User, default_profile: AssistantProfile, fake_connect: FakeConnect
) -> None:
    comm = await start(user, fake_connect)
    assert (await next_message(comm, "turn_mode"))["mode"] == "voice_activity"
    await _press(comm)
    assert (await next_message(comm, "error"))["code"] == "push_to_talk_off"
    await _release(comm)
    assert (await next_message(comm, "error"))["code"] == "push_to_talk_off"
    await comm.send_json_to({"type": "ping"})
    await next_message(comm, "pong")
    assert fake_connect.last.sent_of("input_audio_buffer.clear") == []
    await comm.disconnect()


async def test_switching_modes_updates_turn_detection_where_allowed(
    user: User, default_profile: AssistantProfile, fake_connect: FakeConnect
) -> None:
    await _profile(allow_turn_mode_switch=True)
    comm = await start(user, fake_connect)
    assert (await next_message(comm, "turn_mode"))["can_switch"] is True
    await comm.send_json_to({"type": "turn_mode.set", "mode": "push_to_talk"})
    assert (await next_message(comm, "turn_mode"))["mode"] == "push_to_talk"
    updates = fake_connect.last.sent_of("session.update")
    assert len(updates) == 2  # connect, then the switch: no reconnect
    assert updates[1]["session"]["turn_detection"] is None
    assert len(fake_connect.calls) == 1
    await comm.send_json_to({"type": "turn_mode.set", "mode": "voice_activity"})
    assert (await next_message(comm, "turn_mode"))["mode"] == "voice_activity"
    await fake_connect.last.wait_for("session.update", count=3)
    assert fake_connect.last.sent_of("session.update")[2]["session"]["turn_detection"]["type"]
    await comm.send_json_to({"type": "turn_mode.set", "mode": "shouting"})
    assert (await next_message(comm, "error"))["code"] == "bad_message"
    await comm.disconnect()


async def test_switching_is_refused_when_the_profile_fixes_the_mode(
    user: User, default_profile: AssistantProfile, fake_connect: FakeConnect
) -> None:
    comm = await start(user, fake_connect)
    await comm.send_json_to({"type": "turn_mode.set", "mode": "push_to_talk"})
    assert (await next_message(comm, "error"))["code"] == "turn_mode_locked"
    assert len(fake_connect.last.sent_of("session.update")) == 1
    await comm.disconnect()


async def test_fixed_greeting_is_said_word_for_word_with_the_first_name(
    user: User, default_profile: AssistantProfile, fake_connect: FakeConnect
) -> None:
    user.first_name = "Zoé"
    await user.asave()
    await _profile(
        greeting_mode="fixed",
        greeting_text="Bonjour {first_name}! {0} {first_name.__class__}",
        instructions="Call the user {first_name}.",
    )
    comm = await start(user, fake_connect)
    await fake_connect.last.wait_for("response.create")
    create = fake_connect.last.sent_of("response.create")[0]
    message = create["response"]["pre_generated_assistant_message"]
    assert message["role"] == "assistant"
    # Only the exact placeholder is replaced: nothing is evaluated as a format string.
    assert message["content"] == [
        {"type": "text", "text": "Bonjour Zoé! {0} {first_name.__class__}"}
    ]
    session = fake_connect.last.sent_of("session.update")[0]["session"]
    assert session["instructions"] == "Call the user Zoé."
    await comm.disconnect()


async def test_model_greeting_asks_for_a_reply_before_the_user_speaks(
    user: User, default_profile: AssistantProfile, fake_connect: FakeConnect
) -> None:
    await _profile(greeting_mode="model")
    comm = await start(user, fake_connect)
    await fake_connect.last.wait_for("response.create")
    create = fake_connect.last.sent_of("response.create")[0]
    assert create["additional_instructions"] == MODEL_GREETING_INSTRUCTIONS
    assert fake_connect.last.appended_audio() == b""
    await comm.disconnect()


async def test_no_greeting_by_default(
    user: User, default_profile: AssistantProfile, fake_connect: FakeConnect
) -> None:
    comm = await start(user, fake_connect)
    await next_message(comm, "turn_mode")
    await asyncio.sleep(0.1)
    assert fake_connect.last.sent_of("response.create") == []
    await comm.disconnect()


async def test_idle_session_is_checked_in_on_then_ended_cleanly(
    user: User, default_profile: AssistantProfile, fake_connect: FakeConnect, settings: Any
) -> None:
    settings.VOICE_HEARTBEAT_SECONDS = 0.1
    await _profile(idle_check_in_seconds=1, idle_end_seconds=1)
    comm = await start(user, fake_connect)
    await fake_connect.last.wait_for("response.create", timeout=4)
    create = fake_connect.last.sent_of("response.create")[0]
    assert create["additional_instructions"] == CHECK_IN_INSTRUCTIONS
    # No end while the check-in's reply is still coming.
    await asyncio.sleep(1.5)
    assert "idle_ended" not in await _codes_until_pong(comm)
    _answer(fake_connect, "resp_check_in")
    error = await next_message(comm, "error", timeout=4)
    assert error["code"] == "idle_ended"
    assert (await next_message(comm, "state"))["state"] == "stopped"
    assert await close_code(comm) == 1000
    assert len(fake_connect.last.sent_of("response.create")) == 1  # checked in once


async def test_typing_after_the_check_in_keeps_the_session(
    user: User, default_profile: AssistantProfile, fake_connect: FakeConnect, settings: Any
) -> None:
    settings.VOICE_HEARTBEAT_SECONDS = 0.1
    await _profile(idle_check_in_seconds=1, idle_end_seconds=2)
    comm = await start(user, fake_connect)
    await fake_connect.last.wait_for("response.create", timeout=4)
    _answer(fake_connect, "resp_check_in")
    await comm.send_json_to({"type": "text.send", "text": "Still here"})
    await fake_connect.last.wait_for("response.create", count=2)
    _answer(fake_connect, "resp_reply")
    await asyncio.sleep(1.5)  # past the end time counted from the check-in
    await comm.send_json_to({"type": "ping"})
    await next_message(comm, "pong")
    # Quiet again: a fresh check-in (the third reply asked for), then the end.
    await fake_connect.last.wait_for("response.create", count=3, timeout=4)
    _answer(fake_connect, "resp_check_in_2")
    assert (await next_message(comm, "error", timeout=5))["code"] == "idle_ended"


async def test_speech_events_count_as_activity(
    user: User, default_profile: AssistantProfile, fake_connect: FakeConnect, settings: Any
) -> None:
    settings.VOICE_HEARTBEAT_SECONDS = 0.1
    await _profile(idle_check_in_seconds=1, idle_end_seconds=1)
    comm = await start(user, fake_connect)
    for _ in range(6):  # the user keeps talking for 1.8 s, longer than N
        fake_connect.last.push(
            {"type": "input_audio_buffer.speech_started", "event_id": "e", "item_id": "i1"}
        )
        await asyncio.sleep(0.3)
    assert fake_connect.last.sent_of("response.create") == []
    await comm.disconnect()
