"""Snapshots of llama.cpp KV sequences, so conversations beyond the engine's slots keep theirs.

The batched engine (``pipeline/llm_batch.py``) keeps each recent conversation's evaluated
prompt in a sequence (slot) of one shared KV cache. When a new conversation needs a slot that
holds another one, that conversation's cells are copied out here first (about 12 KB per token
for Qwen2.5-0.5B, a millisecond or two), and a later turn of it copies them back into whichever
slot it gets instead of evaluating its prompt again (hundreds of tokens at about 10 ms each on
2 cores). (llama-cpp-python's own ``LlamaRAMCache`` also copies the logits of every token,
about 600 KB per token with Qwen's vocabulary.)

Not thread-safe: used only from the engine's thread.
"""

from __future__ import annotations

import ctypes
import logging
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

#: A snapshot is restored only when it saves at least this many tokens of evaluation.
MIN_GAIN_TOKENS = 8


def common_prefix(a: Sequence[int] | np.ndarray[Any, Any], b: Sequence[int]) -> int:
    """How many leading tokens ``a`` and ``b`` share."""
    left = np.asarray(a, dtype=np.intc)
    right = np.asarray(b, dtype=np.intc)
    n = min(left.size, right.size)
    if n == 0:
        return 0
    differ = np.flatnonzero(left[:n] != right[:n])
    return int(differ[0]) if differ.size else n


class KvSnapshots:
    """Conversations' KV cells copied out of their sequence, least recently used dropped first.

    Args:
        ctx: the ``llama_context_p`` whose sequences are saved and restored.
        capacity_bytes: the snapshots' total size bound (0: off).
    """

    def __init__(self, ctx: Any, capacity_bytes: int) -> None:
        self._ctx = ctx
        self._capacity = capacity_bytes
        self._snapshots: OrderedDict[int, tuple[np.ndarray[Any, Any], bytes]] = OrderedDict()
        self._next_key = 0
        self.size_bytes = 0
        #: Snapshots restored so far (for the benchmarks and tests).
        self.restored = 0

    def best(self, prompt: Sequence[int]) -> tuple[int | None, int]:
        """The snapshot sharing the longest prefix with ``prompt``, and that length."""
        best_key, best = None, 0
        for key, (tokens, _) in self._snapshots.items():
            shared = common_prefix(tokens, prompt)
            if shared > best:
                best_key, best = key, shared
        return best_key, best

    def restore(self, key: int, seq_id: int) -> list[int]:
        """Load snapshot ``key`` into the (emptied) sequence; returns the tokens it now holds."""
        tokens, cells = self._snapshots[key]
        self._snapshots.move_to_end(key)
        buffer = (ctypes.c_uint8 * len(cells)).from_buffer_copy(cells)
        if not _llama().llama_state_seq_set_data(self._ctx, buffer, len(cells), seq_id):
            logger.warning("a KV snapshot could not be restored; evaluating the prompt")
            return []
        self.restored += 1
        return [int(t) for t in tokens]

    def save(self, seq_id: int, tokens: Sequence[int]) -> None:
        """Copy out a sequence given to another conversation (dropping the copies it extends)."""
        if not self._capacity or not tokens:
            return
        llama = _llama()
        size = llama.llama_state_seq_get_size(self._ctx, seq_id)
        if size > self._capacity:
            return
        buffer = (ctypes.c_uint8 * size)()
        written = llama.llama_state_seq_get_data(self._ctx, buffer, size, seq_id)
        kept = np.asarray(tokens, dtype=np.intc).copy()
        for key, (old, cells) in list(self._snapshots.items()):
            if common_prefix(old, tokens) == old.size:  # the same conversation, grown
                del self._snapshots[key]
                self.size_bytes -= len(cells)
        cells = bytes(buffer)[:written]
        self._snapshots[self._next_key] = (kept, cells)
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
