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
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aiohttp

from localvoice.pipeline.kvsnapshots import KvSnapshots
from localvoice.pipeline.llms.base import ChatFormat
from localvoice.pipeline.stages import ChatStats

if TYPE_CHECKING:
    from localvoice.config import ServerConfig

logger = logging.getLogger(__name__)

LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
#: Tokens a prefill evaluates between checks for a reply waiting for the model (about 80 ms).
PREFILL_SLICE = 8
# Marks where the unfinished user turn ends in the rendered prompt (never in real text).
_CUT = "\u2063\u2063prefill\u2063\u2063"


class LlamaChat:
    """A GGUF chat model run by llama-cpp-python in one dedicated thread (it is not thread-safe).

    Args:
        model_path: the GGUF file (with a chat template).
        chat_format: the model's prompt format, stop strings and tool-call format.
        n_threads: llama.cpp threads for generating tokens.
        n_threads_batch: threads for evaluating the prompt (parallelises well).
        n_ctx: context size.
        prefill: honour ``prefill`` (off: it does nothing).
        kv_snapshot_bytes: bound of the evaluated prompts kept per conversation
            (``pipeline/kvsnapshots.py``; 0: none).
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
    ) -> None:
        from llama_cpp import Llama

        self.format = chat_format
        self.name = f"llama.cpp {chat_format.label} ({model_path.name})"
        self._llm = Llama(
            model_path=str(model_path),
            n_ctx=n_ctx,
            n_threads=n_threads,
            n_threads_batch=n_threads_batch,
            verbose=False,
        )
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="lv-llm")
        template = self._llm.metadata.get("tokenizer.chat_template")
        self._formatter = _formatter(self._llm, template) if template else None
        self._prefill_on = prefill and self._formatter is not None
        self.snapshots = KvSnapshots(self._llm, kv_snapshot_bytes if self._formatter else 0)
        # Prefill bookkeeping, shared by the event loop and the model thread.
        self._state = threading.Lock()
        self._replies_waiting = 0
        self._prefill_next: list[dict[str, str]] | None = None
        #: Prompt tokens evaluated ahead of replies (for the benchmarks and tests).
        self.prefilled_tokens = 0

    def _generate(
        self,
        messages: list[dict[str, str]],
        temperature: float,
        max_tokens: int,
        cancel: threading.Event,
        stats: ChatStats,
        put: Any,
    ) -> None:
        started = time.perf_counter()
        count = 0
        with self._lock:
            if len(self.snapshots):  # else there is nothing to restore: skip the rendering
                self.snapshots.restore_for(self._prompt_tokens(messages))
            chunks = self._llm.create_chat_completion(
                messages=messages,  # type: ignore[arg-type]
                stream=True,
                temperature=temperature,
                max_tokens=max_tokens,
                repeat_penalty=1.05,
                stop=list(self.format.stop) or None,
            )
            try:
                for chunk in chunks:
                    if cancel.is_set():
                        break
                    delta = chunk["choices"][0]["delta"].get("content")  # type: ignore[index,union-attr]
                    if delta:
                        if stats.first_token_ms is None:
                            stats.first_token_ms = (time.perf_counter() - started) * 1000
                        count += 1
                        put(delta)
            finally:
                chunks.close()  # type: ignore[union-attr]
                stats.completion_tokens = count
                stats.prompt_tokens = max(0, int(self._llm.n_tokens) - count)
                self.snapshots.save()

    async def stream(
        self,
        messages: list[dict[str, str]],
        *,
        temperature: float,
        max_tokens: int,
        cancel: threading.Event,
        stats: ChatStats,
    ) -> AsyncIterator[str]:
        """Stream the reply; the worker thread stops at the next token once ``cancel`` is set."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str | BaseException | None] = asyncio.Queue()

        def put(item: str | BaseException | None) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the loop is gone: the server is shutting down
                cancel.set()

        def work() -> None:
            with self._state:
                self._replies_waiting -= 1
            try:
                self._generate(messages, temperature, max_tokens, cancel, stats, put)
            except Exception as exc:
                put(exc)
            else:
                put(None)

        with self._state:
            self._replies_waiting += 1
        loop.run_in_executor(self._pool, work)  # type: ignore[unused-awaitable]
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

    def prefill(self, messages: list[dict[str, str]]) -> None:
        """Evaluate the prompt up to the end of the unfinished user turn into the KV cache.

        The reply's prompt then extends it, and llama.cpp's prefix match skips what was evaluated
        here: the reply's first token comes sooner. Only the newest request runs; it yields to a
        waiting reply within ``PREFILL_SLICE`` tokens.
        """
        if not self._prefill_on:
            return
        with self._state:
            scheduled = self._prefill_next is not None
            self._prefill_next = messages
        if not scheduled:
            self._pool.submit(self._run_prefill).add_done_callback(_log_prefill_failure)

    def _run_prefill(self) -> None:
        with self._state:
            messages, self._prefill_next = self._prefill_next, None
            if messages is None or self._replies_waiting:
                return
        tokens = self._prefix_tokens(messages)
        with self._lock:
            llm = self._llm
            done = self.snapshots.restore_for(tokens)
            if done >= len(tokens):
                return
            llm.n_tokens = done
            llm._ctx.kv_cache_seq_rm(-1, done, -1)  # what a snapshot of it would hold
            try:
                for start in range(done, len(tokens), PREFILL_SLICE):
                    with self._state:
                        if self._replies_waiting:
                            return
                    piece = tokens[start : start + PREFILL_SLICE]
                    llm.eval(piece)
                    self.prefilled_tokens += len(piece)
            finally:
                self.snapshots.save()

    def _prefix_tokens(self, messages: list[dict[str, str]]) -> list[int]:
        """The prompt up to the end of the last message's text (an unfinished user turn)."""
        *head, last = messages
        marked = [*head, {**last, "content": last["content"] + _CUT}]
        return self._prompt_tokens(marked, cut=_CUT)

    def _prompt_tokens(self, messages: list[dict[str, str]], cut: str | None = None) -> list[int]:
        """The prompt of ``messages`` (up to ``cut``), as create_chat_completion tokenises it."""
        assert self._formatter is not None
        rendered = self._formatter(messages=messages)
        text = rendered.prompt if cut is None else rendered.prompt.split(cut, 1)[0]
        return self._llm.tokenize(
            text.encode("utf-8"), add_bos=not rendered.added_special, special=True
        )


def _formatter(llm: Any, template: str) -> Any:
    """The GGUF's chat template, rendered as llama-cpp-python renders it for chat completions."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    eos, bos = llm.token_eos(), llm.token_bos()
    return Jinja2ChatFormatter(
        template=template,
        eos_token=llm._model.token_get_text(eos) if eos != -1 else "",
        bos_token=llm._model.token_get_text(bos) if bos != -1 else "",
    )


def _log_prefill_failure(future: Future[None]) -> None:
    if not future.cancelled() and future.exception() is not None:
        logger.error("prompt prefill failed", exc_info=future.exception())


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
    ) -> AsyncIterator[str]:
        """Stream the reply from the endpoint's server-sent events."""
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
