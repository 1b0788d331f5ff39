"""Noise suppression and echo cancellation settings, and echo cancellation that works.

The echo test plays the part of a laptop (a server started with ``--echo-mute``; without it,
Speex's canceller alone has not converged in the first seconds of a reply and the assistant
still interrupts itself — the default keeps same-level barge-in working instead, see
docs/localvoice.md): everything the assistant says comes back into the
microphone 150 ms later at a third of its level (about -10 dB), mixed with a little noise,
while the microphone streams in real time.
"""

from __future__ import annotations

import asyncio
import base64
import time

import numpy as np
import pytest

from tests.localvoice.test_conformance import VAD
from tests.support.audio import silence, speak, word_error_rate
from tests.support.localvoice import LocalVoiceProcess, healthz, next_event, voicelive_session

pytestmark = [pytest.mark.integration, pytest.mark.models]

NS = {"type": "azure_deep_noise_suppression"}
AEC = {"type": "server_echo_cancellation"}
RATE = 24000
FRAME = RATE * 20 // 1000  # samples per 20 ms append
ECHO_DELAY_MS = 150
ECHO_GAIN = 0.33


async def test_settings_are_accepted_and_echoed(localvoice_models):
    async with voicelive_session(localvoice_models) as conn:
        await conn.session.update(
            session={"input_audio_noise_reduction": NS, "input_audio_echo_cancellation": AEC}
        )
        session = (await next_event(conn, "session.updated")).session
        assert session["input_audio_noise_reduction"] == NS
        assert session["input_audio_echo_cancellation"] == AEC
        await conn.session.update(session={"input_audio_noise_reduction": {"type": "near_field"}})
        session = (await next_event(conn, "session.updated")).session
        assert session["input_audio_noise_reduction"] == {"type": "near_field"}
        assert session["input_audio_echo_cancellation"] == AEC  # untouched
        await conn.session.update(session={"input_audio_noise_reduction": None})
        session = (await next_event(conn, "session.updated")).session
        assert session["input_audio_noise_reduction"] is None
        # Raw: the SDK's typed model would rewrite the type to its one constant.
        bad = {"input_audio_echo_cancellation": {"type": "magic"}}
        await conn.send({"type": "session.update", "session": bad})
        err = (await next_event(conn, "error")).error
        assert err.code == "invalid_value"
        assert err.param == "session.input_audio_echo_cancellation.type"


class Laptop:
    """A microphone that hears the user plus the loudspeaker's echo of the assistant."""

    def __init__(self, delay_ms: int, gain: float) -> None:
        self.delay = RATE * delay_ms // 1000
        self.gain = gain
        self.speaker = np.zeros(0, dtype=np.float32)  # what the speaker plays, on the mic clock
        self.clock = 0  # samples sent so far
        self.rng = np.random.default_rng(7)

    def play(self, pcm: bytes) -> None:
        """An audio delta arrived: it is played after what is queued, or right away."""
        audio = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
        start = max(self.clock + self.delay, self.speaker.size)
        if self.speaker.size < start:
            self.speaker = np.concatenate([self.speaker, np.zeros(start - self.speaker.size)])
        self.speaker = np.concatenate([self.speaker, audio]).astype(np.float32)

    def clear(self) -> None:
        """Playback stopped (the response was cancelled)."""
        self.speaker = self.speaker[: self.clock + self.delay]

    def frame(self, user: np.ndarray) -> bytes:
        """The next 20 ms of microphone signal."""
        echo = np.zeros(FRAME, dtype=np.float32)
        part = self.speaker[self.clock : self.clock + FRAME]
        echo[: part.size] = part * self.gain
        # A second, weaker reflection 12 ms later, as off a wall.
        late = self.speaker[max(0, self.clock - 288) : max(0, self.clock - 288) + FRAME]
        echo[: late.size] += late * self.gain * 0.3
        mic = user + echo + self.rng.standard_normal(FRAME).astype(np.float32) * 0.002
        self.clock += FRAME
        return (np.clip(mic, -1, 1) * 32767).astype("<i2").tobytes()


async def talk_over_laptop(endpoint: str, echo_cancellation: bool) -> tuple[list, str]:
    """Ask for a long answer, stream the mic in real time until the reply ends; all events."""
    session = {
        "turn_detection": {**VAD, "silence_duration_ms": 500},
        "input_audio_transcription": {"model": "whisper-1"},
        "instructions": "Answer in three or four full sentences.",
        "input_audio_echo_cancellation": AEC if echo_cancellation else None,
    }
    laptop = Laptop(ECHO_DELAY_MS, ECHO_GAIN)
    question = speak("Please describe the city of Paris for me.")
    user = np.frombuffer(silence(300) + question + silence(200), dtype="<i2") / 32768.0
    seen: list = []
    async with voicelive_session(endpoint, session) as conn:
        done = asyncio.Event()
        finished_at: list[float] = []

        async def receive() -> None:
            while True:
                event = await conn.recv()
                seen.append(event)
                if event.type == "response.audio.delta":
                    laptop.play(base64.b64decode(event["delta"]))
                elif event.type == "response.done":
                    if event.response.status == "cancelled":
                        laptop.clear()
                    finished_at.append(time.perf_counter())
                    if len(finished_at) >= 1 and event.response.status == "completed":
                        done.set()

        receiver = asyncio.create_task(receive())
        started = time.perf_counter()
        sent = 0
        try:
            async with asyncio.timeout(120):
                while True:
                    chunk = user[sent : sent + FRAME]
                    chunk = np.pad(chunk, (0, FRAME - chunk.size)).astype(np.float32)
                    await conn.input_audio_buffer.append(
                        audio=base64.b64encode(laptop.frame(chunk)).decode()
                    )
                    sent += FRAME
                    # Real time: the echo only exists while the speaker is playing.
                    await asyncio.sleep(max(0.0, started + sent / RATE - time.perf_counter()))
                    playing = laptop.clock < laptop.speaker.size + RATE // 2
                    if done.is_set() and not playing:
                        break
                    if finished_at and time.perf_counter() - finished_at[-1] > 8 and not playing:
                        break
        finally:
            receiver.cancel()
    reply = " ".join(e.transcript for e in seen if e.type == "response.audio_transcript.done")
    return seen, reply


def user_turns(seen: list) -> list[str]:
    return [
        e.transcript
        for e in seen
        if e.type == "conversation.item.input_audio_transcription.completed"
    ]


@pytest.fixture(scope="module")
def localvoice_echo_mute():
    """A localvoice with ``--echo-mute`` (the VAD's input muted while a reply plays)."""
    server = LocalVoiceProcess("--echo-mute").start(timeout=180)
    try:
        yield server.endpoint
    finally:
        server.stop()


async def test_echo_cancellation_keeps_the_assistant_from_hearing_itself(localvoice_echo_mute):
    seen, reply = await talk_over_laptop(localvoice_echo_mute, echo_cancellation=True)
    turns = user_turns(seen)
    print(f"\nwith AEC: user turns {turns!r}; reply {reply[:120]!r}")
    statuses = [e.response.status for e in seen if e.type == "response.done"]
    assert statuses[0] == "completed", statuses
    assert len(turns) == 1, turns  # only the question; none of the assistant's own words
    assert "paris" in turns[0].lower()
    assert [e.type for e in seen].count("input_audio_buffer.speech_started") == 1


async def test_without_echo_cancellation_the_assistant_interrupts_itself(localvoice_models):
    seen, reply = await talk_over_laptop(localvoice_models, echo_cancellation=False)
    turns = user_turns(seen)
    print(f"\nwithout AEC: user turns {turns!r}")
    statuses = [
        (e.response.status, getattr(e.response.status_details, "reason", None))
        for e in seen
        if e.type == "response.done"
    ]
    assert ("cancelled", "turn_detected") in statuses, statuses
    assert len(turns) > 1, turns  # its own voice came back as a user turn


async def test_noise_reduction_hands_a_noisy_room_to_whisper_base(localvoice_models):
    """With noise reduction on, speech from a noisy room is transcribed by Whisper base (loaded
    in the background on the first noisy utterance): fewer words lost (docs/benchmarks.md)."""
    session = {
        "turn_detection": {
            "type": "server_vad",
            "silence_duration_ms": 500,
            "create_response": False,
        },
        "input_audio_transcription": {"model": "whisper-1"},
        "input_audio_noise_reduction": NS,
    }
    rng = np.random.default_rng(11)
    first = np.frombuffer(speak("Please set a timer for ten minutes"), dtype="<i2") / 32768.0
    second = np.frombuffer(speak("How many people live in London"), dtype="<i2") / 32768.0
    noise_rms = float(np.sqrt(np.mean(first**2) / 10 ** (15 / 10)))  # 15 dB below the voice

    def in_the_room(speech: np.ndarray, before_ms: int) -> str:
        audio = np.concatenate([np.zeros(RATE * before_ms // 1000), speech, np.zeros(RATE)])
        audio = audio + rng.standard_normal(audio.size) * noise_rms
        return base64.b64encode((audio * 32767).astype("<i2").tobytes()).decode()

    before = healthz(localvoice_models)["models"]["stt_noisy_room_transcriptions"]
    seen: list = []
    async with voicelive_session(localvoice_models, session) as conn:
        await conn.input_audio_buffer.append(audio=in_the_room(first, 1500))
        done = "conversation.item.input_audio_transcription.completed"
        await next_event(conn, done, timeout=30, seen=seen)
        await asyncio.sleep(3)  # Whisper base loads in the background meanwhile
        await conn.input_audio_buffer.append(audio=in_the_room(second, 500))
        heard = (await next_event(conn, done, timeout=30, seen=seen)).transcript
    after = healthz(localvoice_models)["models"]["stt_noisy_room_transcriptions"]
    print(f"\nheard in the noisy room: {heard!r}; base transcribed {after - before}")
    assert after > before
    assert word_error_rate("How many people live in London", heard) <= 0.34, heard
