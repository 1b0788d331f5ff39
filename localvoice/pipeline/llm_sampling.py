"""Per-reply sampling and token text for the batched engine (``pipeline/llm_batch.py``).

Each reply gets the sampler chain llama-cpp-python builds for a chat completion, so replies
sample as they did when the engine called ``create_chat_completion``: repeat penalty over the
last 64 generated tokens, then greedy at temperature 0, else top-k 40, typical 1.0, top-p 0.95,
min-p 0.05, the temperature, and a random draw.
"""

from __future__ import annotations

import ctypes
import random
from typing import Any

#: Penalised window and repeat penalty, as the single-sequence path used them.
PENALTY_LAST_N = 64
REPEAT_PENALTY = 1.05


def reply_sampler(n_vocab: int, temperature: float) -> Any:
    """A fresh sampler chain (``llama_cpp._internals.LlamaSampler``) for one reply."""
    from llama_cpp import _internals

    sampler = _internals.LlamaSampler()
    sampler.add_penalties(
        n_vocab=n_vocab,
        penalty_last_n=PENALTY_LAST_N,
        penalty_repeat=REPEAT_PENALTY,
        penalty_freq=0.0,
        penalty_present=0.0,
    )
    if temperature <= 0.0:
        sampler.add_greedy()
    else:
        sampler.add_top_k(40)
        sampler.add_typical(1.0, 1)
        sampler.add_top_p(0.95, 1)
        sampler.add_min_p(0.05, 1)
        sampler.add_temp(temperature)
        sampler.add_dist(random.getrandbits(32))
    return sampler


def token_piece(vocab: Any, token: int) -> bytes:
    """A generated token's bytes (special tokens render as nothing, as in a completion)."""
    import llama_cpp

    size = 32
    while True:
        buffer = ctypes.create_string_buffer(size)
        n = llama_cpp.llama_token_to_piece(vocab, token, buffer, size, 0, False)
        if n >= 0:
            return buffer.raw[:n]
        size = -n
