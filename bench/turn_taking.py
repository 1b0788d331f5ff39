"""Turn taking: false cut-offs and end of speech -> first audio, server VAD vs semantic end of turn.

Two sets, spoken by several synthetic voices (the bundled Piper voice at three speeds, and
espeak-ng voices reported apart: Smart Turn judges prosody, and espeak's is robotic):

* **paused**: a sentence with a 600-1500 ms pause in the middle ("I'd like to book a table
  for ... four people tomorrow"), in two styles: each part synthesised on its own (``parts``:
  the first part ends like a finished sentence), and the whole sentence synthesised once and
  cut at the word (``cut``: the voice is mid-sentence where it stops);
* **complete**: whole sentences.

Each utterance is streamed in real time through the real SDK into a fresh session of one
localvoice, once per configuration, configurations interleaved utterance by utterance. A
**false cut-off** is a commit before the sentence's last word was sent (a reply would start
in the pause). **Latency** is the end of the last speech sample sent -> the first
``response.audio.delta`` (the response is then cancelled: the reply's length does not matter).
The detector's CPU comes from ``/healthz`` (thread CPU time of Smart Turn's calls).

    taskset -c 0,1 .venv/bin/python -m bench.turn_taking       # Piper 30 + 30, espeak 10 + 10
    .venv/bin/python -m bench.turn_taking --per-set 6 --voices piper      # quick look
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import functools
import json
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from bench.speech_sets import synth
from bench.turn_latency import machine_load
from tests.support.localvoice import LocalVoiceProcess, healthz, voicelive_session
from tests.support.stats import percentile

RATE = 24000
LEAD_MS = 300
TRAIL_MS = 4000  # after the sentence: a reply has this long to start
FRAME_MS = 20

# (first part, second part): a natural place to stop and think.
PAUSED = [
    ("I would like to book a table for", "four people tomorrow evening"),
    ("Can you remind me to call", "my sister at six"),
    ("What is the weather going to be like in", "Berlin this weekend"),
    ("Please add milk and", "some eggs to my shopping list"),
    ("How long does it take to drive from", "Paris to Lyon"),
    ("Set an alarm for", "seven thirty in the morning"),
    ("I need to buy a present for", "my brother's birthday"),
    ("Could you tell me the opening hours of", "the city museum"),
    ("Send a message to Peter saying that", "I will be late"),
    ("What was the name of the actor who played", "the captain in that film"),
    ("Turn off the lights in the", "living room please"),
    ("How many grams of flour do I need for", "a chocolate cake"),
]
COMPLETE = [
    "What is the capital of France?",
    "Please set a timer for ten minutes.",
    "How far is the moon from the earth?",
    "Turn off the lights in the kitchen.",
    "Who wrote the novel Pride and Prejudice?",
    "Add bread to my shopping list.",
    "What time does the pharmacy close today?",
    "Play some relaxing piano music.",
    "How many legs does a spider have?",
    "Book a table for two at eight tonight.",
    "What is the boiling point of water?",
    "Call my mother on her mobile phone.",
]
VOICE_SETS = {
    "piper": ["piper:joe@0.9", "piper:joe@1.0", "piper:joe@1.15"],
    "espeak": ["en-us", "en-gb", "en-us+f3"],
}
PAUSES_MS = [600, 800, 1000, 1200, 1500]


def _semantic(silence_ms: int, level: str) -> dict[str, Any]:
    return {
        "type": "azure_semantic_vad",
        "silence_duration_ms": silence_ms,
        "end_of_utterance_detection": {
            "model": "semantic_detection_v1",
            "threshold_level": level,
            "timeout_ms": 2000,
        },
    }


CONFIGS: dict[str, dict[str, Any]] = {
    "server_vad_500": {"type": "server_vad", "silence_duration_ms": 500},
    "semantic": _semantic(500, "default"),
    # Not in the default run (--configs): a stricter level, and a shorter pause.
    "semantic_high": _semantic(500, "high"),
    "semantic_300": _semantic(300, "default"),
}
DEFAULT_CONFIGS = "server_vad_500,semantic"
DETECTOR_COUNTERS = ("end_of_turn_checks", "end_of_turn_cpu_ms", "words_checks", "words_cpu_ms")


@dataclass
class Utterance:
    """One test utterance: its audio parts (24 kHz PCM16) with the pause between them."""

    kind: str  # "paused" or "complete"
    voice: str
    text: str
    parts: list[bytes]
    pause_ms: int


@dataclass
class Outcome:
    """What one configuration did with one utterance."""

    config: str
    utterance: Utterance
    commits_before_end: int
    latency_ms: float | None  # end of speech -> first audio (None: no reply in time)


def _speech(text: str, voice: str) -> npt.NDArray[np.float32]:
    """Trimmed float audio at 24 kHz; ``piper:NAME@SCALE`` speaks at another length scale."""
    if voice.startswith("piper:"):
        from bench.speech_sets import _piper

        name, _, scale = voice[6:].partition("@")
        tts: Any = _piper()
        pcm = tts.synthesize(text, voice=name, length_scale=float(scale or 1.0))
        audio = resampled(pcm.astype(np.float32) / 32768.0, tts.sample_rate(name), RATE)
    else:
        audio = resampled(synth(text, voice), 16000, RATE)
    loud = np.flatnonzero(np.abs(audio) > 0.01)
    audio = audio[loud[0] : loud[-1] + 1] if loud.size else audio
    return np.asarray(audio, dtype=np.float32)


def _pcm(audio: npt.NDArray[np.float32]) -> bytes:
    return (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()


def cut_at_word(first: str, second: str, voice: str) -> list[bytes]:
    """The whole sentence spoken once, cut where ``first`` ends: the voice is mid-sentence there.

    The first part spoken alone ends like a finished sentence (falling pitch, final
    lengthening); a person who stops to think mostly does not. Where ``first`` ends is found
    with Whisper base's word timestamps (when it hears as many words as were written), else
    from the parts' lengths; the cut is then the quietest 30 ms near there.
    """
    whole = _speech(f"{first} {second}", voice)
    words = _word_ends(whole)
    count = len(first.split())
    if len(words) == count + len(second.split()):
        guess, reach = (words[count - 1][1] + words[count][0]) // 2, RATE * 40 // 1000
    else:
        alone, rest = len(_speech(first, voice)), len(_speech(second, voice))
        guess, reach = len(whole) * alone // (alone + rest), RATE * 120 // 1000
    window = RATE * 30 // 1000
    lo, hi = max(window, guess - reach), min(len(whole) - window, guess + reach)
    energy = np.convolve(whole.astype(np.float64) ** 2, np.ones(window), mode="same")
    cut = lo + int(np.argmin(energy[lo:hi])) if hi > lo else guess
    return [_pcm(whole[:cut]), _pcm(whole[cut:])]


def resampled(audio: npt.NDArray[np.float32], source: int, target: int) -> npt.NDArray[np.float32]:
    import soxr

    return np.asarray(soxr.resample(audio, source, target), dtype=np.float32)


@functools.cache
def _whisper() -> Any:
    from localvoice.pipeline.stt import WhisperStt

    return WhisperStt("base").multilingual().model


def _word_ends(audio: npt.NDArray[np.float32]) -> list[tuple[int, int]]:
    """(start, end) sample of each word Whisper base hears in ``audio`` (24 kHz)."""
    segments, _ = _whisper().transcribe(
        resampled(audio, RATE, 16000), language="en", word_timestamps=True, beam_size=1
    )
    return [(int(w.start * RATE), int(w.end * RATE)) for seg in segments for w in (seg.words or [])]


def build_sets(
    sizes: dict[str, int], pause_styles: tuple[str, ...] = ("parts",)
) -> list[Utterance]:
    """``sizes[set]`` paused (per style) and as many complete utterances per voice set."""
    out: list[Utterance] = []
    for name, per_set in sizes.items():
        voices = VOICE_SETS[name]
        for i in range(per_set):
            voice = voices[i % len(voices)]
            first, second = PAUSED[i % len(PAUSED)]
            pause = PAUSES_MS[i % len(PAUSES_MS)]
            text = f"{first} ... {second}"
            if "parts" in pause_styles:
                parts = [_pcm(_speech(first, voice)), _pcm(_speech(second, voice))]
                out.append(Utterance("paused", voice, text, parts, pause))
            if "cut" in pause_styles:
                parts = cut_at_word(first, second, voice)
                out.append(Utterance("paused_cut", voice, text, parts, pause))
            text = COMPLETE[i % len(COMPLETE)]
            out.append(Utterance("complete", voice, text, [_pcm(_speech(text, voice))], 0))
    return out


def _silence(ms: int) -> bytes:
    return bytes(RATE * ms // 1000 * 2)


async def _stream(conn: Any, pcm: bytes, started: float, offset_ms: float) -> None:
    step = RATE * 2 * FRAME_MS // 1000
    for index in range(0, len(pcm), step):
        due = started + (offset_ms + (index + step) / 2 / RATE * 1000) / 1000
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        chunk = base64.b64encode(pcm[index : index + step]).decode()
        await conn.input_audio_buffer.append(audio=chunk)


async def run_one(endpoint: str, config: str, utt: Utterance, label: str = "") -> Outcome:
    """Stream one utterance into a fresh session; count early commits, time the first audio."""
    session = {"turn_detection": CONFIGS[config], "instructions": "Answer in one short sentence."}
    audio = _silence(LEAD_MS)
    for index, part in enumerate(utt.parts):
        audio += part + (_silence(utt.pause_ms) if index < len(utt.parts) - 1 else b"")
    speech_end_ms = len(audio) / 2 / RATE * 1000
    audio += _silence(TRAIL_MS)
    async with voicelive_session(endpoint, session) as conn:
        started = time.perf_counter()
        sender = asyncio.create_task(_stream(conn, audio, started, 0.0))
        speech_end = started + speech_end_ms / 1000
        early = 0
        first_audio: float | None = None
        try:
            async with asyncio.timeout(speech_end_ms / 1000 + TRAIL_MS / 1000 + 1.0):
                while first_audio is None or time.perf_counter() < speech_end:
                    event = await conn.recv()
                    now = time.perf_counter()
                    if event.type == "input_audio_buffer.committed" and now < speech_end:
                        early += 1
                    elif event.type == "response.audio.delta" and now >= speech_end:
                        first_audio = first_audio or now
        except TimeoutError:
            pass
        sender.cancel()
        latency = None if first_audio is None else (first_audio - speech_end) * 1000
        return Outcome(label or config, utt, early, latency)


def _summary(outcomes: list[Outcome]) -> dict[str, Any]:
    complete = [o for o in outcomes if o.utterance.kind == "complete"]
    lat = [o.latency_ms for o in complete if o.latency_ms is not None]
    uncut = [o for o in outcomes if o.utterance.kind != "complete" and not o.commits_before_end]
    lat_paused = [o.latency_ms for o in uncut if o.latency_ms is not None]
    cutoffs: dict[str, Any] = {}
    for kind, label in (("paused", "false_cutoffs"), ("paused_cut", "false_cutoffs_cut")):
        paused = [o for o in outcomes if o.utterance.kind == kind]
        if paused:
            cut = sum(1 for o in paused if o.commits_before_end)
            cutoffs[label] = f"{cut}/{len(paused)}"
            cutoffs[f"{label}_rate"] = round(cut / len(paused), 3)
    return {
        **cutoffs,
        "complete_cut_early": sum(1 for o in complete if o.commits_before_end),
        "complete_p50_ms": round(percentile(lat, 50)) if lat else None,
        "complete_p95_ms": round(percentile(lat, 95)) if lat else None,
        "complete_no_reply": len(complete) - len(lat),
        "paused_uncut_p50_ms": round(percentile(lat_paused, 50)) if lat_paused else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-set", type=int, default=30, help="paused and complete, Piper set")
    parser.add_argument("--espeak-per-set", type=int, default=10, help="the same, espeak set")
    parser.add_argument("--voices", default="piper,espeak", help="voice sets: piper, espeak")
    parser.add_argument("--configs", default=DEFAULT_CONFIGS, help=f"of {', '.join(CONFIGS)}")
    parser.add_argument("--endpoint", help="use this localvoice instead of starting one")
    parser.add_argument(
        "--pause-styles",
        default="parts,cut",
        help="parts: each part spoken alone (it ends like a sentence); cut: the whole sentence "
        "spoken once and cut at the word (mid-sentence prosody)",
    )
    parser.add_argument(
        "--baseline-args",
        help="also run every configuration on a second localvoice started with these arguments "
        "(e.g. --no-words-end-of-turn), interleaved; its results are labelled CONFIG@baseline",
    )
    parser.add_argument("--json", action="store_true", help="print every outcome")
    args = parser.parse_args()
    voice_sets = args.voices.split(",")
    configs = args.configs.split(",")
    built = time.perf_counter()
    sizes = {"piper": args.per_set, "espeak": args.espeak_per_set}
    styles = tuple(args.pause_styles.split(","))
    utterances = build_sets({name: sizes[name] for name in voice_sets}, styles)
    print(f"{len(utterances)} utterances synthesised in {time.perf_counter() - built:.0f} s")
    servers = []
    if not args.endpoint:
        servers.append(LocalVoiceProcess("--no-auth").start(timeout=300))
    endpoints = {"": args.endpoint or servers[0].endpoint}
    if args.baseline_args:
        servers.append(LocalVoiceProcess("--no-auth", *args.baseline_args.split()).start(300))
        endpoints["@baseline"] = servers[-1].endpoint
    runs = [(config, suffix) for config in configs for suffix in endpoints]
    labels = [config + suffix for config, suffix in runs]
    outcomes: list[Outcome] = []
    checks_cpu: dict[str, float] = {}
    stream_s = dict.fromkeys(labels, 0.0)
    try:
        started = time.perf_counter()
        for utt in utterances:
            for config, suffix in runs:
                label, endpoint = config + suffix, endpoints[suffix]
                before = healthz(endpoint)["models"]
                t0 = time.perf_counter()
                outcomes.append(asyncio.run(run_one(endpoint, config, utt, label)))
                stream_s[label] += time.perf_counter() - t0
                after = healthz(endpoint)["models"]
                for key in DETECTOR_COUNTERS:
                    checks_cpu[f"{label}:{key}"] = checks_cpu.get(f"{label}:{key}", 0.0) + (
                        after.get(key, 0) - before.get(key, 0)
                    )
        elapsed = time.perf_counter() - started
    finally:
        for server in servers:
            server.stop()
    print(f"ran in {elapsed:.0f} s; load after: {json.dumps(machine_load())}")
    for config in labels:
        for name in voice_sets:
            subset = [
                o for o in outcomes if o.config == config and o.utterance.voice in VOICE_SETS[name]
            ]
            print(f"== {config} / {name}: {json.dumps(_summary(subset))}")
        for detector, prefix in (("audio (Smart Turn)", "end_of_turn"), ("words", "words")):
            checks = checks_cpu.get(f"{config}:{prefix}_checks", 0)
            cpu_ms = checks_cpu.get(f"{config}:{prefix}_cpu_ms", 0.0)
            if checks:
                print(
                    f"   {detector}: {checks:.0f} checks, {cpu_ms / checks:.0f} ms CPU per check, "
                    f"{cpu_ms / (stream_s[config] / 60):.0f} ms CPU per minute of stream"
                )
    if args.json:
        for o in outcomes:
            print(
                json.dumps(
                    {
                        "config": o.config,
                        "kind": o.utterance.kind,
                        "voice": o.utterance.voice,
                        "text": o.utterance.text,
                        "pause_ms": o.utterance.pause_ms,
                        "early_commits": o.commits_before_end,
                        "latency_ms": None if o.latency_ms is None else round(o.latency_ms),
                    }
                )
            )


if __name__ == "__main__":
    main()
