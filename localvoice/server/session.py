"""The session of one connection: its configuration, audio turns, responses and conversation.

It knows nothing about the socket: it receives parsed client events through ``handlers`` and
emits server events through the ``send`` coroutine it is given.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from localvoice.pipeline.stages import Pipeline
from localvoice.protocol import events
from localvoice.protocol.errors import ProtocolError
from localvoice.protocol.events import ErrorCode, Event
from localvoice.protocol.session_config import SessionConfig
from localvoice.protocol.voices import VoiceMap
from localvoice.server.tasks import TaskSet
from localvoice.turns.conversation import Conversation, Item
from localvoice.turns.echo_input import EchoInput
from localvoice.turns.reply import ModelReply
from localvoice.turns.responder import ResponseRun
from localvoice.turns.response_spec import ResponseSpec, response_spec
from localvoice.turns.signals import (
    Committed,
    Echoed,
    SessionInput,
    SilenceStarted,
    SpeechResumed,
    SpeechStarted,
    SpeechStopped,
)

logger = logging.getLogger(__name__)

MAX_APPEND_BYTES = 15 * 1024 * 1024

Handler = Callable[[dict[str, Any]], Awaitable[None]]


def _field(event: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    value = event.get(name)
    if value is None or isinstance(value, bool) and kind is not bool or not isinstance(value, kind):
        msg = f"Missing or invalid required parameter: '{name}'."
        raise ProtocolError(ErrorCode.MISSING_PARAMETER, msg, name)
    return value


class Session:
    """The session of one client: its configuration, conversation, input audio and responses.

    Args:
        send: sends one server event to the client.
        pipeline: the stages (``pipeline/loopback.py``'s in echo mode).
        voice_map: voice resolution.
        model: the ``model`` query parameter.
        max_session_seconds: the session limit, for ``expires_at``.
    """

    def __init__(
        self,
        send: Callable[[Event], Awaitable[None]],
        pipeline: Pipeline,
        voice_map: VoiceMap,
        model: str,
        max_session_seconds: float = 0,
    ) -> None:
        self.send = send
        self._pipeline = pipeline
        self._voice_map = voice_map
        self.config = SessionConfig(model, voice_map, max_session_seconds)
        self.conversation = Conversation()
        self._active: ResponseRun | None = None
        # A reply prepared during the VAD hang-over: (user item id, transcript future, run).
        self._held: tuple[str, asyncio.Future[str], ResponseRun] | None = None
        self._speculating: str | None = None
        self._transcribing: set[asyncio.Task[None]] = set()
        self._tasks = TaskSet()
        self._partial_text: dict[str, str] = {}
        self._stt_ms: dict[str, float] = {}
        self.stats = {"turns": 0, "responses": 0}
        self._audio = self._open_input(pipeline)
        self._configure_audio()
        self.handlers: dict[str, Handler] = {
            "session.update": self._session_update,
            "input_audio_buffer.append": self._append,
            "input_audio_buffer.commit": self._commit,
            "input_audio_buffer.clear": self._clear,
            "response.create": self._response_create,
            "response.cancel": self._response_cancel,
            "conversation.item.create": self._item_create,
            "conversation.item.retrieve": self._item_retrieve,
            "conversation.item.truncate": self._item_truncate,
            "conversation.item.delete": self._item_delete,
            "output_audio_buffer.clear": self._output_clear,
        }

    def _open_input(self, pipeline: Pipeline) -> SessionInput:
        """The session's input audio: echoed back (``--echo``), or VAD turns and transcription."""
        if pipeline.echoes_input:
            return EchoInput()
        # Imported here so that ``--echo`` starts without numpy and soxr.
        from localvoice.turns.audio_input import AudioInput

        return AudioInput(pipeline, self._on_partial, self._assistant_said)

    def _assistant_said(self) -> str:
        return self.conversation.last_said("assistant")

    def close(self) -> None:
        """Stop everything the session runs and return its VAD stream."""
        if self._active is not None:
            self._active.cancel("client_cancelled")
        self._discard_held()
        self._tasks.cancel_all()
        for task in list(self._transcribing):
            task.cancel()
        self._audio.close()

    # -- session and audio ----------------------------------------------------------------------

    def _configure_audio(self) -> None:
        config = self.config
        self._audio.configure(config.input_rate, config.turn_detection, config.data)

    async def _session_update(self, event: dict[str, Any]) -> None:
        self.config.update(_field(event, "session", dict))
        self._discard_held()
        self._configure_audio()
        await self.send(events.session_updated(self.config.as_dict()))
        self._prefill("")  # the instructions, before the first turn

    async def _append(self, event: dict[str, Any]) -> None:
        audio = _field(event, "audio", str)
        # Measured on the base64 text: a frame over 16 MiB never gets here (aiohttp closes 1009).
        if len(audio) > MAX_APPEND_BYTES:
            msg = "The audio of one append must be at most 15 MiB."
            raise ProtocolError(ErrorCode.AUDIO_TOO_LARGE, msg, "audio")
        for signal in await self._audio.append(audio):
            if isinstance(signal, Echoed):
                await self.send(
                    events.audio_delta(signal.response_id, signal.item_id, signal.audio)
                )
            elif isinstance(signal, SilenceStarted):
                self._speculate(signal.item_id, signal.transcript)
            elif isinstance(signal, SpeechResumed):
                self._discard_held()
            elif isinstance(signal, SpeechStarted):
                await self.send(events.speech_started(signal.audio_start_ms, signal.item_id))
                turn = self.config.turn_detection
                if self._active is not None and turn is not None and turn.interrupt_response:
                    self._active.cancel("turn_detected")
                self._prefill("")
            elif isinstance(signal, SpeechStopped):
                await self.send(events.speech_stopped(signal.audio_end_ms, signal.item_id))
            elif isinstance(signal, Committed):
                await self._committed(signal)

    def _discard_held(self) -> None:
        self._speculating = None
        if self._held is not None:
            logger.debug("speculative reply for %s dropped", self._held[0])
            self._held[2].discard()
            self._held = None

    def _speculate(self, item_id: str, transcript: asyncio.Future[str]) -> None:
        """Start preparing the reply while the hang-over runs (the turn may yet continue)."""
        self._discard_held()
        turn = self.config.turn_detection
        if turn is None or not turn.create_response or self._active is not None:
            return
        self._speculating = item_id
        self._tasks.spawn(self._prepare(item_id, transcript))

    async def _prepare(self, item_id: str, transcript: asyncio.Future[str]) -> None:
        try:
            text = await asyncio.shield(transcript)
        except Exception:
            return  # the real commit reports the failure
        if self._speculating != item_id or self._active is not None or not text.strip():
            logger.debug("no speculative reply for %s (%r)", item_id, text)
            return
        logger.debug("speculative reply for %s: %r", item_id, text)
        run = self._start(self._spec(None, None), held_text=text)
        self._held = (item_id, transcript, run)

    async def _commit(self, event: dict[str, Any]) -> None:
        self._discard_held()
        committed = self._audio.commit()
        if committed is None:
            msg = "Error committing input audio buffer: the buffer is empty."
            raise ProtocolError(ErrorCode.COMMIT_EMPTY, msg)
        await self._committed(committed)

    async def _clear(self, event: dict[str, Any]) -> None:
        self._discard_held()
        self._audio.clear()
        await self.send(events.buffer_cleared())

    async def _output_clear(self, event: dict[str, Any]) -> None:
        await self.send({"type": "output_audio_buffer.cleared", "event_id": events.new_id("event")})

    async def _committed(self, committed: Committed) -> None:
        self._speculating = None  # too late to start guessing; a guess already made may stand
        self.stats["turns"] += 1
        item = Item(
            {
                "id": committed.item_id,
                "object": "realtime.item",
                "type": "message",
                "role": "user",
                "status": "completed",
                "content": [{"type": "input_audio", "transcript": None}],
            },
            audio_ms=committed.audio_ms,
        )
        previous = self.conversation.add(item)
        await self.send(events.buffer_committed(item.id, previous))
        await self.send(events.item_created(item.data, previous))
        task = asyncio.ensure_future(self._transcribe_item(committed, item))
        self._transcribing.add(task)
        task.add_done_callback(self._transcribing.discard)
        turn = self.config.turn_detection
        if committed.by_vad and turn is not None and turn.create_response:
            self._tasks.spawn(self._auto_respond(task, item, committed))

    def _prefill(self, user_text: str) -> None:
        """Let the chat model evaluate the coming reply's prompt while the user still speaks."""
        turn = self.config.turn_detection
        if turn is None or not turn.create_response or self._active is not None:
            return
        chat = self._pipeline.llm
        reply = ModelReply(self._spec(None, None), chat, self.conversation, "prefill")
        chat.prefill(reply.prompt(user_text))

    async def _on_partial(self, item_id: str, text: str) -> None:
        # The last word of a partial transcript may be cut off mid-word.
        self._prefill(" ".join(text.split()[:-1]))
        emitted = self._partial_text.get(item_id, "")
        if text.startswith(emitted) and len(text) > len(emitted):
            self._partial_text[item_id] = text
            await self.send(events.transcription_delta(item_id, text[len(emitted) :]))

    async def _transcribe_item(self, committed: Committed, item: Item) -> None:
        try:
            transcript = await committed.transcript
        except Exception as exc:
            logger.exception("transcription failed")
            await self.send(events.transcription_failed(item.id, str(exc)))
            return
        item.data["content"][0]["transcript"] = transcript
        self._stt_ms[item.id] = (time.perf_counter() - committed.committed_at) * 1000
        emitted = self._partial_text.pop(item.id, "")
        if transcript.startswith(emitted) and len(transcript) > len(emitted):
            await self.send(events.transcription_delta(item.id, transcript[len(emitted) :]))
        await self.send(events.transcription_completed(item.id, transcript))

    async def _auto_respond(
        self, transcription: asyncio.Task[None], item: Item, c: Committed
    ) -> None:
        await transcription
        held, self._held = self._held, None
        if not item.text():
            if held is not None:
                held[2].discard()
            return  # noise the VAD took for speech: nothing to answer
        stt_ms = self._stt_ms.pop(item.id, 0.0)
        if held is not None:
            held_item, held_transcript, run = held
            fresh = self.conversation.version == run.conversation_version + 1
            if (
                held_item == item.id
                and held_transcript is c.transcript
                and fresh
                and (self._active is None)
            ):
                self._active = run
                self.stats["responses"] += 1
                run.spec.input_audio_ms = c.audio_ms
                run.spec.metadata["localvoice_stt_wait_ms"] = f"{stt_ms:.0f}"
                run.spec.metadata["localvoice_speculative"] = "1"
                await run.release(started_after=c.committed_at)
                if run.task is not None and run.task.done() and self._active is run:
                    # It finished while held (its runner let go before it was active).
                    self._active = None
                return
            logger.debug("speculative reply for %s discarded", held_item)
            run.discard()
        if self._active is not None and self._active.task is not None:
            await asyncio.wait({self._active.task})
        if self.conversation.get(item.id) is None:
            return  # deleted while the reply before it played (a backchannel): not answered
        spec = self._spec(None, None)
        spec.input_audio_ms = c.audio_ms
        spec.metadata["localvoice_stt_wait_ms"] = f"{stt_ms:.0f}"
        self._start(spec, started_after=c.committed_at)

    # -- responses ------------------------------------------------------------------------------

    async def _wait_inputs(self) -> None:
        pending = [t for t in self._transcribing if not t.done()]
        if pending:
            await asyncio.wait(pending)

    def _spec(self, params: dict[str, Any] | None, additional: str | None) -> ResponseSpec:
        speaks = self._pipeline.speaks
        return response_spec(self.config, self._voice_map, params, additional, speaks=speaks)

    def _start(
        self, spec: ResponseSpec, started_after: float | None = None, held_text: str | None = None
    ) -> ResponseRun:
        run = ResponseRun(
            spec,
            self._pipeline,
            self.conversation,
            self.send,
            self._wait_inputs,
            echo=(self._audio.played, self._audio.playback_cut),
        )
        run.started_after = started_after
        if held_text is not None:
            run.hold(held_text)  # not active until released
        else:
            self._active = run
            self.stats["responses"] += 1

        async def runner() -> None:
            try:
                await run.run()
            finally:
                if self._active is run:
                    self._active = None

        run.task = asyncio.ensure_future(runner())
        self._tasks.track(run.task)
        return run

    async def _response_create(self, event: dict[str, Any]) -> None:
        params = event.get("response")
        if params is not None and not isinstance(params, dict):
            msg = "response must be an object"
            raise ProtocolError(ErrorCode.INVALID_VALUE, msg, "response")
        additional = event.get("additional_instructions")
        if additional is not None and not isinstance(additional, str):
            msg = "additional_instructions must be a string"
            raise ProtocolError(ErrorCode.INVALID_VALUE, msg, "additional_instructions")
        if self._active is not None and not self._active.done_sent:
            msg = f"Conversation already has an active response in progress: {self._active.id}."
            raise ProtocolError(ErrorCode.RESPONSE_ACTIVE, msg)
        self._start(self._spec(params, additional))

    async def _response_cancel(self, event: dict[str, Any]) -> None:
        wanted = event.get("response_id")
        active = self._active
        if active is None or active.done_sent or (wanted is not None and wanted != active.id):
            msg = "Cancellation failed: no active response found."
            raise ProtocolError(ErrorCode.CANCEL_NOT_ACTIVE, msg)
        active.cancel("client_cancelled")
        if active.task is not None:
            await asyncio.wait({active.task})

    # -- conversation items ---------------------------------------------------------------------

    async def _item_create(self, event: dict[str, Any]) -> None:
        item = self.conversation.create_from_client(_field(event, "item", dict))
        prev = event.get("previous_item_id")
        previous = self.conversation.add(item, prev if isinstance(prev, str) else None)
        await self.send(events.item_created(item.data, previous))

    async def _item_retrieve(self, event: dict[str, Any]) -> None:
        item_id = _field(event, "item_id", str)
        item = self.conversation.get(item_id)
        if item is None:
            msg = f"Item with item_id {item_id!r} not found"
            raise ProtocolError(ErrorCode.ITEM_NOT_FOUND, msg, "item_id")
        await self.send(events.item_retrieved(item.data))

    async def _item_truncate(self, event: dict[str, Any]) -> None:
        item_id = _field(event, "item_id", str)
        content_index = _field(event, "content_index", int)
        audio_end_ms = _field(event, "audio_end_ms", int)
        self.conversation.truncate(item_id, content_index, audio_end_ms)
        await self.send(events.item_truncated(item_id, content_index, audio_end_ms))

    async def _item_delete(self, event: dict[str, Any]) -> None:
        item_id = _field(event, "item_id", str)
        self.conversation.delete(item_id)
        await self.send(events.item_deleted(item_id))
