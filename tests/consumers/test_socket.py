"""The socket loop's send path: frames skip the session middleware's per-message work."""

from __future__ import annotations

from typing import Any

from channels.sessions import InstanceSessionWrapper

from assistant.consumers.socket import _past_session_wrapper


async def _server_send(message: dict[str, Any]) -> None:
    """Stands in for the server's own send."""


def test_the_session_middlewares_send_is_skipped() -> None:
    wrapper = InstanceSessionWrapper({"type": "websocket", "cookies": {}}, _server_send)
    assert _past_session_wrapper(wrapper.send) is _server_send


def test_a_send_without_the_session_middleware_is_kept() -> None:
    assert _past_session_wrapper(_server_send) is _server_send


def test_a_session_middleware_that_saves_on_other_messages_is_kept(monkeypatch: Any) -> None:
    wrapper = InstanceSessionWrapper({"type": "websocket", "cookies": {}}, _server_send)
    monkeypatch.setattr(wrapper, "save_message_types", ["http.response.start", "websocket.send"])
    assert _past_session_wrapper(wrapper.send) == wrapper.send
