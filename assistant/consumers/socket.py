"""The socket loop both consumers share: the websocket only, the layer left to a subscription.

Channels' own loop reads the socket and the channel layer together and ends the consumer on the
first layer receive error, so a Redis blip would drop every socket. Consumers built on
:class:`SupervisedConsumer` read the layer through a
:class:`~assistant.live.control.ControlSubscription` instead.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from typing import Any

from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from channels.sessions import InstanceSessionWrapper

logger = logging.getLogger(__name__)


class SupervisedConsumer(AsyncWebsocketConsumer):
    """A websocket consumer whose channel layer is read by a :class:`ControlSubscription`.

    Channels' own loop reads the socket and the layer together and ends the consumer on the
    first layer receive error, so a Redis blip would drop every socket. This loop reads only the
    socket (one source: no per-message task and ``asyncio.wait``); the subclass starts its
    subscription once the socket is accepted.
    """

    # Channels allows no layer at all.
    channel_layer: Any
    # The client's socket is gone (a send failed); Daphne's disconnect message follows.
    browser_gone: bool = False

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Serve the socket until it closes."""
        self.scope = scope
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        self.channel_name = (
            await self.channel_layer.new_channel()
            if self.channel_layer is not None
            else f"local.{uuid.uuid4().hex}"
        )
        self.transport_send = _past_session_wrapper(send)
        self.base_send = self._send_to_client  # type: ignore[assignment]  # ASGI events are dicts
        dispatch = self.dispatch
        with contextlib.suppress(StopConsumer):
            while True:
                await dispatch(await receive())

    async def _send_to_client(self, message: dict[str, Any]) -> None:
        """Every frame to the client goes here; a client that has gone is not our error.

        Between the client's socket closing and Daphne telling us (its disconnect message,
        which releases everything), a send raises autobahn's ``Disconnected``: from then on
        frames are dropped, so no handler or task fails because the browser left.
        """
        if self.browser_gone:
            return
        try:
            await self.transport_send(message)
        except Exception as exc:
            self.browser_gone = True
            logger.debug("%s: client gone (%s)", self.channel_name, type(exc).__name__)


def _past_session_wrapper(send: Any) -> Any:
    """The server's own ``send`` under Channels' session middleware, else ``send`` itself.

    ``SessionMiddleware`` wraps ``send`` to save the session and set its cookie on
    ``http.response.start``, which a websocket never sends; on every other message it still
    reads the lazy session and the settings (about 2 % of the relay's CPU, once per frame).
    """
    wrapper = getattr(send, "__self__", None)
    if isinstance(wrapper, InstanceSessionWrapper) and wrapper.save_message_types == [
        "http.response.start"
    ]:
        return wrapper.real_send
    return send
