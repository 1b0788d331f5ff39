"""What one llama.cpp decode costs per batch size and thread count, and what drafting would win.

Speculative decoding (a small model drafts k tokens, the large one checks them in one decode
of k+1) pays when the check costs about one token and the draft far less. This prints, for
the bundled chat models, the median time of a decode of 1, 2, 3, 5 and 8 tokens after a short
prompt on 1 and 2 threads, then the 1.5B's milliseconds per token plain against drafted by
the 0.5B for a few draft lengths and acceptance rates (expected tokens per check:
``(1 - a^(k+1)) / (1 - a)``).

    taskset -c 0,1 .venv/bin/python -m bench.decode_cost --repeats 6
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

PROMPT = (
    "<|im_start|>system\nYou are a helpful voice assistant. Answer in one or two short "
    "sentences.<|im_end|>\n<|im_start|>user\nWhat is the closest planet to the sun?"
    "<|im_end|>\n<|im_start|>assistant\n"
)
BATCHES = (1, 2, 3, 5, 8)


def decode_ms(path: str, threads: int, repeats: int) -> dict[int, float]:
    """Median ms of one decode of n tokens after the prompt, per n."""
    import llama_cpp

    llm: Any = llama_cpp.Llama(
        model_path=path, n_threads=threads, n_threads_batch=threads, n_ctx=1024, verbose=False
    )
    tokens = llm.tokenize(PROMPT.encode(), special=True)
    result = {}
    for n in BATCHES:
        times = []
        for _ in range(repeats):
            llm.reset()
            llm.eval(tokens)
            start = time.perf_counter()
            llm.eval([tokens[-1]] * n)
            times.append((time.perf_counter() - start) * 1000)
        result[n] = statistics.median(times)
    llm.close()
    return result


def drafted_ms_per_token(target: dict[int, float], draft_ms: float, k: int, accept: float) -> float:
    """Expected ms per token when ``k`` drafted tokens are checked in one decode of ``k + 1``."""
    expected = (1 - accept ** (k + 1)) / (1 - accept)
    return (k * draft_ms + target[k + 1]) / expected


def main() -> None:
    from localvoice.pipeline.llms.registry import get
    from localvoice.pipeline.weights import resolve

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=6)
    args = parser.parse_args()
    costs: dict[tuple[str, int], dict[int, float]] = {}
    for key in ("qwen2.5-1.5b", "qwen2.5-0.5b"):
        weights = get(key).weights
        assert weights is not None
        path = str(resolve(weights))
        for threads in (1, 2):
            costs[key, threads] = decode_ms(path, threads, args.repeats)
            row = ", ".join(f"{n}: {ms:.0f}" for n, ms in costs[key, threads].items())
            print(f"{key} {threads} thread(s), ms per decode of n tokens: {row}", flush=True)
    for threads in (1, 2):
        target = costs["qwen2.5-1.5b", 2]  # a check of several tokens runs on both threads
        plain = costs["qwen2.5-1.5b", threads][1]
        draft = costs["qwen2.5-0.5b", threads][1]
        print(f"1.5B plain on {threads} thread(s): {plain:.0f} ms/token; drafted by the 0.5B:")
        for k in (1, 2, 4):
            cells = ", ".join(
                f"a={a}: {drafted_ms_per_token(target, draft, k, a):.0f}" for a in (0.6, 0.8, 0.9)
            )
            print(f"  k={k}: {cells} ms/token")


if __name__ == "__main__":
    main()
