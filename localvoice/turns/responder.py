"""One response: reply tokens -> speakable chunks -> TTS -> streamed ``response.audio.delta``.

The text comes from ``reply.ModelReply``; the LLM streams in its own thread while the previous
chunk is synthesised, so speech starts after the first sentence (or first long clause) rather
than after the whole reply. Cancelling stops the token loop at the next token and sends nothing
more after ``response.done``. A held (speculative) response buffers its events until released.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from localvoice.pipeline.stages import Pipeline, Speaker
from localvoice.protocol import events
from localvoice.protocol.events import Event
from localvoice.turns.conversation import Conversation, Item, function_call_item, message_item
from localvoice.turns.pacing import Playout
from localvoice.turns.reply import ModelReply
from localvoice.turns.response_spec import ResponseSpec
from localvoice.turns.text import SentenceChunker, clean_reply
from localvoice.turns.tool_calls import ToolCall

logger = logging.getLogger(__name__)

DELTA_MS = 50  # audio per response.audio.delta
# Events of an item opened while a speculative reply is held: expanded on release, when the
# item can take its real place in the conversation.
OPEN_ITEM = "localvoice.open_item"


class ResponseRun:
    """A running response of one session.

    Args:
        spec: what to generate.
        pipeline: the stages.
        conversation: the session's conversation (the reply is added to it).
        send: sends one server event.
        wait_inputs: awaited before prompting, so pending transcriptions are in the history.
        echo: called with each audio delta as it is sent (PCM16, rate; returns where it plays
            on the input clock), and with where this reply's audio started when a cancel cuts
            it: the session's echo-cancellation reference and reply clock.
    """

    def __init__(
        self,
        spec: ResponseSpec,
        pipeline: Pipeline,
        conversation: Conversation,
        send: Callable[[Event], Awaitable[None]],
        wait_inputs: Callable[[], Awaitable[None]],
        echo: tuple[Callable[[bytes, int], int], Callable[[int], None]] | None = None,
    ) -> None:
        self._echo = echo
        self._echo_from: int | None = None  # the input sample where this reply's audio starts
        self.spec = spec
        self.id = events.new_id("resp")
        self._pipeline = pipeline
        self._conversation = conversation
        self._send = send
        # A held response is generated speculatively during the VAD hang-over: its events are
        # buffered until release() (the turn really ended) or dropped by discard().
        self._held = False
        self._discarded = False
        self._buffer: list[Event] = []
        self.conversation_version = conversation.version
        self._wait_inputs = wait_inputs
        self._reply = ModelReply(spec, pipeline.llm, conversation, self.id)
        self.cancel_reason: str | None = None
        self.item: Item = message_item("assistant", [], status="in_progress")
        self._initial_item = copy.deepcopy(self.item.data)  # a held run may finish before release
        self.audio = "audio" in spec.modalities
        self._spoken: list[str] = []
        self._audio_ms = 0.0
        self._first_audio_at: float | None = None  # when the client started playing, roughly
        self._playout = Playout()
        self._cancelled_at: float | None = None
        self._created = time.perf_counter()
        self._timings: dict[str, float] = {}
        self.task: asyncio.Task[None] | None = None
        self.started_after: float | None = None  # perf_counter of the turn's endpoint, if any
        self._finishing = False
        # True once response.done is out: the client may create the next response right away,
        # even while this run's task is still unwinding.
        self.done_sent = False
        self._sep = " " if self.audio else ""
        # With tools the reply may turn out to be a call: its item is opened once that is known.
        self._item_open = not self._reply.tools
        # Output items finished before the current one (a message spoken before a tool call).
        self._finished_items: list[dict[str, Any]] = []

    @property
    def item_id(self) -> str:
        """The assistant item's id."""
        return self.item.id

    def _response(self, status: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
        response: dict[str, Any] = {
            "id": self.id,
            "object": "realtime.response",
            "status": status,
            "status_details": details,
            "output": [*self._finished_items, self.item.data] if status != "in_progress" else [],
            "conversation_id": None,
            "modalities": self.spec.modalities,
            "voice": self.spec.voice_value,
            "output_audio_format": self.spec.output_format,
            "temperature": self.spec.temperature,
            "max_output_tokens": self.spec.max_tokens,
        }
        if status != "in_progress":
            response["usage"] = events.usage(
                input_text_tokens=self._reply.stats.prompt_tokens,
                input_audio_tokens=self.spec.input_audio_ms // 100,
                output_text_tokens=self._reply.stats.completion_tokens,
                output_audio_tokens=int(self._audio_ms) // 50,
            )
            response["metadata"] = {**self.spec.metadata, **self._metadata()}
        return response

    def _metadata(self) -> dict[str, str]:
        """Stage timings in ms, as strings (``metadata`` is a str -> str map)."""
        out = {f"localvoice_{k}_ms": f"{v:.0f}" for k, v in self._timings.items()}
        if self._reply.stats.first_token_ms is not None:
            out["localvoice_llm_first_token_ms"] = f"{self._reply.stats.first_token_ms:.0f}"
        return out

    def _mark(self, name: str, since: float | None = None) -> None:
        if name not in self._timings:
            self._timings[name] = (time.perf_counter() - (since or self._created)) * 1000

    def cancel(self, reason: str) -> None:
        """Stop generating and synthesising now; ``run`` then finishes as cancelled."""
        if self.cancel_reason is None:
            self.cancel_reason = reason
            self._cancelled_at = time.perf_counter()
        self._reply.stop()
        if self.task is not None and not self._finishing:
            self.task.cancel()

    def hold(self, user_text: str) -> None:
        """Generate for a user turn that is not committed yet, buffering every event."""
        self._held = True
        self._reply.extra_user_text = user_text

    def discard(self) -> None:
        """Drop a held response: stop generating, send nothing."""
        self._discarded = True
        self._reply.stop()
        if self.task is not None:
            self.task.cancel()

    async def release(self, started_after: float | None = None) -> None:
        """The turn ended as guessed: send the buffered events, then stream directly."""
        self.started_after = started_after
        self._reply.extra_user_text = None
        for event in self._preamble():
            await self._deliver(event)
        while self._buffer:
            event = self._buffer.pop(0)
            if event["type"] == OPEN_ITEM:
                for opened in self._open_events(event["item"], event["snapshot"]):
                    await self._deliver(opened)
            else:
                await self._deliver(event)
        self._held = False  # no await since the buffer emptied, so nothing is lost

    def _preamble(self) -> list[Event]:
        created = events.response_created(self._response("in_progress"))
        if not self._item_open:
            return [created]
        return [created, *self._open_events(self.item, self._initial_item)]

    def _open_events(self, item: Item, snapshot: dict[str, Any]) -> list[Event]:
        """Add the item to the conversation and announce it (``snapshot``: as it started)."""
        previous = self._conversation.add(item)
        out = [
            events.output_item_added(self.id, copy.deepcopy(snapshot)),
            events.item_created(copy.deepcopy(snapshot), previous),
        ]
        if item.data.get("type") == "message":
            part = self._part("audio" if self.audio else "text")
            out.append(events.content_part_added(self.id, item.id, part))
        return out

    async def _open(self, item: Item) -> None:
        """Open the reply's item now that its kind is known (tool-enabled replies only)."""
        self.item = item
        self._item_open = True
        snapshot = copy.deepcopy(item.data)
        if self._discarded:
            return
        if self._held:
            self._buffer.append({"type": OPEN_ITEM, "item": item, "snapshot": snapshot})
            return
        for event in self._open_events(item, snapshot):
            await self._deliver(event)

    async def _ensure_message(self) -> None:
        if not self._item_open:
            await self._open(self.item)

    async def _emit(self, event: Event) -> None:
        if self._discarded:
            return
        if self._held:
            self._buffer.append(event)
            return
        await self._deliver(event)

    async def _deliver(self, event: Event) -> None:
        if event["type"] == "response.audio.delta":
            now = time.perf_counter()
            audio_bytes = len(event["delta"]) * 3 // 4
            self._playout.sent(audio_bytes / 2 / self.spec.output_rate, now)
            if "first_audio" not in self._timings:
                self._first_audio_at = now
                self._mark("first_audio")
                if self.started_after is not None:
                    self._mark("endpoint_to_first_audio", self.started_after)
            if self._echo is not None:
                start = self._echo[0](base64.b64decode(event["delta"]), self.spec.output_rate)
                self._echo_from = start if self._echo_from is None else self._echo_from
        elif event["type"] == "response.done":
            # Timings of a held run are only complete once it has been released.
            event["response"]["metadata"] = {**self.spec.metadata, **self._metadata()}
            self.done_sent = True
        await self._send(event)

    async def run(self) -> None:
        """Send the whole response, from ``response.created`` to ``response.done``."""
        part_type = "audio" if self.audio else "text"
        details: dict[str, Any] | None
        if not self._held:
            for event in self._preamble():
                await self._send(event)
        try:
            await self._wait_inputs()
            await self._generate()
            status, details = "completed", None
        except asyncio.CancelledError:
            status = "cancelled"
            details = {"type": "cancelled", "reason": self.cancel_reason or "client_cancelled"}
        except Exception as exc:
            logger.exception("response %s failed", self.id)
            status = "failed"
            details = {
                "type": "failed",
                "error": {"type": "server_error", "code": "server_error", "message": str(exc)},
            }
        finally:
            self._reply.stop()
            self._finishing = True
        if self._reply.call is not None and status == "completed":
            if self._item_open:  # a sentence came before the call: its message comes first
                await self._finish_message(part_type, status)
                self._finished_items.append(self.item.data)
            await self._finish_call(self._reply.call)
            return
        if status == "cancelled" and self._echo is not None and self._echo_from is not None:
            self._echo[1](self._echo_from)  # the client drops what it has not played of it
        await self._ensure_message()
        await self._finish(part_type, status, details)
        if self.cancel_reason == "turn_detected" and self.spec.auto_truncate:
            await self._truncate_to_played()

    async def _truncate_to_played(self) -> None:
        """``auto_truncate``: the user interrupted, so keep only what they can have heard.

        The client is assumed to play the audio in real time from the first delta on (as the
        echo reference does): heard = time from the first delta to the barge-in, at most the
        audio sent.
        """
        if not self.audio or self._first_audio_at is None or self._discarded or self._held:
            return
        played = ((self._cancelled_at or time.perf_counter()) - self._first_audio_at) * 1000
        heard = int(min(self.item.audio_ms, max(0.0, played)))
        if heard >= self.item.audio_ms or self._conversation.get(self.item_id) is None:
            return
        self._conversation.truncate(self.item_id, 0, heard)
        await self._send(events.item_truncated(self.item_id, 0, heard))

    def _part(self, part_type: str) -> dict[str, Any]:
        text = self._sep.join(self._spoken).strip()
        return (
            {"type": "audio", "transcript": text}
            if part_type == "audio"
            else {
                "type": "text",
                "text": text,
            }
        )

    async def _finish(self, part_type: str, status: str, details: dict[str, Any] | None) -> None:
        await self._finish_message(part_type, status)
        await self._emit(events.response_done(self._response(status, details)))

    async def _finish_message(self, part_type: str, status: str) -> None:
        """Close the message item: its audio or text, its content part, the item itself."""
        text = self._sep.join(self._spoken).strip()
        part = self._part(part_type)
        self.item.data["content"] = [part]
        self.item.data["status"] = "completed" if status == "completed" else "incomplete"
        self.item.audio_ms = int(self._audio_ms)
        if self.audio:
            await self._emit(events.audio_done(self.id, self.item_id))
            await self._emit(events.audio_transcript_done(self.id, self.item_id, text))
        else:
            await self._emit(events.text_done(self.id, self.item_id, text))
        await self._emit(events.content_part_done(self.id, self.item_id, part))
        await self._emit(events.output_item_done(self.id, self.item.data))

    async def _finish_call(self, call: ToolCall) -> None:
        item = function_call_item(call.name, events.new_id("call"))
        await self._open(item)
        call_id = str(item.data["call_id"])
        await self._emit(
            events.function_call_arguments_delta(self.id, item.id, call_id, call.arguments)
        )
        await self._emit(
            events.function_call_arguments_done(
                self.id, item.id, call_id, call.name, call.arguments
            )
        )
        item.data["arguments"] = call.arguments
        item.data["status"] = "completed"
        await self._emit(events.output_item_done(self.id, item.data))
        await self._emit(events.response_done(self._response("completed")))

    async def _generate(self) -> None:
        if not self.audio:
            async for piece in self._reply.tokens():
                await self._ensure_message()
                self._spoken.append(piece)
                await self._emit(events.text_delta(self.id, self.item_id, piece))
            return
        chunks: asyncio.Queue[str | None] = asyncio.Queue()
        producer = asyncio.create_task(self._produce(chunks))
        try:
            speaker: Speaker | None = None
            while (chunk := await chunks.get()) is not None:
                if speaker is None:
                    speaker = self._pipeline.tts.speaker(
                        voice=self.spec.voice.local_name,
                        length_scale=self.spec.voice.length_scale,
                        rate=self.spec.output_rate,
                    )
                await self._speak(chunk, speaker)
            await producer  # re-raises an LLM failure
        finally:
            producer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await producer

    async def _produce(self, chunks: asyncio.Queue[str | None]) -> None:
        chunker = SentenceChunker(first_chunk_words=self._pipeline.first_chunk_words)
        playout = self._playout
        try:
            async for piece in self._reply.tokens():
                now = time.perf_counter()
                playout.piece(now)
                ready = chunker.feed(clean_reply(piece))
                # The client would run out of audio before the sentence ends: speak what is here.
                if not ready and playout.must_cut(chunker.buffered_chars, now):
                    ready = [chunk] if (chunk := chunker.cut_words()) else []
                for chunk in ready:
                    self._mark("llm_first_chunk")
                    playout.synthesizing += 1
                    await chunks.put(chunk)
            rest = chunker.flush()
            # A reply cut off by the token cap ends mid-sentence: drop the fragment if we spoke.
            capped = self._reply.stats.completion_tokens >= self.spec.max_tokens
            if rest and not (capped and self._spoken_or_queued(chunks)):
                self._mark("llm_first_chunk")
                playout.synthesizing += 1
                await chunks.put(rest)
        finally:
            await chunks.put(None)

    def _spoken_or_queued(self, chunks: asyncio.Queue[str | None]) -> bool:
        return bool(self._spoken) or not chunks.empty()

    async def _speak(self, text: str, speaker: Speaker) -> None:
        started = time.perf_counter()
        pcm = await self._pipeline.synthesize(speaker, text)
        self._playout.synthesized(len(text), time.perf_counter() - started)
        self._mark("tts_first_chunk", started)
        await self._ensure_message()
        self._spoken.append(text)
        await self._emit(events.audio_transcript_delta(self.id, self.item_id, text + " "))
        step = self.spec.output_rate * 2 * DELTA_MS // 1000
        for offset in range(0, len(pcm), step):
            piece = pcm[offset : offset + step]
            await self._emit(
                events.audio_delta(self.id, self.item_id, base64.b64encode(piece).decode("ascii"))
            )
            self._audio_ms += len(piece) / 2 / self.spec.output_rate * 1000
        self._playout.synthesizing -= 1
