"""Messages dispatch by type to a handler method, as Channels names its handlers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any


def handler_name(message_type: str) -> str:
    """The handler of ``message_type``: ``session.end`` is handled by ``session_end``."""
    return message_type.replace(".", "_")


def handlers(
    owner: object, message_types: Iterable[str]
) -> dict[str, Callable[..., Awaitable[Any]]]:
    """``owner``'s handler of each of ``message_types``, checked once (a missing one raises).

    Only the types listed are dispatched: a message of another type has no handler, whatever
    attribute its name would reach.
    """
    return {kind: getattr(owner, handler_name(kind)) for kind in message_types}
