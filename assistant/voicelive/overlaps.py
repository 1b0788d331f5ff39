"""User speech over a reply, with backchannels on: duck, decide, then barge in or let it go on.

The event router hands :class:`Overlaps` the user's speech events while a reply plays; it opens a
:class:`~assistant.voicelive.backchannels.Window` on speech start, holds the page's messages
for that speech back while deciding, and then either asks the router to barge in (and passes
the held messages on) or resumes the page's playback, deletes the item upstream and cancels
the reply the upstream may still start for it. The wire rules are in docs/protocol.md.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from azure.ai.voicelive.models import ServerEventType

from assistant import metrics, protocol
from assistant.voicelive import backchannels
from assistant.voicelive.backchannels import HOLD_AFTER_MS, Verdict, Window
from assistant.voicelive.config import SessionConfig
from assistant.voicelive.sink import SessionSink

logger = logging.getLogger(__name__)

# User items deleted as backchannels, remembered so that their late events are dropped.
_DROPPED_ITEMS_KEPT = 16


class Overlaps:
    """One session's decisions about speech over its replies.

    Args:
        sink: the browser side.
        config: the session's current profile configuration.
        send_delete: ``conversation.item.delete`` upstream.
        send_cancel: ``response.cancel`` upstream.
        stop_for_user: the router's barge-in for a user item (playback cleared, reply
            cancelled, ``speech.started``, listening).
        user_transcript: the router's handling of a user's final transcript.
        processing: show the ``processing`` state (the user's turn ended).
        owe_reply: ask for the reply to a turn whose automatic one was refused or dropped.
    """

    def __init__(
        self,
        *,
        sink: SessionSink,
        config: Callable[[], SessionConfig],
        send_delete: Callable[[str], Awaitable[None]],
        send_cancel: Callable[[], Awaitable[None]],
        stop_for_user: Callable[[str], Awaitable[None]],
        user_transcript: Callable[[str, str], Awaitable[None]],
        processing: Callable[[], Awaitable[None]],
        owe_reply: Callable[[], Awaitable[None]],
    ) -> None:
        self._sink = sink
        self._config = config
        self._send_delete = send_delete
        self._send_cancel = send_cancel
        self._stop_for_user = stop_for_user
        self._user_transcript = user_transcript
        self._processing = processing
        self._owe_reply = owe_reply
        self._window: Window | None = None
        self._timer: asyncio.Task[None] | None = None
        # A backchannel's item was deleted: the reply the upstream may still start for it
        # (queued behind the running one, or at once) is cancelled unheard.
        self._skip_next_reply = False
        self._skipped_response: str | None = None
        self._dropped_items: deque[str] = deque(maxlen=_DROPPED_ITEMS_KEPT)

    # ------------------------------------------------------------------ speech events

    async def speech_started(self, item_id: Any, *, over_reply: bool) -> bool:
        """Speech started; True when it is being decided (the router must not barge in)."""
        self._skip_next_reply = False  # a new turn: its reply is wanted
        if self._window is not None:
            # More speech before the last was decided: the user is talking, not nodding.
            self._window.reason = "long"
            await self._barge_in(self._window)
            return False
        if not (over_reply and isinstance(item_id, str)):
            return False
        config = self._config()
        if not backchannels.enabled(config):
            return False
        window = Window(
            item_id=item_id,
            vocabulary=backchannels.session_vocabulary(config),
            started=time.monotonic(),
            silence_ms=config.vad_silence_duration_ms,
        )
        self._window = window
        await self._sink.send_message(protocol.PlaybackDuck(item_id=item_id))
        self._timer = asyncio.create_task(self._deadlines(window), name="voicelive overlap")
        self._timer.add_done_callback(_log_failure)
        return True

    async def speech_stopped(self, item_id: Any, speech_end: float | None = None) -> bool:
        """The upstream ended the user's speech; True when it belongs to an open decision.

        ``speech_end``: when the speech's last audio reached the service, if known.
        """
        window = self._window_of(item_id)
        if window is None:
            return False
        window.held.append(protocol.SpeechStopped(item_id=window.item_id))
        await self._decide(window, window.speech_stopped(time.monotonic(), speech_end))
        return True

    async def user_delta(self, item_id: Any, delta: str) -> bool:
        """A live transcript delta; True when it belongs to an open decision (held back)."""
        window = self._window_of(item_id)
        if window is None:
            return False
        window.held.append(protocol.UserTranscriptDelta(item_id=window.item_id, delta=delta))
        await self._decide(window, window.partial(delta))
        return True

    async def user_transcript(self, item_id: Any, transcript: str) -> bool:
        """A final transcript; True when it belongs to an open decision."""
        window = self._window_of(item_id)
        if window is None:
            return False
        window.held_transcript = transcript
        await self._decide(window, window.transcript(transcript))
        return True

    async def transcription_failed(self, item_id: Any) -> None:
        """No transcript will come: nothing to tell a backchannel by, so barge in."""
        window = self._window_of(item_id)
        if window is not None:
            window.reason = "no_transcript"
            await self._barge_in(window)

    # ------------------------------------------------------------------ the reply it owes

    async def response_created(self, response_id: str, *, reply_running: bool) -> bool:
        """True when this reply is cancelled unheard.

        It is the upstream's own reply to a deleted backchannel, or one started for speech
        still being decided (asked for again if that turns out to be a barge-in).
        """
        if reply_running:
            return False
        if self._window is not None:
            self._window.reply_dropped = True
        elif self._skip_next_reply:
            self._skip_next_reply = False
        else:
            return False
        self._skipped_response = response_id
        await self._send_cancel()
        return True

    def refusal_expected(self) -> bool:
        """True when an "already has an active response" refusal needs no retry now.

        It was for a backchannel, or for speech still being decided (asked for again if that
        turns out to be a barge-in).
        """
        if self._window is not None:
            self._window.reply_dropped = True
            return True
        expected, self._skip_next_reply = self._skip_next_reply, False
        return expected

    def reply_asked(self) -> None:
        """The session asked for a reply itself: the next one is wanted."""
        self._skip_next_reply = False

    def skipped(self, event: Any) -> bool:
        """Events of a cancelled backchannel reply, or of a deleted backchannel item."""
        response_id = event.get("response_id")
        if response_id is None:
            response = event.get("response")
            response_id = response.get("id") if hasattr(response, "get") else None
        if response_id is not None and response_id == self._skipped_response:
            if event.type == ServerEventType.RESPONSE_DONE:
                self._skipped_response = None
            return True
        item_id = event.get("item_id")
        return item_id is not None and item_id in self._dropped_items

    def audio_skipped(self, response_id: str | None) -> bool:
        """Audio of a cancelled backchannel reply."""
        return response_id is not None and response_id == self._skipped_response

    def close(self) -> None:
        """Stop the decision timer (the session is closing)."""
        if self._window is not None:
            self._close(self._window)

    # ------------------------------------------------------------------ deciding

    def _window_of(self, item_id: Any) -> Window | None:
        window = self._window
        return window if window is not None and window.item_id == item_id else None

    async def _deadlines(self, window: Window) -> None:
        """Pause the page's playback while still undecided, and enforce the window's bounds."""
        await asyncio.sleep(HOLD_AFTER_MS / 1000)
        if self._window is window:
            await self._sink.send_message(protocol.PlaybackHold(item_id=window.item_id))
        while self._window is window:
            now = time.monotonic()
            if window.expired(now) is Verdict.BARGE_IN:
                await self._barge_in(window)
                return
            await asyncio.sleep(max(window.next_deadline() - now, 0.01))

    async def _decide(self, window: Window, verdict: Verdict) -> None:
        if verdict is Verdict.BARGE_IN:
            await self._barge_in(window)
        elif verdict is Verdict.BACKCHANNEL:
            await self._backchannel(window)

    def _close(self, window: Window) -> bool:
        """Take ``window`` as decided; False when it already was (no await: decided once)."""
        if self._window is not window:
            return False
        self._window = None
        timer, self._timer = self._timer, None
        if timer is not None and timer is not asyncio.current_task():
            timer.cancel()
        return True

    async def _barge_in(self, window: Window) -> None:
        """Not a backchannel: stop the reply as a barge-in would have, then catch the page up."""
        if not self._close(window):
            return
        metrics.OVERLAPS.labels(verdict="barge_in", reason=window.reason or "words").inc()
        logger.debug(
            "barge-in over the reply (%s): %r; %s",
            window.reason or "words",
            window.heard[:40],
            window.timeline(time.monotonic()),
        )
        await self._stop_for_user(window.item_id)
        for message in window.held:
            if isinstance(message, protocol.ServerMessage):
                await self._sink.send_message(message)
        if window.stopped is not None:
            await self._processing()
        if window.held_transcript is not None:
            await self._user_transcript(window.item_id, window.held_transcript)
        if window.reply_dropped:
            await self._owe_reply()

    async def _backchannel(self, window: Window) -> None:
        """A backchannel: the reply goes on at full volume; the item leaves the conversation."""
        if not self._close(window):
            return
        metrics.OVERLAPS.labels(verdict="backchannel", reason=window.reason or "listed").inc()
        logger.debug("backchannel %r over the reply; it goes on", window.heard[:40])
        await self._sink.send_message(protocol.PlaybackResume(item_id=window.item_id))
        self._dropped_items.append(window.item_id)
        self._skip_next_reply = True
        await self._send_delete(window.item_id)


def _log_failure(task: asyncio.Task[None]) -> None:
    """A decision timer that failed: logged; the session goes on (the next event decides)."""
    if not task.cancelled() and task.exception() is not None:
        logger.error("backchannel decision failed", exc_info=task.exception())
