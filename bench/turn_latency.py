"""End-of-user-speech -> first assistant audio byte, over the real SDK against localvoice.

Each turn streams espeak-ng speech in real time (20 ms appends) into a server-VAD session, then
measures from the moment the last speech sample was sent to the first ``response.audio.delta``.
That span includes the VAD hang-over (``silence_duration_ms``), which is the biggest single item.
Stage times come from ``response.done.response.metadata`` (``localvoice_*_ms``).

The microphone streams silence in real time after each question until the reply has played out
and ``AFTER_REPLY_MS`` more, as the talk page does and as a user waits for the answer. (Until
2026-12-07 the next question was sent right after ``response.done``, with nothing streamed
meanwhile: on localvoice's input clock the reply was then still playing, so every question was
transcribed as speech over a reply, with the backchannel prompt, which is ~10x slower. Until
later that day nothing was streamed from 1.5 s after the question to ``response.done``, which
did the same to any question after a reply whose synthesis ended more than about a second
after its first audio: most turns with 4 sessions at once.)

    .venv/bin/python -m bench.turn_latency --turns 12 --silence-ms 400
    .venv/bin/python -m bench.turn_latency --endpoint http://127.0.0.1:8765
    .venv/bin/python -m bench.turn_latency --frame-ms 40,100 --rounds 3   # frame size, interleaved
    # configurations side by side, one server each, sessions interleaved round by round:
    taskset -c 0,1 .venv/bin/python -m bench.turn_latency --rounds 4 --turns 6 \
        --compare "old=--llm smollm2-135m" "new="

``--frame-ms`` sends like a microphone does: each frame when its last sample has been "recorded",
so larger frames arrive later, as they would from the talk page.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tests.support.audio import PlaybackClock, duration_ms, silence, speak, trim_silence
from tests.support.localvoice import LocalVoiceProcess, send_audio, voicelive_session
from tests.support.stats import percentile

SENTENCES = [
    "What is the weather like in Paris today",
    "Can you recommend a good book about history",
    "Please set a timer for ten minutes",
    "How many people live in London",
    "Tell me a joke about computers",
    "What is the capital of France",
    "How do I make a cup of tea",
    "What time does the sun set tonight",
]
LEAD_MS = 300
TRAIL_MS = 1500
AFTER_REPLY_MS = 700  # a user starts speaking this long after the answer stopped playing


@dataclass
class Turn:
    """One measured turn."""

    sentence: str
    latency_ms: float
    heard: str
    reply: str
    stages: dict[str, float] = field(default_factory=dict)
    #: Silence heard inside the reply: audio that came after the queued audio had played out.
    stall_ms: float = 0.0


async def send_like_a_microphone(conn: Any, pcm: bytes, frame_ms: int) -> None:
    """Append each ``frame_ms`` frame once all of it has been captured (real time)."""
    step = 48 * frame_ms  # bytes: 24 kHz PCM16
    started = time.perf_counter()
    for index, offset in enumerate(range(0, len(pcm), step)):
        due = started + (index + 1) * frame_ms / 1000
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        await conn.input_audio_buffer.append(
            audio=base64.b64encode(pcm[offset : offset + step]).decode()
        )


TURN_TIMEOUT_S = 60.0
#: The silence the microphone streams between turns comes in pieces this long.
SILENCE_PIECE_MS = 100


async def microphone(
    conn: Any, audio: bytes, frame_ms: int | None, listened: asyncio.Event
) -> None:
    """A turn's audio in real time, then silence until ``listened`` is set, as the talk page's
    microphone streams: localvoice's input clock keeps time while the reply is generated and
    plays (frozen, it put every question after a reply that ended late over that reply)."""
    if frame_ms is None:
        await send_audio(conn, audio, speed=1.0)
    else:
        await send_like_a_microphone(conn, audio, frame_ms)
    while not listened.is_set():
        await send_audio(conn, silence(SILENCE_PIECE_MS), speed=1.0)


async def run_session(
    endpoint: str,
    sentences: list[str],
    silence_ms: int,
    frame_ms: int | None = None,
    between_turns: Callable[[], Awaitable[Any]] | None = None,
) -> list[Turn]:
    """Speak ``sentences`` one turn at a time in one session; returns the measured turns.

    ``between_turns`` is awaited once the reply has played out (sessions kept in step).
    """
    vad = {
        "type": "server_vad",
        "threshold": 0.5,
        "prefix_padding_ms": 300,
        "silence_duration_ms": silence_ms,
    }
    turns: list[Turn] = []
    async with voicelive_session(endpoint, {"turn_detection": vad}) as conn:
        for sentence in sentences:
            speech = trim_silence(speak(sentence))  # so its end is the end of speech
            audio = silence(LEAD_MS) + speech + silence(TRAIL_MS)
            started = time.perf_counter()
            speech_end = started + (LEAD_MS + duration_ms(speech)) / 1000
            listened = asyncio.Event()
            sender = asyncio.create_task(microphone(conn, audio, frame_ms, listened))
            first_audio: float | None = None
            page = PlaybackClock()
            heard = ""
            done: Any = None
            try:
                async with asyncio.timeout(TURN_TIMEOUT_S):
                    while done is None:
                        event = await conn.recv()
                        if event.type == "response.audio.delta":
                            now = time.perf_counter()
                            first_audio = first_audio or now
                            page.played(len(base64.b64decode(event["delta"])), now)
                        elif event.type == "conversation.item.input_audio_transcription.completed":
                            heard = event.transcript
                        elif event.type == "response.done":
                            done = event
            except BaseException:
                sender.cancel()
                raise
            # Listen to the answer as the talk page plays it, then wait for the others.
            wait_ms = int((page.until + AFTER_REPLY_MS / 1000 - time.perf_counter()) * 1000)
            if wait_ms > 0:
                await asyncio.sleep(wait_ms / 1000)
            listened.set()
            await sender
            if between_turns is not None:
                await between_turns()
            metadata = dict(done.response.get("metadata") or {})
            stages = {
                k.removeprefix("localvoice_").removesuffix("_ms"): float(v)
                for k, v in metadata.items()
                if k.startswith("localvoice_")
            }
            reply = " ".join(
                str(part.get("transcript") or part.get("text") or "")
                for item in done.response.output
                for part in item.get("content") or []
            )
            latency = ((first_audio or time.perf_counter()) - speech_end) * 1000
            stall = page.stalled_s * 1000
            turns.append(Turn(sentence, latency, heard, reply, stages, stall))
    return turns


def summarise(turns: list[Turn]) -> dict[str, Any]:
    """p50/p95 of the latency and the mean of each stage time."""
    latencies = [t.latency_ms for t in turns]
    stage_names = sorted({k for t in turns for k in t.stages})
    return {
        "turns": len(turns),
        "p50_ms": round(percentile(latencies, 50)),
        "p95_ms": round(percentile(latencies, 95)),
        "min_ms": round(min(latencies)),
        "max_ms": round(max(latencies)),
        "stall_ms_mean": round(statistics.mean(t.stall_ms for t in turns)),
        "stages_mean_ms": {
            name: round(statistics.mean(t.stages[name] for t in turns if name in t.stages))
            for name in stage_names
        },
    }


def peak_rss_mb(pid: int) -> float | None:
    """VmHWM of a process, in MiB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def machine_load() -> dict[str, str]:
    """Load average and CPU pressure (PSI) right now: other work on the box skews latency."""
    out = {"loadavg": " ".join(Path("/proc/loadavg").read_text().split()[:3])}
    psi = Path("/proc/pressure/cpu")
    if psi.exists():
        out["cpu_pressure"] = psi.read_text().splitlines()[0]
    return out


def compare_frames(args: argparse.Namespace) -> None:
    """Frame sizes interleaved on one server, ``--turns`` per size per round."""
    sizes = [int(v) for v in args.frame_ms.split(",")]
    sentences = [SENTENCES[i % len(SENTENCES)] for i in range(args.turns)]
    flags = ["--threads", str(args.threads), *args.server_flags.split()]
    server = None if args.endpoint else LocalVoiceProcess(*flags).start(timeout=180)
    endpoint = args.endpoint or (server.endpoint if server else "")
    results: dict[int, list[Turn]] = {size: [] for size in sizes}
    try:
        for _ in range(args.rounds):
            for size in sizes:
                turns = asyncio.run(run_session(endpoint, sentences, args.silence_ms, size))
                results[size] += turns
    finally:
        if server:
            server.stop()
    for size, turns in results.items():
        summary = summarise(turns)
        print(
            f"frame {size} ms: "
            + json.dumps({k: v for k, v in summary.items() if k != "stages_mean_ms"})
        )
    print(json.dumps({"machine_load_after": machine_load()}))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def compare_configs(args: argparse.Namespace) -> None:
    """Several server configurations in one run: same sentences, sessions interleaved."""
    configs = dict(spec.partition("=")[::2] for spec in args.compare)
    sentences = [SENTENCES[i % len(SENTENCES)] for i in range(args.turns)]
    servers = {
        name: LocalVoiceProcess("--threads", str(args.threads), *flags.split()).start(timeout=300)
        for name, flags in configs.items()
    }
    results: dict[str, list[Turn]] = {name: [] for name in configs}
    cpu: dict[str, float] = dict.fromkeys(configs, 0.0)
    try:
        for _ in range(args.rounds):
            for name, server in servers.items():
                assert server.process is not None
                before = cpu_seconds(server.process.pid)
                turns = asyncio.run(run_session(server.endpoint, sentences, args.silence_ms))
                cpu[name] += cpu_seconds(server.process.pid) - before
                results[name] += turns
        rss = {n: peak_rss_mb(s.process.pid) for n, s in servers.items() if s.process}
    finally:
        for server in servers.values():
            server.stop()
    out = {}
    for name, turns in results.items():
        summary = summarise(turns)
        summary["flags"] = configs[name] or "(defaults)"
        summary["cpu_s_per_turn"] = round(cpu[name] / len(turns), 2)
        summary["server_peak_rss_mb"] = round(rss.get(name) or 0)
        summary["wrong_transcripts"] = sum(
            1 for t in turns if t.heard.strip(" .?!").lower() != t.sentence.lower()
        )
        out[name] = summary
        print(f"== {name}: " + json.dumps(summary))
        for turn in turns[: len(sentences)]:
            print(f"   {turn.latency_ms:6.0f} ms {turn.heard!r:44} -> {turn.reply[:70]!r}")
    first, *rest = out
    for name in rest:
        ratio = out[name]["p50_ms"] / out[first]["p50_ms"]
        print(f"p50 {name}/{first}: {ratio:.2f}")
    load = machine_load()
    print(json.dumps({"silence_duration_ms": args.silence_ms, "machine_load_after": load}))


def main() -> None:
    global TURN_TIMEOUT_S  # one option, read by every session
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=12)
    parser.add_argument("--silence-ms", type=int, default=400, help="VAD silence_duration_ms")
    parser.add_argument("--endpoint", help="use this localvoice instead of starting one")
    parser.add_argument("--threads", type=int, default=2, help="--threads for the server")
    parser.add_argument("--server-flags", default="", help="more localvoice flags, one string")
    parser.add_argument("--json", action="store_true", help="print the raw turns as JSON too")
    parser.add_argument(
        "--frame-ms", help="microphone frame sizes to compare, e.g. 40,100 (default: 20 ms appends)"
    )
    parser.add_argument("--rounds", type=int, default=1, help="interleaved rounds")
    parser.add_argument(
        "--compare", nargs="+", metavar="NAME=FLAGS", help="server configurations side by side"
    )
    parser.add_argument("--turn-timeout", type=float, default=60.0, help="seconds a turn may take")
    args = parser.parse_args()
    TURN_TIMEOUT_S = args.turn_timeout
    if args.compare:
        compare_configs(args)
        return
    if args.frame_ms:
        compare_frames(args)
        return
    sentences = [SENTENCES[i % len(SENTENCES)] for i in range(args.turns)]
    flags = ["--threads", str(args.threads), *args.server_flags.split()]
    server = None if args.endpoint else LocalVoiceProcess(*flags).start(timeout=180)
    endpoint = args.endpoint or (server.endpoint if server else "")
    try:
        turns = asyncio.run(run_session(endpoint, sentences, args.silence_ms))
        rss = peak_rss_mb(server.process.pid) if server and server.process else None
    finally:
        if server:
            server.stop()
    for turn in turns:
        stages = " ".join(f"{k}={v:.0f}" for k, v in sorted(turn.stages.items()))
        print(f"{turn.latency_ms:7.0f} ms  heard={turn.heard!r:48} {stages}")
        print(f"            reply={turn.reply[:90]!r}")
    summary = summarise(turns)
    summary["silence_duration_ms"] = args.silence_ms
    summary["server_peak_rss_mb"] = round(rss) if rss else None
    summary["machine_load_after"] = machine_load()
    print(json.dumps(summary, indent=2))
    if args.json:
        print(json.dumps([asdict(t) for t in turns], indent=2))


if __name__ == "__main__":
    main()
