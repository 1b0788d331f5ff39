"""The turn engine's semantic end of turn, speech minimum, filler words, language and phrases.

On fake stages (``tests/localvoice/fakes.py``): the fake end-of-turn model answers the
probability it is given, so each rule of ``audio_input.py``'s docstring is checked exactly.
The same behaviours over the real SDK and Smart Turn: ``tests/localvoice/test_turn_taking.py``.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import numpy as np
import pytest

from localvoice.pipeline.stages import SttOptions
from localvoice.turns.audio_input import BACKCHANNEL_PROMPT, REPLY_GRACE_MS
from tests.localvoice.fakes import FakeChat, FakeStt, FakeTurnModel, FakeWordsModel
from tests.localvoice.server.test_session import Client

SEMANTIC = {
    "type": "azure_semantic_vad",
    "silence_duration_ms": 500,
    "end_of_utterance_detection": {"model": "semantic_detection_v1", "timeout_ms": 2000},
}


@pytest.fixture
async def client():
    made: list[Client] = []

    async def make(turn_detection: dict[str, Any], **stages: Any) -> Client:
        made.append(Client(**stages))
        session = {"turn_detection": turn_detection, "input_audio_transcription": None}
        await made[-1].send({"type": "session.update", "session": session})
        return made[-1]

    yield make
    for one in made:
        one.close()


async def test_a_pause_the_model_finds_unfinished_does_not_end_the_turn(client):
    model = FakeTurnModel(complete=0.1)
    c = await client(SEMANTIC, end_of_turn=model)
    await c.speak(600)
    await c.pause(1000)  # past silence_duration_ms, short of timeout_ms
    assert c.of("input_audio_buffer.committed") == []
    model.complete = 0.9
    await c.speak(600)
    await c.pause(800)
    await c.wait_for("input_audio_buffer.committed")
    assert len(c.of("input_audio_buffer.committed")) == 1
    assert len(c.of("input_audio_buffer.speech_started")) == 1
    assert model.calls == 2  # once per pause


async def test_server_vad_ends_the_same_speech_at_the_first_pause(client):
    model = FakeTurnModel(complete=0.1)
    c = await client({"type": "server_vad", "silence_duration_ms": 500}, end_of_turn=model)
    await c.speak(600)
    await c.pause(1000)
    await c.speak(600)
    await c.pause(800)
    await c.wait_for("input_audio_buffer.committed", 2)
    assert model.calls == 0


async def assert_ends_at_silence_duration(c: Client) -> None:
    """Speech, then a pause: the turn ends at ``silence_duration_ms`` (500 ms), no later."""
    await c.speak(600)
    await c.pause(700)
    await c.wait_for("input_audio_buffer.committed")
    stopped = c.of("input_audio_buffer.speech_stopped")[0]["audio_end_ms"]
    assert 600 + 500 <= stopped < 600 + 700


async def test_a_complete_turn_ends_at_silence_duration_ms(client):
    c = await client(SEMANTIC, end_of_turn=FakeTurnModel(complete=0.6))
    await assert_ends_at_silence_duration(c)


async def test_timeout_ms_bounds_the_wait(client):
    turn = {**SEMANTIC, "end_of_utterance_detection": {**SEMANTIC["end_of_utterance_detection"]}}
    turn["end_of_utterance_detection"]["timeout_ms"] = 1000
    c = await client(turn, end_of_turn=FakeTurnModel(complete=0.0))
    await c.speak(600)
    await c.pause(900)
    assert c.of("input_audio_buffer.committed") == []
    await c.pause(400)
    await c.wait_for("input_audio_buffer.committed")
    stopped = c.of("input_audio_buffer.speech_stopped")[0]["audio_end_ms"]
    assert 600 + 1000 <= stopped <= 600 + 1100


async def test_the_threshold_level_sets_how_sure_the_model_must_be(client):
    high = {**SEMANTIC, "end_of_utterance_detection": {"model": "semantic_detection_v1"}}
    high["end_of_utterance_detection"]["threshold_level"] = "high"
    c = await client(high, end_of_turn=FakeTurnModel(complete=0.6))  # medium would end it
    await c.speak(600)
    await c.pause(1200)
    assert c.of("input_audio_buffer.committed") == []


async def test_speech_shorter_than_speech_duration_ms_is_no_turn(client):
    turn = {**SEMANTIC, "speech_duration_ms": 400}
    c = await client(turn, end_of_turn=FakeTurnModel())
    await c.speak(200)
    await c.pause(800)
    assert c.of("input_audio_buffer.speech_started") == []
    await c.speak(600)
    await c.pause(800)
    await c.wait_for("input_audio_buffer.committed")


async def test_filler_words_are_removed_from_the_transcript(client):
    turn = {**SEMANTIC, "remove_filler_words": True}
    c = await client(turn, stt=FakeStt("Um, what time is it, uh?"), end_of_turn=FakeTurnModel())
    await c.speak(800)
    await c.pause(800)
    await c.wait_for("conversation.item.input_audio_transcription.completed")
    done = c.of("conversation.item.input_audio_transcription.completed")[0]
    assert done["transcript"] == "What time is it?"


async def test_a_turn_of_filler_words_only_is_not_committed(client):
    turn = {**SEMANTIC, "remove_filler_words": True}
    c = await client(turn, stt=FakeStt("Uhm."), end_of_turn=FakeTurnModel())
    await c.speak(800)
    await c.pause(2200)  # "um" alone is no finished sentence: it waits for timeout_ms
    await c.wait_for("input_audio_buffer.speech_stopped")
    assert c.of("input_audio_buffer.committed") == []
    assert c.of("response.created") == []


async def test_language_and_phrase_list_reach_the_stt(client):
    stt = FakeStt()
    c = await client(SEMANTIC, stt=stt, end_of_turn=FakeTurnModel())
    transcription = {"model": "whisper-1", "language": "fr-FR", "phrase_list": ["Contoso"]}
    await c.send(
        {"type": "session.update", "session": {"input_audio_transcription": transcription}}
    )
    await c.speak(800)
    await c.pause(800)
    await c.wait_for("conversation.item.input_audio_transcription.completed")
    assert stt.options[-1] == SttOptions(languages=("fr",), phrases=("Contoso",))


SEMANTIC_1200 = {
    **SEMANTIC,
    "end_of_utterance_detection": {"model": "semantic_detection_v1", "timeout_ms": 1200},
}


async def assert_held_until_the_timeout(c: Client, event: str) -> None:
    """Speech, then a pause past ``silence_duration_ms``: no ``event`` until 1200 ms end it."""
    await c.speak(600)
    await c.pause(1000)
    assert c.of(event) == []
    await c.pause(400)
    await c.wait_for(event)


async def test_a_transcript_stopping_on_a_dangling_word_waits_whatever_the_model_says(client):
    stt = FakeStt("I would like a table for")
    c = await client(SEMANTIC_1200, stt=stt, end_of_turn=FakeTurnModel(0.99))
    await assert_held_until_the_timeout(c, "input_audio_buffer.committed")


async def test_words_the_chat_model_finds_unfinished_hold_the_turn_until_the_timeout(client):
    words = FakeWordsModel(finished=0.0005)  # "can you remind me to call"
    c = await client(SEMANTIC_1200, end_of_turn=FakeTurnModel(0.99), words_end_of_turn=words)
    await assert_held_until_the_timeout(c, "input_audio_buffer.committed")
    assert words.calls == [("what time is it", "")]  # the pause's transcript, no reply yet


async def test_clearly_finished_words_end_the_turn_when_the_audio_sounds_unfinished(client):
    c = await client(
        SEMANTIC, end_of_turn=FakeTurnModel(0.1), words_end_of_turn=FakeWordsModel(0.4)
    )
    await assert_ends_at_silence_duration(c)


async def test_words_that_cannot_tell_leave_the_decision_to_the_audio(client):
    words = FakeWordsModel(finished=0.01)
    c = await client(SEMANTIC, end_of_turn=FakeTurnModel(0.1), words_end_of_turn=words)
    await c.speak(600)
    await c.pause(1000)
    assert c.of("input_audio_buffer.committed") == []
    c.pipeline.end_of_turn.complete = 0.9
    await c.speak(600)
    await c.pause(700)
    await c.wait_for("input_audio_buffer.committed")
    assert len(words.calls) == 2  # once per pause


async def test_speech_whisper_heard_nothing_in_yet_waits_for_more(client):
    c = await client(SEMANTIC_1200, stt=FakeStt(""), end_of_turn=FakeTurnModel(0.99))
    await assert_held_until_the_timeout(c, "input_audio_buffer.speech_stopped")


async def test_a_sound_over_the_reply_heard_as_nothing_ends_at_the_pause(client):
    """Over a reply, a hum Whisper writes as nothing ends at ``silence_duration_ms`` (500 ms),
    not at the timeout: the service waits for it with the reply paused."""
    stt = FakeStt()
    c = await client(
        {**SEMANTIC, "interrupt_response": False}, stt=stt, end_of_turn=FakeTurnModel(0.1)
    )
    c.pipeline.end_of_turn.complete = 0.99  # the first turn ends at its pause
    await c.speak(600)
    await c.pause(600)
    await c.wait_for("response.audio.delta")
    c.pipeline.end_of_turn.complete = 0.1  # "uh huh" does not sound like a finished turn
    stt.text = ""
    await c.speak(300)  # from 1200 ms on the input clock, over the reply's 280 ms
    await c.pause(800)
    await c.wait_for("input_audio_buffer.speech_stopped", 2)
    stopped = c.of("input_audio_buffer.speech_stopped")[1]["audio_end_ms"]
    assert stopped < 1200 + 300 + 700  # the 2000 ms timeout would put it past 3500


async def test_a_lone_word_after_a_finished_sentence_is_left_to_the_audio(client):
    words = FakeWordsModel(finished=0.0001)
    stt = FakeStt("Turn off the lights in the kitchen. Turn")  # Whisper's stray word
    c = await client(SEMANTIC, stt=stt, end_of_turn=FakeTurnModel(0.9), words_end_of_turn=words)
    await c.speak(600)
    await c.pause(700)
    await c.wait_for("input_audio_buffer.committed")
    assert words.calls == []


async def test_the_words_check_reads_the_assistants_last_words(client):
    words = FakeWordsModel(finished=0.5)
    c = await client(SEMANTIC, words_end_of_turn=words)
    await c.speak(600)
    await c.pause(700)
    await c.wait_for("response.done")
    said = c.of("response.done")[0]["response"]["output"][0]["content"][0]["transcript"]
    await c.speak(600)
    await c.pause(700)
    await c.wait_for("input_audio_buffer.committed", 2)
    assert said
    assert words.calls[-1] == ("what time is it", said)


SERVER_VAD = {"type": "server_vad", "silence_duration_ms": 300, "interrupt_response": False}


async def speak_over_the_reply(c: Any, quiet_ms_first: int) -> None:
    """A turn, its reply's audio, then ``quiet_ms_first`` of silence and a short sound."""
    await c.speak(600)
    await c.pause(500)
    await c.wait_for("response.audio.delta")  # the fake reply: 280 ms of audio
    await c.pause(quiet_ms_first)
    await c.speak(300)
    await c.pause(500)
    await c.wait_for("conversation.item.input_audio_transcription.completed", 2)


async def test_speech_over_the_reply_is_transcribed_expecting_a_backchannel(client):
    stt = FakeStt()
    c = await client(SERVER_VAD, stt=stt)
    await speak_over_the_reply(c, quiet_ms_first=0)
    assert stt.options[0] == SttOptions()  # the first turn: nothing was playing
    assert stt.options[-1] == SttOptions(phrases=BACKCHANNEL_PROMPT)


async def test_speech_after_the_reply_played_out_is_transcribed_as_usual(client):
    stt = FakeStt()
    c = await client(SERVER_VAD, stt=stt)
    await speak_over_the_reply(c, quiet_ms_first=280 + REPLY_GRACE_MS + 300)
    assert stt.options[-1] == SttOptions()


class SpeaksThenStalls(FakeChat):
    """The first reply in full; the next ones say a sentence, then wait to be cancelled."""

    async def stream(
        self, messages, *, temperature, max_tokens, cancel, stats, tools_offered=False
    ):  # type: ignore[override]
        if not self.prompts:
            async for token in super().stream(
                messages, temperature=temperature, max_tokens=max_tokens, cancel=cancel, stats=stats
            ):
                yield token
            return
        self.prompts.append(messages)
        yield "Sure, that is a good point and one worth making at some length. "
        yield "And "
        while not cancel.is_set():
            await asyncio.sleep(0.005)


async def test_a_reply_cancelled_unplayed_leaves_the_one_playing_a_reply(client):
    """The service cancels the reply localvoice starts for a backchannel; the reply before it
    still plays, so the next sound over it is still transcribed expecting a backchannel."""
    stt = FakeStt("mhm")
    c = await client(SERVER_VAD, stt=stt, llm=SpeaksThenStalls("A long reply. " * 30))  # 4.2 s
    await c.speak(600)
    await c.pause(500)
    await c.wait_for("response.done")  # generated; it plays for seconds yet
    first_reply = len(c.of("response.audio.delta"))
    await c.speak(300)
    await c.pause(500)
    await c.wait_for("response.audio.delta", first_reply + 1)
    await c.send({"type": "response.cancel"})  # the reply to the backchannel, with audio sent
    await c.wait_for("response.done", 2)
    assert c.of("response.done")[1]["response"]["status"] == "cancelled"
    await c.pause(REPLY_GRACE_MS + 300)  # the first reply still plays for a second or more
    await c.speak(300)
    await c.pause(500)
    await c.wait_for("conversation.item.input_audio_transcription.completed", 3)
    assert stt.options[-1] == SttOptions(phrases=BACKCHANNEL_PROMPT)


async def test_the_backchannel_prompt_is_english_only_and_keeps_the_phrase_list(client):
    stt = FakeStt()
    c = await client(SERVER_VAD, stt=stt)
    for language, expected in (
        ("en-US", SttOptions(("en",), (*BACKCHANNEL_PROMPT, "Contoso"))),
        ("fr-FR", SttOptions(("fr",), ("Contoso",))),
    ):
        transcription = {"model": "whisper-1", "language": language, "phrase_list": ["Contoso"]}
        await c.send(
            {"type": "session.update", "session": {"input_audio_transcription": transcription}}
        )
        stt.options.clear()
        c.events.clear()
        await speak_over_the_reply(c, quiet_ms_first=0)
        assert stt.options[-1] == expected


async def room(c: Any, ms: int, noise_rms: float, rng: np.random.Generator, voice: bool) -> None:
    """``ms`` of a room's white noise at 24 kHz, with a 300 Hz 'voice' over it if ``voice``."""
    for _ in range(ms // 100):
        t = np.arange(2400) / 24000
        audio = rng.standard_normal(t.size) * noise_rms
        if voice:
            audio = audio + 0.3 * np.sin(2 * np.pi * 300 * t)
        pcm = (audio * 32767).astype("<i2").tobytes()
        await c.send({"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm).decode()})
        await asyncio.sleep(0.02)


@pytest.mark.parametrize(("noise_rms", "noisy"), [(0.02, True), (0.0003, False)])
async def test_with_noise_reduction_a_noisy_room_is_transcribed_as_noisy(client, noise_rms, noisy):
    stt = FakeStt()
    c = await client(SERVER_VAD, stt=stt)
    suppression = {"type": "azure_deep_noise_suppression"}
    await c.send(
        {"type": "session.update", "session": {"input_audio_noise_reduction": suppression}}
    )
    rng = np.random.default_rng(3)
    await room(c, 1000, noise_rms, rng, voice=False)
    await room(c, 600, noise_rms, rng, voice=True)
    await room(c, 600, noise_rms, rng, voice=False)
    await c.wait_for("conversation.item.input_audio_transcription.completed")
    assert stt.options[-1] is not None
    assert stt.options[-1].noisy is noisy
