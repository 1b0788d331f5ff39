"""Chat models: llama.cpp with a local GGUF, or an OpenAI-compatible endpoint on this machine.

The bundled GGUFs and their prompt formats are listed in ``localvoice/llms/registry.py``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aiohttp

from localvoice.llms.base import ChatFormat
from localvoice.pipeline.base import ChatStats

if TYPE_CHECKING:
    from localvoice.config import ServerConfig

logger = logging.getLogger(__name__)

LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class LlamaChat:
    """A GGUF chat model run by llama-cpp-python in one dedicated thread (it is not thread-safe).

    Args:
        model_path: the GGUF file (with a chat template).
        chat_format: the model's prompt format, stop strings and tool-call format.
        n_threads: llama.cpp threads for generating tokens.
        n_threads_batch: threads for evaluating the prompt (parallelises well).
        n_ctx: context size.
    """

    def __init__(
        self,
        model_path: Path,
        chat_format: ChatFormat,
        n_threads: int = 1,
        n_threads_batch: int = 2,
        n_ctx: int = 2048,
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
            try:
                self._generate(messages, temperature, max_tokens, cancel, stats, put)
            except Exception as exc:
                put(exc)
            else:
                put(None)

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
