"""Chat models: llama.cpp with a local GGUF, or an OpenAI-compatible endpoint on this machine.

The bundled GGUFs and their prompt formats are listed in ``localvoice/pipeline/llms/registry.py``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aiohttp

from localvoice.pipeline.kvsnapshots import KvSnapshots
from localvoice.pipeline.llm_batch import BatchedLlama
from localvoice.pipeline.llm_jobs import Generation, Prefill
from localvoice.pipeline.llms.base import ChatFormat
from localvoice.pipeline.stages import ChatStats
from localvoice.pipeline.words_turn import INSTRUCTIONS as WORDS_INSTRUCTIONS
from localvoice.pipeline.words_turn import WordsEndOfTurn

if TYPE_CHECKING:
    from localvoice.config import ServerConfig

logger = logging.getLogger(__name__)

LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
#: Conversations kept evaluated in the context, and replies generated at once.
SLOTS = 8
#: KV cells per slot in the shared cache (a conversation may use more while others use less).
KV_CELLS_PER_SLOT = 1024
#: For a GGUF without a chat template.
CHATML = (
    "{% for message in messages %}<|im_start|>{{ message.role }}\n{{ message.content }}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
# Marks where the unfinished user turn ends in the rendered prompt (never in real text).
_CUT = "\u2063\u2063prefill\u2063\u2063"


class LlamaChat:
    """A GGUF chat model run by llama.cpp, every session's replies batched in one thread.

    ``pipeline/llm_batch.py`` is the engine: one context whose sequences hold the
    conversations, one decode per step for all replies in flight.

    Args:
        model_path: the GGUF file (with a chat template).
        chat_format: the model's prompt format, stop strings and tool-call format.
        n_threads: llama.cpp threads for a one-token decode.
        n_threads_batch: threads for decodes of several tokens (prompts, several replies).
        n_ctx: one conversation's context size (prompt plus reply).
        prefill: honour ``prefill`` (off: it does nothing).
        kv_snapshot_bytes: bound of the evaluated prompts kept for conversations beyond the
            engine's slots (``pipeline/kvsnapshots.py``; 0: none).
        slots: conversations whose evaluated prompt stays in the context; replies at once.
    """

    def __init__(
        self,
        model_path: Path,
        chat_format: ChatFormat,
        n_threads: int = 1,
        n_threads_batch: int = 2,
        n_ctx: int = 2048,
        prefill: bool = True,
        kv_snapshot_bytes: int = 128 << 20,
        slots: int = SLOTS,
    ) -> None:
        self.format = chat_format
        self.name = f"llama.cpp {chat_format.label} ({model_path.name})"
        self.engine = BatchedLlama(
            model_path,
            n_threads=n_threads,
            n_threads_batch=n_threads_batch,
            slots=slots,
            n_ctx=max(n_ctx, slots * KV_CELLS_PER_SLOT),
            seq_ctx=n_ctx,
            kv_snapshot_bytes=kv_snapshot_bytes,
        )
        model = self.engine.model
        template = model.metadata().get("tokenizer.chat_template")
        if not template:
            logger.warning("%s has no chat template; using ChatML", model_path.name)
        self._formatter = _formatter(model, template or CHATML)
        self._stops = tuple(dict.fromkeys([*chat_format.stop, *_eos_stop(model)]))
        self._prefill_on = prefill
        self._call_bias = _call_bias(model, chat_format)

    @property
    def prefilled_tokens(self) -> int:
        """Prompt tokens evaluated ahead of replies (for the benchmarks and tests)."""
        return self.engine.prefilled_tokens

    @property
    def snapshots(self) -> KvSnapshots:
        """Conversations that lost their slot (for the benchmarks and tests)."""
        return self.engine.snapshots

    async def stream(
        self,
        messages: list[dict[str, str]],
        *,
        temperature: float,
        max_tokens: int,
        cancel: threading.Event,
        stats: ChatStats,
        tools_offered: bool = False,
    ) -> AsyncIterator[str]:
        """Stream the reply; the engine stops it at its next token once ``cancel`` is set."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str | BaseException | None] = asyncio.Queue()

        def put(item: str | BaseException | None) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the loop is gone: the server is shutting down
                cancel.set()

        self.engine.submit(
            Generation(
                render=lambda: self._prompt_tokens(messages),
                key=_conversation_key(messages),
                temperature=temperature,
                max_tokens=max_tokens,
                cancel=cancel,
                emit=put,
                finish=put,
                stats=stats,
                stops=self._stops,
                first_bias=self._call_bias if tools_offered else None,
            )
        )
        try:
            while True:
                item = await queue.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            cancel.set()

    def starting(self) -> bool:
        """Whether a reply waits for its prompt or first tokens in the engine."""
        return self.engine.starting()

    def prefill(self, messages: list[dict[str, str]]) -> None:
        """Evaluate the prompt up to the end of the unfinished user turn into the KV cache.

        The reply's prompt then extends it, and the engine keeps what was evaluated here: the
        reply's first token comes sooner. Only the newest request per conversation runs, and
        only while no reply waits for its prompt or first tokens.
        """
        if self._prefill_on:
            key = _conversation_key(messages)
            self.engine.submit(Prefill(render=lambda: self._prefix_tokens(messages), key=key))

    def words_end_of_turn(self, threads: int = 1) -> WordsEndOfTurn:
        """A words end-of-turn detector on this model's weights (``pipeline/words_turn.py``)."""

        def render(context: str, words: str) -> list[int]:
            messages = [{"role": "system", "content": WORDS_INSTRUCTIONS}]
            if context:
                messages.append({"role": "assistant", "content": context})
            messages.append({"role": "user", "content": words})
            return self._prefix_tokens(messages)

        return WordsEndOfTurn(self.engine.model, render, threads=threads)

    def close(self) -> None:
        """Stop the engine's thread."""
        self.engine.close()

    def _prefix_tokens(self, messages: list[dict[str, str]]) -> list[int]:
        """The prompt up to the end of the last message's text (an unfinished user turn)."""
        *head, last = messages
        marked = [*head, {**last, "content": last["content"] + _CUT}]
        return self._prompt_tokens(marked, cut=_CUT)

    def _prompt_tokens(self, messages: list[dict[str, str]], cut: str | None = None) -> list[int]:
        """The prompt of ``messages`` (up to ``cut``), as llama-cpp-python's chat would have it."""
        rendered = self._formatter(messages=messages)
        text = rendered.prompt if cut is None else rendered.prompt.split(cut, 1)[0]
        tokens = self.engine.model.tokenize(
            text.encode("utf-8"), add_bos=not rendered.added_special, special=True
        )
        return list(tokens)


def _call_bias(model: Any, chat_format: ChatFormat) -> tuple[int, float] | None:
    """The format's first-token bias towards a tool call, if its opening is one token."""
    if not chat_format.call_opening or not chat_format.call_bias:
        return None
    tokens = model.tokenize(chat_format.call_opening.encode(), add_bos=False, special=True)
    if len(tokens) != 1:
        logger.warning("%r is not one token: no bias towards calls", chat_format.call_opening)
        return None
    return tokens[0], chat_format.call_bias


def _conversation_key(messages: list[dict[str, str]]) -> str:
    """The conversation before its last (user) message: a turn's prefills and reply share it."""
    return json.dumps(messages[:-1], sort_keys=True)


def _formatter(model: Any, template: str) -> Any:
    """The chat template, rendered as llama-cpp-python renders it for chat completions."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    eos, bos = model.token_eos(), model.token_bos()
    return Jinja2ChatFormatter(
        template=template,
        eos_token=model.token_get_text(eos) if eos != -1 else "",
        bos_token=model.token_get_text(bos) if bos != -1 else "",
    )


def _eos_stop(model: Any) -> list[str]:
    """The end-of-sequence token's text, a stop string of llama-cpp-python's chat completion."""
    eos = model.token_eos()
    return [model.token_get_text(eos)] if eos != -1 else []


class OpenAICompatibleChat:
    """Any OpenAI-compatible ``/chat/completions`` endpoint on this machine, streamed over SSE.

    Args:
        url: the base URL (``http://127.0.0.1:8080/v1``) or the full completions URL.
        model: the ``model`` field to send.
    """

    def __init__(self, url: str, model: str = "local") -> None:
        self.format = ChatFormat()
        parts = urlsplit(url)
        if parts.hostname not in LOCAL_HOSTS:
            msg = f"--llm-url must point at this machine (127.0.0.1/localhost), got {url!r}"
            raise ValueError(msg)
        base = url.rstrip("/")
        self.url = base if base.endswith("/chat/completions") else base + "/chat/completions"
        self.model = model
        self.name = f"openai-compatible {self.url}"

    async def stream(
        self,
        messages: list[dict[str, str]],
        *,
        temperature: float,
        max_tokens: int,
        cancel: threading.Event,
        stats: ChatStats,
        tools_offered: bool = False,
    ) -> AsyncIterator[str]:
        """Stream the reply from the endpoint's server-sent events (never offered tools)."""
        started = time.perf_counter()
        body = {
            "model": self.model,
            "messages": messages,
            "temperature": temperature,
            "max_tokens": max_tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        timeout = aiohttp.ClientTimeout(total=120, sock_connect=5)
        async with (
            aiohttp.ClientSession(timeout=timeout) as http,
            http.post(self.url, json=body) as resp,
        ):
            resp.raise_for_status()
            async for raw in resp.content:
                if cancel.is_set():
                    return
                line = raw.decode("utf-8", "replace").strip()
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    return
                chunk = json.loads(data)
                if chunk.get("usage"):
                    stats.prompt_tokens = int(chunk["usage"].get("prompt_tokens") or 0)
                    stats.completion_tokens = int(chunk["usage"].get("completion_tokens") or 0)
                for choice in chunk.get("choices") or []:
                    delta = (choice.get("delta") or {}).get("content")
                    if delta:
                        if stats.first_token_ms is None:
                            stats.first_token_ms = (time.perf_counter() - started) * 1000
                        stats.completion_tokens += 0 if chunk.get("usage") else 1
                        yield delta

    def prefill(self, messages: list[dict[str, str]]) -> None:
        """Nothing: the endpoint's server keeps its own cache."""

    def starting(self) -> bool:
        """Never: the endpoint's server has cores of its own to answer with."""
        return False


async def _warm(llm: LlamaChat) -> None:
    messages = [
        {"role": "system", "content": "You are a friendly voice assistant."},
        {"role": "user", "content": "Hello"},
    ]
    async for _ in llm.stream(
        messages, temperature=0.2, max_tokens=4, cancel=threading.Event(), stats=ChatStats()
    ):
        pass


def load_llama(config: ServerConfig, chat_format: ChatFormat, path: Path | None) -> LlamaChat:
    """The ``llama.cpp`` entry of ``pipeline/registry.py``: the GGUF at ``path``, warmed up."""
    if path is None:
        msg = "llama.cpp needs a GGUF file"
        raise ValueError(msg)
    llm = LlamaChat(
        path,
        chat_format,
        n_threads=config.llm_threads or config.threads,
        n_threads_batch=config.threads,
        prefill=config.prefill,
        kv_snapshot_bytes=config.kv_snapshot_mb << 20,
    )
    asyncio.run(_warm(llm))
    return llm


def load_openai_compatible(
    config: ServerConfig, chat_format: ChatFormat, path: Path | None
) -> OpenAICompatibleChat:
    """The ``openai-compatible`` entry of ``pipeline/registry.py`` (``--llm-url``).

    The endpoint's server applies the chat template, so the generic format is used.
    """
    assert config.llm_url is not None
    return OpenAICompatibleChat(config.llm_url)
