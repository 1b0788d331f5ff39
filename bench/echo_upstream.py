"""A tiny Voice Live echo upstream for the relay benchmarks (loopback only).

Speaks just enough of the Voice Live protocol for ``azure-ai-voicelive``: ``session.created``
on connect, ``session.updated`` for every ``session.update``, and every
``input_audio_buffer.append`` echoed back at once as a ``response.audio.delta`` carrying the
same base64 bytes (one item per connection). Used until ``python -m localvoice --echo`` exists.

    python bench/echo_upstream.py --port 9101 [--seconds 3600]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import uuid

from aiohttp import WSMsgType, web

_APPEND = '"input_audio_buffer.append"'


async def _voice_live(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(max_msg_size=4 * 1024 * 1024, compress=False)
    await ws.prepare(request)
    session_id = f"sess_{uuid.uuid4().hex[:12]}"
    item_id = f"item_{uuid.uuid4().hex[:12]}"
    await ws.send_str(
        json.dumps({"type": "session.created", "event_id": "ev0", "session": {"id": session_id}})
    )
    # The constant part of every delta; only the base64 payload changes.
    head = (
        '{"type":"response.audio.delta","event_id":"ev","response_id":"resp_1",'
        f'"item_id":"{item_id}","output_index":0,"content_index":0,"delta":"'
    )
    async for msg in ws:
        if msg.type != WSMsgType.TEXT:
            continue
        data: str = msg.data
        if _APPEND in data[:64] or _APPEND in data[-64:]:
            audio = json.loads(data)["audio"]
            await ws.send_str(head + audio + '"}')
            continue
        event = json.loads(data)
        if event.get("type") == "session.update":
            await ws.send_str(
                json.dumps(
                    {
                        "type": "session.updated",
                        "event_id": "ev1",
                        "session": {"id": session_id, **(event.get("session") or {})},
                    }
                )
            )
    return ws


def app_build() -> web.Application:
    app = web.Application()
    app.router.add_get("/voice-live/realtime", _voice_live)
    return app


async def _serve(port: int, seconds: float) -> None:
    runner = web.AppRunner(app_build(), access_log=None, handle_signals=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, backlog=1024)
    await site.start()
    try:
        await asyncio.sleep(seconds)
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=9101)
    parser.add_argument("--seconds", type=float, default=3600.0)
    args = parser.parse_args()
    asyncio.run(_serve(args.port, args.seconds))


if __name__ == "__main__":
    main()
