"""What the batched chat engine works on: replies being generated, prompts prefilled, KV slots.

``pipeline/llm_batch.py`` runs them; this module holds their state and the rules that need no
model (which slot a prompt goes to), so they can be tested alone.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from localvoice.pipeline.kvsnapshots import common_prefix
from localvoice.pipeline.llm_text import ReplyText
from localvoice.pipeline.stages import ChatStats

#: A slot whose other conversation loses at most this many tokens counts as a fit.
SMALL_LOSS_TOKENS = 16


@dataclass(eq=False)
class Slot:
    """One sequence of the shared KV cache: a conversation's evaluated prompt.

    Attributes:
        seq_id: the llama.cpp sequence id.
        tokens: what its KV cells hold, position by position.
        job: the reply or prefill using it now (``None``: idle, its cells kept for reuse).
        last_used: ``time.monotonic()`` of its last job's end.
    """

    seq_id: int
    tokens: list[int] = field(default_factory=list)
    job: Generation | Prefill | None = None
    last_used: float = 0.0


@dataclass(eq=False)
class Generation:
    """One reply being generated.

    Attributes:
        render: the prompt's tokens (rendered in the engine's thread, off the event loop).
        key: the conversation up to the user's turn (a prefill of that turn is superseded).
        temperature: sampling temperature (0: greedy).
        max_tokens: the reply's token cap.
        cancel: set by the session: the reply stops at its next token.
        emit: receives each piece of text (from the engine's thread).
        finish: called once at the end, with the failure if any.
        stats: token counts and time to first token, filled in as it goes.
        stops: the reply ends before the first of these strings.
        first_bias: (token, logit bias) for the reply's first token (a tool call's opening).
    """

    render: Callable[[], list[int]]
    key: str
    temperature: float
    max_tokens: int
    cancel: threading.Event
    emit: Callable[[str], None]
    finish: Callable[[BaseException | None], None]
    stats: ChatStats
    stops: Sequence[str]
    first_bias: tuple[int, float] | None = None
    started: float = field(default_factory=time.perf_counter)
    prompt: list[int] = field(default_factory=list)
    slot: Slot | None = None
    pending: list[int] = field(default_factory=list)  # prompt tokens not evaluated yet
    next_token: int | None = None  # sampled, to be evaluated by the next step
    generated: int = 0
    sampler: Any = None
    text: ReplyText = field(init=False)

    def __post_init__(self) -> None:
        self.text = ReplyText(self.stops)


@dataclass(eq=False)
class Prefill:
    """A prompt to evaluate ahead of its reply (the user is still speaking); best effort."""

    render: Callable[[], list[int]]
    key: str
    prompt: list[int] = field(default_factory=list)
    slot: Slot | None = None
    pending: list[int] = field(default_factory=list)


#: A lone reply's tokens that may be decoded on both threads: its first spoken chunk (2 words)
#: and a few more, until synthesis takes the other core.
FAST_FIRST_TOKENS = 5


def pick_slot(slots: Sequence[Slot], prompt: Sequence[int], *, preempt: bool) -> Slot | None:
    """The slot a prompt should take, or ``None`` when all are busy.

    A slot whose content is (nearly) a prefix of the prompt is this conversation's: it is
    preferred, the longest first. Otherwise the least recently used slot is taken, so the
    conversation that waited longest loses its cells (the shared beginning, such as the
    instructions, is copied in from any slot by the engine). ``preempt``: a running prefill's
    slot may be taken (by a reply).
    """
    best: tuple[Any, ...] | None = None
    chosen = None
    for slot in slots:
        if slot.job is not None and not (preempt and isinstance(slot.job, Prefill)):
            continue
        shared = common_prefix(slot.tokens, prompt)
        loss = len(slot.tokens) - shared
        rank = (0, -shared, slot.last_used) if loss <= SMALL_LOSS_TOKENS else (1, slot.last_used)
        if best is None or rank < best:
            best, chosen = rank, slot
    return chosen


def decode_threads(
    jobs: Sequence[Generation | Prefill],
    n_tokens: int,
    threads: tuple[int, int],
    *,
    others_busy: bool = False,
    other_replies: bool = False,
) -> int:
    """The llama.cpp threads for one decode; ``threads``: (``n_threads``, ``n_threads_batch``).

    ``n_threads`` whenever another model works (``others_busy``: speech recognition, synthesis
    or a turn check is running or queued): two llama.cpp threads beside it wait on each other
    at every layer, and both slow down (with 4 sessions at once a 5-token prefill step took
    1.24 s on two threads against about 0.1 s, while a transcription beside it took 0.67 s
    against 0.1-0.15 s; logbook, 2026-12-07); and for a step of prefills only, which nobody
    waits for while speech goes on being recognised. Otherwise ``n_threads_batch`` for a step
    that evaluates prompt tokens (more tokens than jobs: one session's prompt or several's), and
    for a step in which a reply is within its first ``FAST_FIRST_TOKENS``: its user waits for
    the first chunk, and synthesis has not started. A step of one reply alone among several
    in the engine (``other_replies``) is the exception: 8 sessions were slower with both
    threads there, their synthesis about to start. Other steps use ``n_threads``: their
    sessions' synthesis needs the other core.
    """
    if others_busy:
        return threads[0]
    replies = [job for job in jobs if isinstance(job, Generation)]
    if not replies:  # prefills only: nobody waits for them, and speech is being recognised
        return threads[0]
    if n_tokens > len(jobs):
        return threads[1]
    if len(jobs) == 1 and other_replies:
        return threads[0]
    first_tokens = any(job.generated < FAST_FIRST_TOKENS for job in replies)
    return threads[1] if first_tokens else threads[0]
