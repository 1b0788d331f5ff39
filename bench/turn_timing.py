"""Does the service's turn latency (the dashboard's) agree with ``bench.turn_latency``'s?

One localvoice with the real models, and one Daphne worker in front of it (a throwaway
database; its default profile on server VAD with the bench's threshold, padding and silence).
Round by round, the same sentences are spoken two ways:

* ``direct``: ``bench.turn_latency.run_session`` against localvoice, 100 ms frames as the
  talk page sends them: end of speech (its last sample) → first ``response.audio.delta``;
* ``service``: a logged-in client speaks them over ``/ws/voice/`` in 100 ms frames, in real
  time. Per turn it reads the service's own figure, the reply's ``latency_ms`` in the history
  (what the dashboard and ``voice_turn_latency_seconds`` show), and measures its own end of
  speech → first assistant audio byte, as a user would.

    .venv/bin/python -m bench.turn_timing --rounds 2 --turns 6
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.turn_latency import SENTENCES, machine_load, run_session
from tests.support.audio import duration_ms, silence, speak, trim_silence
from tests.support.browser import Browser, Socket
from tests.support.localvoice import LocalVoiceProcess
from tests.support.talking import create_user, model_worker

LEAD_MS = 300
TRAIL_MS = 1500
FRAME_MS = 100
FRAME_BYTES = 48 * FRAME_MS
ACK_BYTES = 96_000  # static/js/voice-socket.js: AUDIO_ACK_BYTES
USERNAME = "bench-timing"
PASSWORD = "bench-timing-pw-7q"


def profile_setup(silence_ms: int) -> str:
    """Shell code: the user, and the default profile on the bench's server VAD."""
    return create_user(USERNAME, PASSWORD) + (
        "from assistant.models import AssistantProfile\n"
        "AssistantProfile.objects.filter(is_default=True).update("
        "turn_detection='server_vad', vad_threshold=0.5, vad_prefix_padding_ms=300, "
        f"vad_silence_duration_ms={silence_ms})\n"
    )


async def stream_like_the_page(socket: Socket, pcm: bytes, started: float) -> None:
    """Each 100 ms frame once all of it has been 'recorded' (real time from ``started``)."""
    for index, offset in enumerate(range(0, len(pcm), FRAME_BYTES)):
        due = started + (index + 1) * FRAME_MS / 1000
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        await socket.send_audio(pcm[offset : offset + FRAME_BYTES])


async def service_turn(socket: Socket, sentence: str, received: list[int]) -> tuple[float, str]:
    """One spoken turn over the service: (client's end of speech → first audio ms, response id).

    ``received`` holds the audio bytes received on the socket so far and those acknowledged:
    acknowledged as the page does (``audio.ack`` every 2 s of audio), or the server holds the
    replies back.
    """
    speech = trim_silence(speak(sentence))
    audio = silence(LEAD_MS) + speech + silence(TRAIL_MS)
    started = time.perf_counter()
    speech_end = started + (LEAD_MS + duration_ms(speech)) / 1000
    sender = asyncio.create_task(stream_like_the_page(socket, audio, started))
    first_audio: float | None = None
    response_id = ""
    try:
        async with asyncio.timeout(90):
            while True:
                frame = await socket.next_frame(90)
                if frame.kind == "close":
                    msg = f"closed with {frame.code}"
                    raise RuntimeError(msg)
                if frame.kind == "binary":
                    if first_audio is None and time.perf_counter() > speech_end:
                        first_audio = time.perf_counter()
                    received[0] += len(frame.data)
                    if received[0] - received[1] >= ACK_BYTES:  # as the page acknowledges
                        received[1] = received[0]
                        await socket.send_json({"type": "audio.ack", "bytes": received[0]})
                    continue
                message = frame.data
                after_speech = time.perf_counter() > speech_end
                if message["type"] == "audio.start" and after_speech and not response_id:
                    response_id = str(message.get("response_id") or "")  # this turn's reply
                elif message["type"] == "response.done" and first_audio is not None:
                    break
    finally:
        await sender
    assert first_audio is not None
    return (first_audio - speech_end) * 1000, response_id


def service_figures(database: Any, conversation_id: str) -> dict[str, int]:
    """The history's latency per response id (the dashboard's figures)."""
    key: Any = uuid.UUID(conversation_id)
    if database.kind == "sqlite":
        key = key.hex
    rows = database.query(
        "SELECT response_id, latency_ms FROM assistant_turn "
        "WHERE conversation_id = %s AND latency_ms IS NOT NULL",
        (key,),
    )
    return {str(response_id): int(latency) for response_id, latency in rows}


async def service_session(
    base_url: str, ws_url: str, database: Any, sentences: list[str]
) -> list[tuple[float, int | None]]:
    """Speak ``sentences`` in one call; (client ms, the service's ms) per turn."""
    async with Browser(base_url) as browser:
        await browser.login(USERNAME, PASSWORD)
        socket = await browser.websocket(ws_url)
        session_id = (await socket.expect("session.ready", timeout=30))["session_id"]
        received = [0, 0]
        measured = [await service_turn(socket, sentence, received) for sentence in sentences]
        await socket.send_json({"type": "session.stop"})
        await socket.expect_close(timeout=10)
    deadline = time.monotonic() + 15
    figures: dict[str, int] = {}
    while time.monotonic() < deadline and len(figures) < len(measured):
        figures = service_figures(database, session_id)
        await asyncio.sleep(0.5)
    return [(client, figures.get(response_id)) for client, response_id in measured]


def p50(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--silence-ms", type=int, default=400)
    args = parser.parse_args()
    sentences = [SENTENCES[i % len(SENTENCES)] for i in range(args.turns)]
    logs = Path(tempfile.mkdtemp(prefix="turn-timing-"))
    direct: list[float] = []
    client: list[float] = []
    service: list[float] = []
    pairs: list[tuple[float, int | None]] = []
    localvoice = LocalVoiceProcess("--threads", "2", log_dir=logs).start(timeout=300)
    try:
        with model_worker(
            "timing",
            logs,
            upstream_url=localvoice.endpoint,
            setup=profile_setup(args.silence_ms),
            extra={"HISTORY_FLUSH_SECONDS": "0.5"},
        ) as worker:
            server = worker.daphne
            for _ in range(args.rounds):
                turns = asyncio.run(
                    run_session(localvoice.endpoint, sentences, args.silence_ms, FRAME_MS)
                )
                direct += [t.latency_ms for t in turns]
                measured = asyncio.run(
                    service_session(
                        server.base_url, server.ws_url("/ws/voice/"), worker.database, sentences
                    )
                )
                pairs += measured
                client += [c for c, _ in measured]
                service += [float(s) for _, s in measured if s is not None]
    finally:
        localvoice.stop()
    result = {
        "turns": len(direct),
        "direct_p50_ms": p50(direct),
        "service_client_p50_ms": p50(client),
        "service_dashboard_p50_ms": p50(service),
        "dashboard_minus_direct_p50_ms": (p50(service) or 0) - (p50(direct) or 0),
        "dashboard_minus_client_per_turn_p50_ms": p50([s - c for c, s in pairs if s is not None]),
        "timed_turns": len(service),
        "load": machine_load(),
        "pid": os.getpid(),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
