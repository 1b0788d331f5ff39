"""Snapshots of llama.cpp's KV cache, so sessions sharing one model keep their evaluated prompts.

llama-cpp-python keeps one context: a session's reply or prefill evaluates over whatever the
previous one left, and its prefix match only helps if that was the same conversation. With two
sessions taking turns, each reply would evaluate its whole prompt (instructions and history,
hundreds of tokens at about 10 ms each on 2 cores). So after each evaluation the context's KV
cells are copied out (about 12 KB per token for Qwen2.5-0.5B, a millisecond or two), and
before the next one the snapshot sharing the longest prefix with its prompt is copied back
when it beats what the context holds. (llama-cpp-python's own ``LlamaRAMCache`` also copies
the logits of every token, about 600 KB per token with Qwen's vocabulary.)

Not thread-safe: used only from the model's own thread.
"""

from __future__ import annotations

import ctypes
import logging
from collections import OrderedDict
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

#: A snapshot is restored only when it saves at least this many tokens of evaluation.
MIN_GAIN_TOKENS = 8


def _common_prefix(a: np.ndarray[Any, Any], b: np.ndarray[Any, Any]) -> int:
    n = min(a.size, b.size)
    if n == 0:
        return 0
    differ = np.flatnonzero(a[:n] != b[:n])
    return int(differ[0]) if differ.size else n


class KvSnapshots:
    """Recently evaluated prompts' KV cells, least recently used dropped first.

    Args:
        llm: the ``llama_cpp.Llama`` whose context is saved and restored.
        capacity_bytes: the snapshots' total size bound (0: off).
    """

    def __init__(self, llm: Any, capacity_bytes: int) -> None:
        self._llm = llm
        self._capacity = capacity_bytes
        self._snapshots: OrderedDict[int, tuple[np.ndarray[Any, Any], bytes]] = OrderedDict()
        self._next_key = 0
        self.size_bytes = 0
        #: Snapshots restored so far (for the benchmarks and tests).
        self.restored = 0

    def _live_tokens(self) -> np.ndarray[Any, Any]:
        return np.asarray(self._llm.input_ids[: self._llm.n_tokens], dtype=np.intc)

    def restore_for(self, prompt: list[int]) -> int:
        """Before evaluating ``prompt``: load the snapshot that covers most of it, if worth it.

        Returns how many of its leading tokens the context now holds (the evaluation skips them).
        """
        wanted = np.asarray(prompt, dtype=np.intc)
        live = _common_prefix(self._live_tokens(), wanted)
        best_key, best = None, live
        for key, (tokens, _) in self._snapshots.items():
            shared = _common_prefix(tokens, wanted)
            if shared > best:
                best_key, best = key, shared
        if best_key is None or best - live < MIN_GAIN_TOKENS:
            return live
        tokens, cells = self._snapshots[best_key]
        self._snapshots.move_to_end(best_key)
        llm = self._llm
        llm._ctx.kv_cache_clear()
        buffer = (ctypes.c_uint8 * len(cells)).from_buffer_copy(cells)
        if not _llama().llama_state_seq_set_data(llm._ctx.ctx, buffer, len(cells), 0):
            logger.warning("a KV snapshot could not be restored; evaluating the prompt")
            llm.n_tokens = 0
            return 0
        llm.input_ids[: tokens.size] = tokens
        llm.n_tokens = int(tokens.size)
        llm._requires_eval = True  # the next token's logits come from a fresh decode
        self.restored += 1
        return best

    def save(self) -> None:
        """After an evaluation: snapshot the context (replacing snapshots it extends)."""
        if not self._capacity or self._llm.n_tokens == 0:
            return
        llama = _llama()
        ctx = self._llm._ctx.ctx
        size = llama.llama_state_seq_get_size(ctx, 0)
        if size > self._capacity:
            return
        buffer = (ctypes.c_uint8 * size)()
        written = llama.llama_state_seq_get_data(ctx, buffer, size, 0)
        tokens = self._live_tokens().copy()
        for key, (old, cells) in list(self._snapshots.items()):
            if _common_prefix(old, tokens) == old.size:  # the same conversation, grown
                del self._snapshots[key]
                self.size_bytes -= len(cells)
        cells = bytes(buffer)[:written]
        self._snapshots[self._next_key] = (tokens, cells)
        self._next_key += 1
        self.size_bytes += len(cells)
        while self.size_bytes > self._capacity:
            _, (_, dropped) = self._snapshots.popitem(last=False)
            self.size_bytes -= len(dropped)

    def __len__(self) -> int:
        return len(self._snapshots)


def _llama() -> Any:
    import llama_cpp

    return llama_cpp
