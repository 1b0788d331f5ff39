"""Browser-side helpers: log in through the real login form, open websockets with the session
cookie and an allowed ``Origin`` (like the talk page does), and read the server's frames."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

import aiohttp

from tests.support.processes import manage


class _FormParser(HTMLParser):
    """Collects the values a browser would submit for one ``<form method=post>``."""

    def __init__(self, form_id: str | None) -> None:
        super().__init__()
        self.form_id = form_id
        self.fields: list[tuple[str, str]] = []
        self._found = False
        self._in_form = False
        self._textarea: str | None = None
        self._select: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and a.get("method", "").lower() == "post" and not self._found:
            self._in_form = self._found = self.form_id is None or a.get("id") == self.form_id
        if not self._in_form:
            return
        name = a.get("name", "")
        if tag == "input" and name:
            kind = a.get("type", "text").lower()
            if kind in ("submit", "button", "file", "image"):
                return
            if kind in ("checkbox", "radio") and "checked" not in a:
                return
            self.fields.append((name, a.get("value", "on" if kind == "checkbox" else "")))
        elif tag == "textarea" and name:
            self._textarea, self._text = name, []
        elif tag == "select" and name:
            self._select = name
        elif tag == "option" and self._select and "selected" in a:
            self.fields.append((self._select, a.get("value", "")))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._in_form = False
        elif tag == "textarea" and self._textarea is not None:
            self.fields.append((self._textarea, "".join(self._text).lstrip("\n")))
            self._textarea = None
        elif tag == "select":
            self._select = None

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._text.append(data)


def form_fields(html: str, form_id: str | None = None) -> list[tuple[str, str]]:
    """The (name, value) pairs a POST form would submit as it stands.

    Args:
        html: the page.
        form_id: the form's ``id`` (the admin's change form is ``<model>_form``; its header
            has a logout form first); None for the first POST form.
    """
    parser = _FormParser(form_id)
    parser.feed(html)
    return parser.fields


#: ``manage.py shell -c`` code that logs users in without the login page: for every username in
#: ``USERNAMES`` (a JSON list in the environment) it creates ``SESSIONS_PER_USER`` sessions and
#: prints ``{username: [session key, ...]}`` as JSON. Hand a key to :meth:`Browser.adopt_session`.
SESSION_SCRIPT = """
import json, os
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.sessions.backends.db import SessionStore
keys = {}
for user in get_user_model().objects.filter(username__in=json.loads(os.environ["USERNAMES"])):
    keys[user.username] = []
    for _ in range(int(os.environ.get("SESSIONS_PER_USER", "1"))):
        store = SessionStore()
        store[SESSION_KEY] = str(user.pk)
        store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        store[HASH_SESSION_KEY] = user.get_session_auth_hash()
        store.create()
        keys[user.username].append(store.session_key)
print(json.dumps(keys))
"""


def login_sessions(
    env: Mapping[str, str], usernames: list[str], per_user: int = 1
) -> dict[str, list[str]]:
    """Create logged-in sessions in the shared database; returns the keys per username."""
    env = {**env, "USERNAMES": json.dumps(usernames), "SESSIONS_PER_USER": str(per_user)}
    out = manage(env, "shell", "-c", SESSION_SCRIPT)
    keys: dict[str, list[str]] = json.loads(out.strip().splitlines()[-1])
    return keys


@dataclass
class WsFrame:
    """One frame from the server: JSON text, binary, or the close (with its code)."""

    kind: str  # "text", "binary" or "close"
    data: Any = None
    code: int | None = None


@dataclass
class Browser:
    """A logged-in browser: one cookie jar, HTTP with CSRF, websockets with Origin.

    Args:
        base_url: the worker the page was loaded from (its ``Origin`` is sent on websockets).
    """

    base_url: str
    http: aiohttp.ClientSession = field(init=False)

    def __post_init__(self) -> None:
        # unsafe=True: keep cookies set by an IP address host (127.0.0.1).
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))

    async def __aenter__(self) -> Browser:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every connection of this browser."""
        await self.http.close()

    def cookie(self, name: str) -> str:
        """A cookie's value (empty when unset)."""
        for morsel in self.http.cookie_jar:
            if morsel.key == name:
                return morsel.value
        return ""

    async def login(self, username: str, password: str) -> Browser:
        """Log in through the real login form (GET for the CSRF cookie, then POST)."""
        async with self.http.get(f"{self.base_url}/accounts/login/") as resp:
            assert resp.status == 200, await resp.text()
        data = {
            "username": username,
            "password": password,
            "csrfmiddlewaretoken": self.cookie("csrftoken"),
        }
        async with self.http.post(
            f"{self.base_url}/accounts/login/", data=data, allow_redirects=False
        ) as resp:
            assert resp.status == 302, f"login of {username} failed: {resp.status}"
        assert self.cookie("sessionid"), "no session cookie after login"
        return self

    def adopt_session(self, session_key: str) -> Browser:
        """Use a login session created server-side (see :data:`SESSION_SCRIPT`).

        A CSRF cookie is set too: Django accepts any 32-character secret the browser holds.
        """
        from yarl import URL

        csrf = uuid.uuid4().hex
        self.http.cookie_jar.update_cookies(
            {"sessionid": session_key, "csrftoken": csrf}, response_url=URL(self.base_url)
        )
        return self

    async def get_text(self, path: str, *, base_url: str | None = None) -> str:
        """GET a page (of this worker, or another one sharing the cookie) and return its body."""
        async with self.http.get(f"{base_url or self.base_url}{path}") as resp:
            assert resp.status == 200, f"GET {path}: {resp.status}"
            return await resp.text()

    async def post_form(
        self,
        path: str,
        data: list[tuple[str, str]] | dict[str, str],
        *,
        base_url: str | None = None,
    ) -> int:
        """POST a form with the CSRF token; returns the status (redirects are not followed)."""
        pairs = list(data.items()) if isinstance(data, dict) else list(data)
        pairs = [(k, v) for k, v in pairs if k != "csrfmiddlewaretoken"]
        pairs.append(("csrfmiddlewaretoken", self.cookie("csrftoken")))
        url = f"{base_url or self.base_url}{path}"
        async with self.http.post(url, data=pairs, allow_redirects=False) as resp:
            return resp.status

    async def websocket(self, url: str, *, origin: str | None = None) -> Socket:
        """Open a websocket like the page does: session cookie plus ``Origin``."""
        ws = await self.http.ws_connect(
            url, origin=origin or self.base_url, autoclose=False, max_msg_size=0, heartbeat=None
        )
        return Socket(ws)


class Socket:
    """A browser websocket with deadline-bounded helpers for reading the server's frames."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.close_code: int | None = None
        self.seen: list[WsFrame] = []

    async def next_frame(self, timeout: float = 5.0) -> WsFrame:
        """The next frame; a close frame is answered and reported with its code."""
        if self.close_code is not None:
            return WsFrame("close", code=self.close_code)
        msg = await self.ws.receive(timeout=timeout)
        if msg.type == aiohttp.WSMsgType.TEXT:
            frame = WsFrame("text", json.loads(msg.data))
        elif msg.type == aiohttp.WSMsgType.BINARY:
            frame = WsFrame("binary", msg.data)
        else:
            if msg.type == aiohttp.WSMsgType.CLOSE:
                self.close_code = int(msg.data)
                with contextlib.suppress(Exception):
                    await self.ws.close()
            else:
                self.close_code = self.ws.close_code or 1006
            frame = WsFrame("close", code=self.close_code)
        self.seen.append(frame)
        return frame

    async def expect(self, kind: str, timeout: float = 5.0, **fields: Any) -> dict[str, Any]:
        """Read until a JSON message of ``kind`` (with these field values) arrives."""
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.next_frame(timeout)
                if frame.kind == "close":
                    msg = f"closed ({frame.code}) before {kind!r} {fields or ''}"
                    raise AssertionError(msg)
                if (
                    frame.kind == "text"
                    and frame.data.get("type") == kind
                    and all(frame.data.get(k) == v for k, v in fields.items())
                ):
                    return dict(frame.data)

    async def expect_close(self, timeout: float = 5.0) -> int:
        """Read until the server closes; returns the close code."""
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.next_frame(timeout)
                if frame.kind == "close":
                    assert frame.code is not None
                    return frame.code

    def texts(self, kind: str | None = None) -> list[dict[str, Any]]:
        """JSON messages seen so far (of one type, or all)."""
        return [
            f.data
            for f in self.seen
            if f.kind == "text" and (kind is None or f.data.get("type") == kind)
        ]

    async def send_json(self, message: dict[str, Any]) -> None:
        """Send a control message."""
        await self.ws.send_str(json.dumps(message))

    async def send_audio(self, pcm: bytes) -> None:
        """Send a binary audio frame."""
        await self.ws.send_bytes(pcm)

    async def close(self) -> None:
        """Close from the browser side (idempotent)."""
        with contextlib.suppress(Exception):
            await self.ws.close()
