"""One llama.cpp context serving every session's replies at once, one batch per decode.

A single thread owns the context (llama.cpp is not thread-safe) and loops: each step puts
the next token of every reply being generated, a chunk of the prompts still to evaluate and,
when nothing is urgent, a slice of a speculative prefill into one ``llama_batch`` of several
sequences, decodes it once and samples each reply's next token from its own sampler. On a
CPU a step of a few tokens costs little more than a step of one, so sessions speaking at once
share the decodes instead of queueing whole replies behind each other.

What comes first is what the user waits for: a reply's first tokens (its first spoken chunk)
and its prompt. While any reply is there, the replies already past their first tokens are
decoded only every ``TAIL_EVERY`` steps and prefills wait. Prompts are evaluated shortest
first: ``STEP_TOKENS`` per step while other replies decode, else whole.

Each conversation keeps its evaluated prompt in a sequence (``Slot``) of the shared, unified
KV cache; a prompt sharing a beginning with another sequence (the same instructions) copies
those cells instead of evaluating them, and a conversation whose slot is taken keeps a
snapshot (``pipeline/kvsnapshots.py``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from localvoice.pipeline.kvsnapshots import MIN_GAIN_TOKENS, KvSnapshots, common_prefix
from localvoice.pipeline.llm_jobs import Generation, Prefill, Slot, decode_threads, pick_slot
from localvoice.pipeline.llm_sampling import reply_sampler, token_piece

logger = logging.getLogger(__name__)

#: Tokens one decode evaluates at most (the batch's size).
BATCH_TOKENS = 512
#: Prompt tokens per step while other replies are decoding, so their next tokens are not held
#: up for long; with none, a prompt is evaluated whole, in one decode (fewer, larger decodes:
#: on the busy machine a lone 450-token prompt cut into 32-token steps took 40 s against 12 s
#: whole, logbook 2026-12-07).
STEP_TOKENS = 32
#: A reply's first tokens, decoded every step: the first spoken chunk is 2 words.
FIRST_TOKENS = 10
#: While a reply waits for its prompt or first tokens, longer replies get a token every
#: this many steps (their audio is already playing).
TAIL_EVERY = 2
#: Prompt tokens a prefill evaluates per step (a step is then about 80 ms longer).
PREFILL_SLICE = 8
#: Prefill tokens of all conversations in one step, at most.
PREFILL_STEP_TOKENS = 16

_backend_ready = False


def _never() -> bool:
    return False


class BatchedLlama:
    """A GGUF model and one context with ``slots`` sequences, run by one thread.

    Args:
        model_path: the GGUF file.
        n_threads: threads for a one-token decode.
        n_threads_batch: threads for a decode of several tokens.
        slots: sequences (conversations whose prompt stays evaluated; replies at once).
        n_ctx: KV cells shared by all sequences.
        seq_ctx: one reply's bound on prompt plus reply tokens.
        kv_snapshot_bytes: bound of the snapshots of conversations that lost their slot.
    """

    def __init__(
        self,
        model_path: Path,
        *,
        n_threads: int,
        n_threads_batch: int,
        slots: int = 8,
        n_ctx: int = 8192,
        seq_ctx: int = 2048,
        kv_snapshot_bytes: int = 128 << 20,
    ) -> None:
        import llama_cpp
        from llama_cpp import _internals
        from llama_cpp._logger import set_verbose

        global _backend_ready
        if not _backend_ready:
            llama_cpp.llama_backend_init()
            _backend_ready = True
        set_verbose(False)
        self._llama = llama_cpp
        model_params = llama_cpp.llama_model_default_params()
        model_params.n_gpu_layers = 0
        self.model = _internals.LlamaModel(
            path_model=str(model_path), params=model_params, verbose=False
        )
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = n_ctx
        params.n_batch = params.n_ubatch = BATCH_TOKENS
        params.n_threads = n_threads
        params.n_threads_batch = n_threads_batch
        params.n_seq_max = slots
        params.kv_unified = True  # sequences share cells: a common prefix is copied, not redone
        params.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
        params.no_perf = True
        self._context = _internals.LlamaContext(model=self.model, params=params, verbose=False)
        self._ctx = self._context.ctx
        self._memory = llama_cpp.llama_get_memory(self._ctx)
        self._batch = llama_cpp.llama_batch_init(BATCH_TOKENS, 0, 1)
        self._n_vocab = self.model.n_vocab()
        self._threads = (n_threads, n_threads_batch)
        self._threads_now = 0
        #: Whether another model works now (the pipeline sets it; ``llm_jobs.decode_threads``).
        self.others_busy: Callable[[], bool] = _never
        self.seq_ctx = seq_ctx
        self.slots = [Slot(seq_id) for seq_id in range(slots)]
        self.snapshots = KvSnapshots(self._ctx, kv_snapshot_bytes)
        self._wake = threading.Condition()
        self._inbox: list[Generation | Prefill] = []
        self._closed = False
        self._waiting: list[Generation] = []
        self._active: list[Generation] = []
        self._prefills: dict[str, Prefill] = {}  # newest per conversation
        self._steps = 0
        self._starting = False
        #: Counters for the benchmarks and tests.
        self.prefilled_tokens = 0
        self.prompt_tokens_evaluated = 0
        self.decodes = 0
        self._thread = threading.Thread(target=self._run, name="lv-llm", daemon=True)
        self._thread.start()

    # -- the caller's side (any thread) --

    def submit(self, job: Generation | Prefill) -> None:
        """Queue a reply or a prefill; the engine's thread takes it at its next step."""
        with self._wake:
            if self._closed:
                msg = "the chat model is closed"
                raise RuntimeError(msg)
            self._inbox.append(job)
            self._wake.notify()

    def starting(self) -> bool:
        """Whether a reply waits for its prompt or first tokens (any thread may ask)."""
        return self._starting or any(isinstance(job, Generation) for job in list(self._inbox))

    def busy(self) -> bool:
        """Whether anything submitted is still queued or running (for the tests)."""
        with self._wake:
            return bool(self._inbox) or self._has_work()

    def close(self) -> None:
        """Stop the thread after its current step; queued replies fail."""
        with self._wake:
            self._closed = True
            self._wake.notify()
        self._thread.join(timeout=10)

    # -- the engine's thread --

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._inbox and not self._has_work() and not self._closed:
                    self._wake.wait()
                if self._closed:
                    break
                inbox, self._inbox = self._inbox, []
            progressed = True
            try:
                for job in inbox:
                    self._admit(job)
                progressed = self._step()
            except Exception as exc:  # the replies in flight get it; the engine goes on
                logger.exception("a chat model step failed")
                self._fail_all(exc)
            if not progressed:  # only work that cannot run yet: do not spin
                with self._wake:
                    self._wake.wait(timeout=0.05)
        self._fail_all(RuntimeError("the chat model is closed"))

    def _has_work(self) -> bool:
        return bool(self._active or self._waiting or self._prefills)

    def _admit(self, job: Generation | Prefill) -> None:
        try:
            job.prompt = job.render()
        except Exception as exc:  # this job's messages, not the engine: only it fails
            if isinstance(job, Generation):
                job.finish(exc)
            else:
                logger.exception("a prefill's prompt could not be rendered")
            return
        if isinstance(job, Prefill):
            self._drop_prefill(job.key)
            if len(job.prompt) < self.seq_ctx:
                self._prefills[job.key] = job
            return
        self._drop_prefill(job.key)  # the reply supersedes its turn's prefill
        if len(job.prompt) >= self.seq_ctx:
            msg = f"Requested tokens ({len(job.prompt)}) exceed context window of {self.seq_ctx}"
            job.finish(ValueError(msg))
            return
        job.max_tokens = min(job.max_tokens, self.seq_ctx - len(job.prompt))
        self._waiting.append(job)
        self._starting = True

    def _drop_prefill(self, key: str) -> None:
        old = self._prefills.pop(key, None)
        if old is not None and old.slot is not None:
            old.slot.job = None
            old.slot.last_used = time.monotonic()

    def _step(self) -> bool:
        """One decode of everything due now; False when there was nothing it could run."""
        for job in [g for g in self._active if g.cancel.is_set()]:
            self._finish(job, None)
        for job in [g for g in self._waiting if g.cancel.is_set()]:
            self._waiting.remove(job)
            self._finish(job, None)
        while self._waiting:
            slot = pick_slot(self.slots, self._waiting[0].prompt, preempt=True)
            if slot is None:
                break
            job = self._waiting.pop(0)
            if isinstance(slot.job, Prefill):
                self._drop_prefill(slot.job.key)
            self._bind(job, slot)
            self._active.append(job)
        entries = self._plan()
        if entries:
            self._decode(entries)
        # Kept as a flag for other threads: they must not iterate the engine's lists.
        self._starting = bool(self._waiting) or self._first_tokens_due()
        return bool(entries)

    def _first_tokens_due(self) -> bool:
        """Whether a reply in flight still waits for its prompt or its first tokens."""
        return any(g.pending or g.generated < FIRST_TOKENS for g in self._active)

    def _plan(self) -> list[tuple[Generation | Prefill, list[int], bool]]:
        """This step's work: (job, its tokens in the batch, whether it samples after them)."""
        self._steps += 1
        urgent = self._first_tokens_due()
        tails_now = not urgent or self._steps % TAIL_EVERY == 0
        entries: list[tuple[Generation | Prefill, list[int], bool]] = []
        for g in self._active:
            if g.pending or g.next_token is None:
                continue
            if g.generated >= FIRST_TOKENS and not tails_now:
                continue
            entries.append((g, [g.next_token], True))
        budget = STEP_TOKENS - len(entries) if entries else BATCH_TOKENS
        for g in sorted((g for g in self._active if g.pending), key=lambda g: len(g.pending)):
            if budget <= 0:
                break
            chunk = g.pending[:budget]
            entries.append((g, chunk, len(chunk) == len(g.pending)))
            budget -= len(chunk)
        if not urgent:
            budget = min(budget, PREFILL_STEP_TOKENS)
            for prefill in self._runnable_prefills():
                if budget <= 0:
                    break
                chunk = prefill.pending[: min(budget, PREFILL_SLICE)]
                entries.append((prefill, chunk, False))
                budget -= len(chunk)
        return entries

    def _runnable_prefills(self) -> list[Prefill]:
        """Prefills with tokens left, each in a slot (those that found none wait)."""
        runnable = []
        for key, prefill in list(self._prefills.items()):
            if prefill.slot is None:
                slot = pick_slot(self.slots, prefill.prompt, preempt=False)
                if slot is None:
                    continue
                self._bind(prefill, slot)
            if prefill.pending:
                runnable.append(prefill)
                continue
            del self._prefills[key]  # done: its cells stay in the slot
            assert prefill.slot is not None
            prefill.slot.job = None
            prefill.slot.last_used = time.monotonic()
        return runnable

    def _bind(self, job: Generation | Prefill, slot: Slot) -> None:
        """Give ``slot`` to ``job``: keep, copy in or restore the longest evaluated prefix."""
        prompt = job.prompt
        # A reply evaluates at least its last prompt token: its logits give the first token.
        limit = len(prompt) - 1 if isinstance(job, Generation) else len(prompt)
        own = common_prefix(slot.tokens, prompt)
        if own < len(slot.tokens) - MIN_GAIN_TOKENS:  # another conversation's: keep a copy
            self.snapshots.save(slot.seq_id, slot.tokens)
        source, shared = slot, own
        for other in self.slots:
            if other is not slot and (n := common_prefix(other.tokens, prompt)) > shared:
                source, shared = other, n
        key, saved = self.snapshots.best(prompt)
        llama, memory, seq = self._llama, self._memory, slot.seq_id
        if key is not None and saved - shared >= MIN_GAIN_TOKENS:
            llama.llama_memory_seq_rm(memory, seq, 0, -1)
            restored = self.snapshots.restore(key, seq)
            kept = min(common_prefix(restored, prompt), limit)
            llama.llama_memory_seq_rm(memory, seq, kept, -1)
        elif source is not slot:
            kept = min(shared, limit)
            llama.llama_memory_seq_rm(memory, seq, 0, -1)
            llama.llama_memory_seq_cp(memory, source.seq_id, seq, 0, kept)
        else:
            kept = min(own, limit)
            llama.llama_memory_seq_rm(memory, seq, kept, -1)
        slot.tokens = list(prompt[:kept])
        slot.job = job
        job.slot = slot
        job.pending = list(prompt[kept:])
        if isinstance(job, Generation):
            job.sampler = reply_sampler(self._n_vocab, job.temperature)

    def _decode(self, entries: list[tuple[Generation | Prefill, list[int], bool]]) -> None:
        batch = self._batch
        n = 0
        samples: list[tuple[Generation, int]] = []
        for job, tokens, logits in entries:
            assert job.slot is not None
            start = len(job.slot.tokens)
            for i, token in enumerate(tokens):
                batch.token[n] = token
                batch.pos[n] = start + i
                batch.n_seq_id[n] = 1
                batch.seq_id[n][0] = job.slot.seq_id
                batch.logits[n] = False
                n += 1
            if logits:
                assert isinstance(job, Generation)
                batch.logits[n - 1] = True
                samples.append((job, n - 1))
        batch.n_tokens = n
        jobs = [job for job, _, _ in entries]
        # A lone reply among several (8 sessions were slower with both threads on every lone
        # step): another session's speech is about to be recognised or synthesised.
        threads = decode_threads(
            jobs,
            n,
            self._threads,
            others_busy=self.others_busy(),
            other_replies=len(self._active) + len(self._waiting) > 1,
        )
        if threads != self._threads_now:  # llama.cpp would use n_threads_batch for any n > 1
            self._llama.llama_set_n_threads(self._ctx, threads, threads)
            self._threads_now = threads
        while (code := self._llama.llama_decode(self._ctx, batch)) == 1:
            if not self._evict_idle():  # no KV cell left and nothing to give back
                break
        if code != 0:
            msg = f"llama_decode returned {code}"
            raise RuntimeError(msg)
        self.decodes += 1
        for job, tokens, _ in entries:
            assert job.slot is not None
            job.slot.tokens.extend(tokens)
            if isinstance(job, Prefill) or job.pending:
                job.pending = job.pending[len(tokens) :]
                if isinstance(job, Prefill):
                    self.prefilled_tokens += len(tokens)
                else:
                    self.prompt_tokens_evaluated += len(tokens)
        for job, index in samples:
            if job.generated == 0 and job.first_bias is not None:
                token, bias = job.first_bias
                self._llama.llama_get_logits_ith(self._ctx, index)[token] += bias
            self._take(job, self._llama.llama_sampler_sample(job.sampler.sampler, self._ctx, index))

    def _take(self, job: Generation, token: int) -> None:
        """A reply's newly sampled token: emit its text, or end the reply."""
        if self._llama.llama_vocab_is_eog(self.model.vocab, token):
            self._finish(job, None)
            return
        job.generated += 1
        text = job.text.feed(token_piece(self.model.vocab, token))
        if text:
            if job.stats.first_token_ms is None:
                job.stats.first_token_ms = (time.perf_counter() - job.started) * 1000
            job.emit(text)
        if job.text.stopped or job.generated >= job.max_tokens or job.cancel.is_set():
            self._finish(job, None)
        else:
            job.next_token = token

    def _finish(self, job: Generation, error: BaseException | None) -> None:
        if job in self._active:
            self._active.remove(job)
        if job.slot is not None:
            job.slot.job = None
            job.slot.last_used = time.monotonic()
        job.stats.prompt_tokens = len(job.prompt)
        job.stats.completion_tokens = job.generated
        if error is None:
            rest = job.text.flush()
            if rest and not job.cancel.is_set():
                job.emit(rest)
        job.sampler = None
        job.finish(error)

    def _evict_idle(self) -> bool:
        """Free the least recently used idle slot's cells (its snapshot is kept)."""
        idle = [s for s in self.slots if s.job is None and s.tokens]
        if not idle:
            return False
        slot = min(idle, key=lambda s: s.last_used)
        self.snapshots.save(slot.seq_id, slot.tokens)
        self._llama.llama_memory_seq_rm(self._memory, slot.seq_id, 0, -1)
        slot.tokens = []
        return True

    def _fail_all(self, error: BaseException) -> None:
        for job in [*self._active, *self._waiting]:
            try:
                self._finish(job, error)
            except Exception:
                logger.exception("a reply's end could not be delivered")
        self._waiting.clear()
        self._prefills.clear()
        self._starting = False
        for slot in self.slots:  # what the failed step left in the cache is unknown
            slot.job = None
            slot.tokens = []
        self._llama.llama_memory_clear(self._memory, True)
