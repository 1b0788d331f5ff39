"""A stand-in Voice Live server that echoes audio, for tests while ``localvoice`` is absent.

Run: ``python -m tests.scaleout.echo_upstream --host 127.0.0.1 --port N``. It speaks just enough of
the protocol for ``assistant.voicelive`` over the real SDK: ``session.created`` on connect,
``session.updated`` for every ``session.update``, each ``input_audio_buffer.append`` echoed back as
one ``response.audio.delta`` (same bytes), and ``response.create`` answered with a short text
transcript and ``response.done``. ``localvoice --echo`` is preferred when it exists
(``tests/scaleout/conftest.py`` picks it).
"""

from __future__ import annotations

import argparse
import itertools
import json
from typing import Any

from aiohttp import WSMsgType, web

_ids = itertools.count(1)


def _event(kind: str, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "event_id": f"event_{next(_ids)}", **fields}


async def realtime(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    session_id = f"sess_{next(_ids)}"
    model = request.query.get("model", "gpt-realtime")
    session: dict[str, Any] = {"id": session_id, "object": "realtime.session", "model": model}
    await ws.send_json(_event("session.created", session=session))
    echo_item = f"item_echo_{next(_ids)}"
    echo_response = f"resp_echo_{next(_ids)}"
    async for msg in ws:
        if msg.type != WSMsgType.TEXT:
            continue
        event = json.loads(msg.data)
        kind = event.get("type")
        if kind == "session.update":
            session = {**session, **(event.get("session") or {})}
            await ws.send_json(_event("session.updated", session=session))
        elif kind == "input_audio_buffer.append":
            await ws.send_json(
                _event(
                    "response.audio.delta",
                    response_id=echo_response,
                    item_id=echo_item,
                    output_index=0,
                    content_index=0,
                    delta=event.get("audio", ""),
                )
            )
        elif kind == "response.create":
            response_id, item_id = f"resp_{next(_ids)}", f"item_{next(_ids)}"
            response = {"id": response_id, "object": "realtime.response", "status": "in_progress"}
            await ws.send_json(_event("response.created", response=response))
            ids = {"response_id": response_id, "item_id": item_id}
            ids |= {"output_index": 0, "content_index": 0}
            await ws.send_json(_event("response.audio_transcript.delta", delta="echo", **ids))
            await ws.send_json(_event("response.audio_transcript.done", transcript="echo", **ids))
            await ws.send_json(
                _event("response.done", response={**response, "status": "completed"})
            )
    return ws


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = web.Application()
    app.router.add_get("/voice-live/realtime", realtime)
    web.run_app(app, host=args.host, port=args.port, print=None, handle_signals=True)


if __name__ == "__main__":
    main()
