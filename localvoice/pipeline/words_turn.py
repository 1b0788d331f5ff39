"""Has the user finished, judged from the words: the chat model's own next-token probabilities.

After the pause's transcript, how likely is the user's message to end here? The chat model
(the weights already loaded for replies) reads the assistant's last words and the user's words
so far, as its chat template renders them, and the probability of what comes after a finished
message (the end-of-message token, or a sentence's final ".", "?" or "!") is the answer. This
is the idea of LiveKit's turn detector (a fine-tuned Qwen2.5-0.5B), without the fine-tuning:
the text is lower-cased and stripped of punctuation first, so Whisper's full stop does not
decide. Measured on sentences the thresholds were not tuned on (``docs/turn-taking.md``):
fragments ("can you remind me to call") score below 0.002, finished sentences and short
answers to the assistant's question ("seven" after "What time?") above it.

Smart Turn hears prosody, and synthetic or flat voices sound finished anywhere; the words are
the other half. One small llama.cpp context of its own on the chat model's weights (nothing
more to load, +19 MB measured), used only from the pipeline's turn-detection worker: llama.cpp
contexts are not thread-safe. The instructions and the assistant's words stay evaluated
between calls, so a pause costs the user's words (about 50 ms for ten tokens on one core).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from localvoice.pipeline.kvsnapshots import common_prefix

#: Below this the words are unfinished ("... a table for"): the turn waits for more.
UNFINISHED_BELOW = 0.002
#: At or above this the words are clearly finished.
FINISHED_FROM = 0.05
#: The assistant's last words the detector reads (its question gives a short answer its sense).
CONTEXT_CHARS = 200
N_CTX = 512
INSTRUCTIONS = "You are a helpful voice assistant."
_NOT_WORD = re.compile(r"[^\w\s'’-]")
# A finished sentence, then one word without punctuation: "... in the kitchen. Turn".
_STRAY_WORD = re.compile(r"[.?!]\s+[\w'’-]+\s*$")
_ENDINGS = ".?!"


def normalised(text: str) -> str:
    """The words alone: lower case, no punctuation but apostrophes and hyphens."""
    return " ".join(_NOT_WORD.sub(" ", text.lower()).split())


def judgeable(transcript: str) -> bool:
    """Whether the words of a pause's transcript say anything about the end of the turn.

    Not when a finished sentence is followed by one lone word: Whisper tiny.en often adds the
    first word again after a sentence cut 64 ms into the pause ("Turn off the lights in the
    kitchen. Turn", 3 times of 3 in one Piper voice), and the audio decides better then.
    """
    return bool(normalised(transcript)) and not _STRAY_WORD.search(transcript)


class WordsEndOfTurn:
    """P(the user's message is finished) from a chat model's next token.

    Args:
        model: the chat model's ``llama_cpp._internals.LlamaModel`` (weights shared).
        render: the chat template: (assistant's last words, user's words) to token ids.
        threads: llama.cpp threads of this context.
    """

    def __init__(
        self, model: Any, render: Callable[[str, str], list[int]], *, threads: int = 1
    ) -> None:
        import llama_cpp
        from llama_cpp import _internals

        self._llama = llama_cpp
        self._render = render
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = params.n_batch = params.n_ubatch = N_CTX
        params.n_threads = params.n_threads_batch = threads
        params.n_seq_max = 1
        params.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
        params.no_perf = True
        self._context = _internals.LlamaContext(model=model, params=params, verbose=False)
        self._ctx = self._context.ctx
        self._memory = llama_cpp.llama_get_memory(self._ctx)
        # Like the chat model's, the batch and the context live as long as the process.
        self._batch = llama_cpp.llama_batch_init(N_CTX, 0, 1)
        self._n_vocab = model.n_vocab()
        self._endings = _ending_tokens(model)
        self._evaluated: list[int] = []
        self.name = f"the chat model's next token ({len(self._endings)} ending tokens)"

    def probability(self, words: str, context: str = "") -> float:
        """P(finished) of the user's ``words`` after the assistant's ``context``; blocking."""
        text = normalised(words)
        if not text:
            return 1.0
        tokens = self._render(context[-CONTEXT_CHARS:], text)[-N_CTX:]
        keep = common_prefix(self._evaluated, tokens[:-1])  # the last is always evaluated
        self._llama.llama_memory_seq_rm(self._memory, 0, keep, -1)
        self._evaluated = self._evaluated[:keep]
        self._decode(tokens[keep:])
        logits = np.ctypeslib.as_array(
            self._llama.llama_get_logits_ith(self._ctx, -1), shape=(self._n_vocab,)
        ).astype(np.float64)
        top = logits.max()
        total = np.exp(logits - top).sum()
        return float(np.exp(logits[self._endings] - top).sum() / total)

    def _decode(self, tokens: Sequence[int]) -> None:
        batch = self._batch
        start = len(self._evaluated)
        for i, token in enumerate(tokens):
            batch.token[i] = token
            batch.pos[i] = start + i
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = 0
            batch.logits[i] = i == len(tokens) - 1
        batch.n_tokens = len(tokens)
        code = self._llama.llama_decode(self._ctx, batch)
        if code != 0:
            self._llama.llama_memory_seq_rm(self._memory, 0, 0, -1)
            self._evaluated = []
            msg = f"llama_decode returned {code}"
            raise RuntimeError(msg)
        self._evaluated.extend(tokens)


def _ending_tokens(model: Any) -> list[int]:
    """End of message, and tokens that are only sentence-final punctuation (not "...")."""
    import llama_cpp

    from localvoice.pipeline.llm_sampling import token_piece

    vocab = llama_cpp.llama_model_get_vocab(model.model)
    endings = {llama_cpp.llama_vocab_eot(vocab), llama_cpp.llama_vocab_eos(vocab)}
    for token in range(model.n_vocab()):
        piece = token_piece(vocab, token).decode("utf-8", "ignore").strip()
        final = bool(piece) and piece[0] in _ENDINGS and not piece.startswith("..")
        if final and all(c in _ENDINGS + "\"')" for c in piece):
            endings.add(token)
    return sorted(t for t in endings if 0 <= t < model.n_vocab())


def is_finished(probability: float) -> bool | None:
    """True: clearly finished; False: unfinished; None: the words cannot tell."""
    if math.isnan(probability):
        return None
    if probability < UNFINISHED_BELOW:
        return False
    if probability >= FINISHED_FROM:
        return True
    return None
