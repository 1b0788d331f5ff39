"""What the browser's control messages do to a running session.

``voice.py`` validates each message and charges it to the socket's budget first.
"""

from __future__ import annotations

from typing import Protocol

from assistant import protocol
from assistant.codes import ErrorCode
from assistant.consumers import talk_modes
from assistant.history.live import SessionHistory
from assistant.history.quotas import LiveQuota
from assistant.voicelive.session import VoiceLiveSession


class CommandHost(talk_modes.TalkHost, Protocol):
    """The browser side: the voice consumer."""


async def apply(
    host: CommandHost,
    voice: VoiceLiveSession,
    history: SessionHistory | None,
    message: protocol.BrowserMessage,
    quota: LiveQuota | None = None,
) -> ErrorCode | None:
    """Apply one message; returns the (non-fatal) error code to tell the browser, if any."""
    refusal = quota.refusal(message) if quota is not None else None
    if refusal is not None:
        await host.send_message(refusal)  # the close (4402) follows once the reply is played
        return None
    if isinstance(message, protocol.PlaybackInterrupted):
        if history is not None:
            history.interrupted(message.item_id, message.played_ms)
        await voice.truncate(item_id=message.item_id, played_ms=message.played_ms)
    elif isinstance(message, protocol.ResponseCancel):
        await host.clear_playback()
        await voice.cancel_response()
    elif isinstance(message, protocol.TextSend):
        if history is not None:
            history.typed(message.text)
        await voice.send_text(message.text)
    elif isinstance(message, talk_modes.TALK_MODE_MESSAGES):
        return await talk_modes.handle(host, voice, message)
    elif isinstance(message, protocol.ToolApproval):
        # An answer to a call that no longer waits (timed out, cancelled) changes nothing.
        voice.tool_calls.answer_approval(message.call_id, message.approved)
    return None
