"""A hostile Voice Live server: its error events carry forged log lines (issue 9.6).

Run: ``python -m tests.hardening.hostile_upstream --host 127.0.0.1 --port N``. It answers like
``localvoice --echo`` (appended audio comes back as audio) except that every
``response.create`` gets an ``error`` event whose ``type`` and ``code`` hold newlines and a
whole fake log record, and a ``session.update`` for the model ``forge-on-update`` is refused
the same way.
"""

from __future__ import annotations

import argparse
import itertools
import json
from typing import Any

from aiohttp import WSMsgType, web

FORGED = "\n2026-01-01 00:00:00,000 CRITICAL assistant.consumers FORGED by the upstream\r\n"
_ids = itertools.count(1)


def _event(kind: str, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "event_id": f"event_{next(_ids)}", **fields}


def _forged_error() -> dict[str, Any]:
    return _event(
        "error",
        error={"type": f"server_error{FORGED}", "code": f"boom{FORGED}", "message": "forged"},
    )


async def realtime(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    model = request.query.get("model", "gpt-realtime")
    session: dict[str, Any] = {"id": f"sess_{next(_ids)}", "object": "realtime.session"}
    await ws.send_json(_event("session.created", session={**session, "model": model}))
    async for msg in ws:
        if msg.type != WSMsgType.TEXT:
            continue
        event = json.loads(msg.data)
        kind = event.get("type")
        if kind == "session.update":
            if model == "forge-on-update":
                await ws.send_json(_forged_error())
            else:
                await ws.send_json(_event("session.updated", session=session))
        elif kind == "response.create":
            await ws.send_json(_forged_error())
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
