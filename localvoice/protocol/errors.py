"""The error a client event can cause: raised where the event is applied, sent as ``error``."""

from __future__ import annotations

from localvoice.protocol.events import ErrorCode


class ProtocolError(Exception):
    """A client event that cannot be applied; becomes an ``error`` event.

    Args:
        code: the error code.
        message: the message text.
        param: the offending field.
    """

    def __init__(self, code: ErrorCode, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.param = param
