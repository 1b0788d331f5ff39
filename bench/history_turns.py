"""Turn latency through the relay with history recording on and off, interleaved.

Two Daphne workers on one SQLite database, one with ``HISTORY_RECORDING=1`` (the default) and
one with ``0``, in front of one localvoice with its real models. Each round opens one session
on each worker in turn and speaks the same sentences (espeak-ng, real time, 40 ms frames, as the
talk page sends them); a turn's latency is from the end of its speech to the first assistant
audio frame the browser receives (the VAD hang-over included).

    .venv/bin/python -m bench.history_turns --rounds 3 --turns 3
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from tests.support.audio import duration_ms, silence, speak, trim_silence
from tests.support.localvoice import LocalVoiceProcess
from tests.support.servers import Browser, DaphneServer, Socket, daphne_env, manage

SENTENCES = [
    "What is the weather like in Paris today",
    "How many people live in London",
    "What is the capital of France",
    "Tell me a joke about computers",
]
FRAME_MS = 40
FRAME_BYTES = 48 * FRAME_MS
LEAD_MS, TRAIL_MS = 300, 1500
PASSWORD = "bench-pw-1234"
ACK_BYTES = 96_000  # static/js/voice-socket.js AUDIO_ACK_BYTES
VARIANTS = {"on": "1", "off": "0"}


async def stream(socket: Socket, pcm: bytes) -> None:
    """Send ``pcm`` like a microphone: each 40 ms frame once it has been captured."""
    started = time.perf_counter()
    for index, offset in enumerate(range(0, len(pcm), FRAME_BYTES)):
        await asyncio.sleep(max(0.0, started + (index + 1) * FRAME_MS / 1000 - time.perf_counter()))
        await socket.send_audio(pcm[offset : offset + FRAME_BYTES])


async def one_turn(socket: Socket, sentence: str, received: list[int]) -> float:
    """Speak ``sentence``; returns ms from the end of its speech to the first reply audio.

    ``received`` counts the socket's assistant audio, acknowledged as the talk page does.
    """
    speech = trim_silence(speak(sentence))
    started = time.perf_counter()
    speech_end = started + (LEAD_MS + duration_ms(speech)) / 1000
    sender = asyncio.create_task(stream(socket, silence(LEAD_MS) + speech + silence(TRAIL_MS)))
    first_audio: float | None = None
    async with asyncio.timeout(90):
        while True:
            frame = await socket.next_frame(timeout=90)
            if frame.kind == "close":
                msg = f"closed {frame.code}: {socket.texts('error')}"
                raise RuntimeError(msg)
            if frame.kind == "binary":
                if first_audio is None:
                    first_audio = time.perf_counter()
                received[0] += len(frame.data)
                if received[0] - received[1] >= ACK_BYTES:  # as the talk page acknowledges
                    received[1] = received[0]
                    await socket.send_json({"type": "audio.ack", "bytes": received[0]})
            elif frame.kind == "text" and frame.data["type"] == "response.done" and first_audio:
                break
    await sender
    return (first_audio - speech_end) * 1000


async def session(server: DaphneServer, sentences: list[str]) -> list[float]:
    async with Browser(server.base_url) as browser:
        await browser.login("bench", PASSWORD)
        socket = await browser.websocket(server.ws_url("/ws/voice/"))
        await socket.expect("session.ready", timeout=30)
        received = [0, 0]  # assistant audio bytes on this socket: received, acknowledged
        latencies = [await one_turn(socket, s, received) for s in sentences]
        await socket.send_json({"type": "session.stop"})
        await socket.expect_close()
        return latencies


async def run(servers: dict[str, DaphneServer], rounds: int, turns: int) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {name: [] for name in servers}
    for index in range(rounds):
        sentences = [SENTENCES[(index + k) % len(SENTENCES)] for k in range(turns)]
        # Alternate which variant goes first, so neither always follows the other.
        order = list(servers) if index % 2 == 0 else list(reversed(servers))
        for name in order:
            latencies = await session(servers[name], sentences)
            results[name] += latencies
            print(f"round {index + 1} history {name}: {[round(x) for x in latencies]}", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument(
        "--start-first", choices=list(VARIANTS), default="on", help="which worker starts first"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="history-bench-") as tmp:
        logs = Path(tmp)
        engine = LocalVoiceProcess(log_dir=logs).start(timeout=180)
        servers: dict[str, DaphneServer] = {}
        try:
            base = {"VOICE_CONNECT_TIMEOUT": "10", "ASSISTANT_LOG_LEVEL": "WARNING"}
            db = f"sqlite:///{logs / 'bench.sqlite3'}"
            names = sorted(VARIANTS, key=lambda name: name != args.start_first)
            for name, flag in ((name, VARIANTS[name]) for name in names):
                env = daphne_env(
                    worker_name=f"history-{name}",
                    database_url=db,
                    redis_url="",
                    upstream_url=engine.endpoint,
                    extra={**base, "HISTORY_RECORDING": flag},
                )
                if not servers:
                    manage(env, "migrate", "--noinput", "-v", "0")
                    manage(
                        env,
                        "shell",
                        "-c",
                        "from django.contrib.auth.models import User; "
                        f"User.objects.create_user('bench', password={PASSWORD!r})",
                    )
                servers[name] = DaphneServer(f"history-{name}", env, logs).start()
            results = asyncio.run(run(servers, args.rounds, args.turns))
        finally:
            for server in servers.values():
                server.stop()
            engine.stop()
    for name, values in results.items():
        values.sort()
        print(
            f"history {name}: n={len(values)} median={statistics.median(values):.0f} ms "
            f"min={values[0]:.0f} max={values[-1]:.0f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
