"""Backchannels vs real interruptions during replies, through the real consumer, SDK and localvoice.

A client that behaves like the talk page (it acknowledges audio and keeps a playback clock)
asks for long replies and, while one plays, speaks a probe in real time: a backchannel
("mhm", "uh-huh", "okay", several espeak-ng voices, and a cough-like noise burst) or a real
interruption ("wait, stop", "what about tomorrow"). It measures, from the probe's first sample:

* **duck**: ``playback.duck`` arrives (the page lowers the reply's volume);
* **stop**: the first of ``playback.hold`` (the page pauses) and ``playback.clear`` (barge-in);
* **decided**: ``playback.resume`` (a backchannel) or ``playback.clear`` (a barge-in);

and whether a backchannel let the reply go on (resumed, never cleared).

    .venv/bin/python -m bench.backchannels                      # 20 + 20
    .venv/bin/python -m bench.backchannels --backchannels 10 --interruptions 10 --json out.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tests.support.audio import PlaybackClock, silence, speak, trim_silence
from tests.support.browser import Browser, Socket
from tests.support.localvoice import LocalVoiceProcess
from tests.support.stats import percentile
from tests.support.talking import FRAME_BYTES, FRAME_MS, model_worker, stream

PASSWORD = "bench-backchannels-1"
SETUP = f"""
from django.contrib.auth.models import User
from assistant.models import AssistantProfile
profile = AssistantProfile.objects.create(
    name="Storyteller", voice="alloy", input_transcription_language="en-US",
    instructions="You are a friendly guide. Answer every question with six short sentences.",
    backchannels={os.environ.get("BENCH_BACKCHANNELS", "1") == "1"},
)
profile.users.add(User.objects.create_user("listener", password={PASSWORD!r}))
"""
QUESTIONS = [
    "Tell me about the history of Paris",
    "Tell me about the oceans of the world",
    "Tell me about how bread is made",
    "Tell me about the planets of the solar system",
]
VOICES = ["en-us", "en-gb", "en-us+f3", "en-us+m3", "en-gb+f2"]
BACKCHANNELS = ["mhm", "uh-huh", "yeah", "okay", "right", "mm-hmm", "sure", "yep", "cough"]
# What espeak-ng is given for the sound: it reads "mhm" as the letters M, H, M.
ESPEAK_TEXT = {"mhm": "mm hmm", "uh-huh": "uh huh", "mm-hmm": "mmm hmm"}
INTERRUPTIONS = [
    "wait, stop",
    "hold on a second",
    "stop please",
    "no, that is wrong",
    "what about tomorrow",
    "can you repeat that",
    "sorry, what did you say",
    "actually, tell me about Paris",
    "wait, I have a question",
    "stop talking please",
]
PROBE_TIMEOUT_S = 8.0
ACK_BYTES = 96_000  # static/js/voice-socket.js AUDIO_ACK_BYTES


def cough(seed: int, rate: int = 24000) -> bytes:
    """A cough-like burst: 250 ms of low-passed noise with a fast attack and a decay."""
    rng = np.random.default_rng(seed)
    n = rate // 4
    noise = np.convolve(rng.standard_normal(n), np.ones(6) / 6, mode="same")
    envelope = np.minimum(np.arange(n) / (0.01 * rate), 1.0) * np.exp(-np.arange(n) / (0.08 * rate))
    pcm = noise / np.max(np.abs(noise)) * envelope * 0.5 * 32767
    return pcm.astype("<i2").tobytes()


def probe_audio(text: str, index: int) -> bytes:
    if text == "cough":
        return cough(index)
    spoken = ESPEAK_TEXT.get(text, text)
    return trim_silence(speak(spoken, voice=VOICES[index % len(VOICES)]))


@dataclass
class Probe:
    """One probe spoken over a reply."""

    kind: str  # backchannel | interruption
    text: str
    voice: str
    speech_ms: float
    duck_ms: float | None = None
    stop_ms: float | None = None
    decided_ms: float | None = None
    verdict: str = "none"  # backchannel | barge_in | none
    heard: str = ""  # what the page was shown of it (a backchannel shows nothing)


class Page:
    """The talk page's part: acknowledges audio, keeps a playback clock, notes the messages."""

    def __init__(self, socket: Socket) -> None:
        self.socket = socket
        self.received = 0
        self.acked = 0
        self.playback = PlaybackClock()
        self.events: list[tuple[float, dict[str, Any]]] = []
        self.changed = asyncio.Event()
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while True:
            frame = await self.socket.next_frame(timeout=120)
            now = time.monotonic()
            if frame.kind == "close":
                return
            if frame.kind == "binary":
                self.received += len(frame.data)
                self.playback.played(len(frame.data), now)
                if self.received - self.acked >= ACK_BYTES:  # as voice-socket.js does
                    self.acked = self.received
                    await self.socket.send_json({"type": "audio.ack", "bytes": self.received})
                continue
            message = frame.data
            if message["type"] == "playback.clear":
                self.playback.until = now
            self.events.append((now, message))
            self.changed.set()

    def since(self, started: float, kind: str) -> float | None:
        return next((t for t, m in self.events if t >= started and m["type"] == kind), None)

    async def wait_for(self, started: float, *kinds: str, within: float) -> str | None:
        deadline = time.monotonic() + within
        while True:
            for t, message in self.events:
                if t >= started and message["type"] in kinds:
                    return str(message["type"])
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), remaining)
            except TimeoutError:
                return None

    def remaining_s(self) -> float:
        return self.playback.until - time.monotonic()

    def reply_running(self) -> bool:
        """A reply started (audio.start) and its response.done has not come yet."""
        kinds = [m["type"] for _, m in self.events if m["type"] in ("audio.start", "response.done")]
        return bool(kinds) and kinds[-1] == "audio.start"

    def playing(self) -> bool:
        """Worth speaking over: the reply runs upstream, or seconds of it are still to play."""
        return self.reply_running() or self.remaining_s() > 3.0


async def long_reply(page: Page, question: str) -> bool:
    """Ask for a long reply; True once it has played for a second with seconds to go."""
    asked = time.monotonic()
    await stream(page.socket, silence(200) + speak(question) + silence(900))
    if await page.wait_for(asked, "audio.start", within=60) is None:
        return False
    await asyncio.sleep(1.0)
    return page.playing()


async def settle(page: Page) -> None:
    """Wait until nothing plays and no reply runs."""
    for _ in range(120):
        done = [m for _, m in page.events if m["type"] in ("response.done", "audio.start")]
        idle = not done or done[-1]["type"] == "response.done"
        if idle and page.remaining_s() < 0:
            return
        await asyncio.sleep(0.25)


async def speak_probe(page: Page, probe: Probe, pcm: bytes) -> None:
    onset = time.monotonic()
    sender = asyncio.create_task(stream(page.socket, pcm + silence(1500)))
    outcome = await page.wait_for(
        onset, "playback.resume", "playback.clear", within=PROBE_TIMEOUT_S
    )
    await sender
    ms = lambda t: None if t is None else (t - onset) * 1000  # noqa: E731
    probe.duck_ms = ms(page.since(onset, "playback.duck"))
    hold, clear = page.since(onset, "playback.hold"), page.since(onset, "playback.clear")
    stops = [t for t in (hold, clear) if t is not None]
    probe.stop_ms = ms(min(stops)) if stops else None
    probe.heard = "".join(
        str(m.get("delta", ""))
        for t, m in page.events
        if t >= onset and m["type"] == "transcript.user.delta"
    )
    if outcome == "playback.resume":
        probe.verdict = "backchannel"
        probe.decided_ms = ms(page.since(onset, "playback.resume"))
    elif outcome == "playback.clear":
        probe.verdict = "barge_in"
        probe.decided_ms = ms(clear)


async def run(backchannels: int, interruptions: int, logs: Path) -> list[Probe]:
    localvoice = LocalVoiceProcess(log_dir=logs).start(timeout=300)
    probes: list[Probe] = []
    plan = [("backchannel", BACKCHANNELS[i % len(BACKCHANNELS)], i) for i in range(backchannels)]
    plan += [
        ("interruption", INTERRUPTIONS[i % len(INTERRUPTIONS)], i) for i in range(interruptions)
    ]
    try:
        extra = {
            "ASSISTANT_LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "INFO"),
            # Two busy cores can take longer than the default 15 s between two sentences.
            "VOICE_REPLY_STALL_SECONDS": "60",
        }
        with model_worker(
            "bc", logs, upstream_url=localvoice.endpoint, setup=SETUP, extra=extra
        ) as worker:
            await measure(worker.daphne.base_url, worker.daphne.ws_url("/ws/voice/"), plan, probes)
    finally:
        localvoice.stop()
    return probes


async def measure(
    base_url: str, ws_url: str, plan: list[tuple[str, str, int]], probes: list[Probe]
) -> None:
    """Speak the plan's probes over long replies, one logged-in page."""
    async with Browser(base_url) as browser:
        await browser.login("listener", PASSWORD)
        socket = await browser.websocket(ws_url)
        await socket.expect("session.ready", timeout=30)
        page = Page(socket)
        asked = 0
        playing = False
        for kind, text, index in plan:
            while not playing:
                await settle(page)
                playing = await long_reply(page, QUESTIONS[asked % len(QUESTIONS)])
                asked += 1
            pcm = probe_audio(text, index)
            voice = "noise" if text == "cough" else VOICES[index % len(VOICES)]
            probe = Probe(kind, text, voice, len(pcm) / 48)
            await speak_probe(page, probe, pcm)
            probes.append(probe)
            print(json.dumps(asdict(probe)), flush=True)
            playing = probe.verdict == "backchannel" and page.playing()
            if not playing:
                await asyncio.sleep(1.0)
        page.task.cancel()
        await socket.close()


def summary(probes: list[Probe]) -> dict[str, Any]:
    def stats(values: list[float | None]) -> dict[str, float | int]:
        got = [v for v in values if v is not None]
        if not got:
            return {"n": 0}
        return {
            "n": len(got),
            "p50": round(statistics.median(got)),
            "p95": round(percentile(got, 95)),
            "max": round(max(got)),
        }

    bc = [p for p in probes if p.kind == "backchannel"]
    real = [p for p in probes if p.kind == "interruption"]

    def pct(part: int, whole: int) -> float:
        return round(100 * part / max(whole, 1), 1)

    return {
        "backchannels": len(bc),
        # Went on: never cleared (a sound the VAD did not even take for speech counts too).
        "reply_goes_on_pct": pct(sum(p.verdict != "barge_in" for p in bc), len(bc)),
        "backchannels_not_heard_as_speech": sum(p.verdict == "none" for p in bc),
        "backchannel_misses": [
            f"{p.text} ({p.voice}): {p.heard!r}" for p in bc if p.verdict == "barge_in"
        ],
        "backchannel_duck_ms": stats([p.duck_ms for p in bc]),
        "backchannel_pause_ms": stats(
            [
                p.decided_ms - p.stop_ms
                for p in bc
                if p.verdict == "backchannel" and p.decided_ms and p.stop_ms
            ]
        ),
        "backchannel_decided_ms": stats([p.decided_ms for p in bc if p.verdict == "backchannel"]),
        "interruptions": len(real),
        "interruption_barged_in_pct": pct(sum(p.verdict == "barge_in" for p in real), len(real)),
        "interruption_duck_ms": stats([p.duck_ms for p in real]),
        "interruption_stop_ms": stats([p.stop_ms for p in real]),
        "interruption_cleared_ms": stats([p.decided_ms for p in real if p.verdict == "barge_in"]),
        "frame_ms": FRAME_MS,
        "frame_bytes": FRAME_BYTES,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backchannels", type=int, default=20)
    parser.add_argument("--interruptions", type=int, default=20)
    parser.add_argument("--json", type=Path, help="write the probes and the summary here")
    parser.add_argument("--summarise", type=Path, help="only summarise a --json of a past run")
    args = parser.parse_args()
    if args.summarise:
        saved = json.loads(args.summarise.read_text())["probes"]
        print(json.dumps(summary([Probe(**p) for p in saved]), indent=2))
        return
    logs = Path(tempfile.mkdtemp(prefix="bench-backchannels-"))
    probes = asyncio.run(run(args.backchannels, args.interruptions, logs))
    result = summary(probes)
    print(json.dumps(result, indent=2))
    print(f"logs: {logs}")
    if args.json:
        args.json.write_text(
            json.dumps({"summary": result, "probes": [asdict(p) for p in probes]}, indent=2)
        )


if __name__ == "__main__":
    main()
