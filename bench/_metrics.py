"""A worker's /metrics, read by the benchmarks: the event-loop lag over a window.

``/metrics`` answers loopback by default (``METRICS_ALLOWED_NETWORKS``), so a scrape needs no
token here. The lag figures come from the difference of two scrapes of the histogram
``voice_event_loop_lag_seconds``, so they cover exactly the window between them.
"""

from __future__ import annotations

import math
import threading
import urllib.request
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from bench._common import HOST

LAG = "voice_event_loop_lag_seconds"


def scrape(port: int, host: str = HOST, timeout: float = 5.0) -> dict[str, float]:
    """Every sample of the worker's /metrics: ``name{label="v",...}`` -> value."""
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=timeout) as response:
        text = response.read().decode()
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            samples[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
    return samples


def _buckets(samples: dict[str, float]) -> list[tuple[float, float]]:
    """(upper bound, cumulative count) of the lag histogram, in order."""
    prefix = f'{LAG}_bucket{{le="'
    out = [
        (float(key[len(prefix) : -2]), value)
        for key, value in samples.items()
        if key.startswith(prefix)
    ]
    return sorted(out)


@dataclass(frozen=True)
class LoopLag:
    """The worker's event-loop lag over a window (milliseconds)."""

    wakeups: int
    p99_ms: float
    max_le_ms: float  # the upper bound of the highest bucket that got a wake-up (inf: > 2.5 s)
    mean_ms: float
    gauge_max_ms: float  # voice_event_loop_lag_max_seconds at the window's end (last 10-20 s)

    def text(self) -> str:
        """One line for the benchmarks' output."""
        if not self.wakeups:
            return "loop=n/a"
        bound = "inf" if math.isinf(self.max_le_ms) else f"{self.max_le_ms:g}"
        return f"loop99={self.p99_ms:.1f}ms loopmax<={bound}ms loopmean={self.mean_ms:.2f}ms"


def lag_between(before: dict[str, float], after: dict[str, float]) -> LoopLag:
    """The lag histogram's difference: p99 interpolated in its bucket, as Prometheus does."""
    old = dict(_buckets(before))
    delta = [(le, count - old.get(le, 0.0)) for le, count in _buckets(after)]
    total = delta[-1][1] if delta else 0.0
    gauge = 1000 * after.get("voice_event_loop_lag_max_seconds", 0.0)
    if total <= 0:
        return LoopLag(0, math.nan, math.nan, math.nan, gauge)
    rank, lower, below, p99 = 0.99 * total, 0.0, 0.0, math.inf
    for le, cumulative in delta:
        if cumulative >= rank:
            share = (rank - below) / max(cumulative - below, 1e-9)
            p99 = lower + (le - lower) * share if not math.isinf(le) else lower
            break
        lower, below = le, cumulative
    top = next(le for le, cumulative in delta if cumulative >= total)
    seconds = after.get(f"{LAG}_sum", 0.0) - before.get(f"{LAG}_sum", 0.0)
    return LoopLag(int(total), 1000 * p99, 1000 * top, 1000 * seconds / total, gauge)


class WindowScrape:
    """Scrapes a worker at a window's start and end from a thread (never blocking a loop)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._results: dict[bool, dict[str, float]] = {}
        self._threads: list[threading.Thread] = []

    def mark(self, start: bool) -> None:
        """Scrape now, in the background (``start``: the window's start, else its end)."""

        def run() -> None:
            try:
                self._results[start] = scrape(self.port)
            except OSError:
                self._results[start] = {}

        thread = threading.Thread(target=run, name="metrics-scrape", daemon=True)
        thread.start()
        self._threads.append(thread)

    def result(self) -> LoopLag | None:
        """The window's lag (after both scrapes finished); None if the worker did not answer."""
        for thread in self._threads:
            thread.join(10.0)
        before, after = self._results.get(True), self._results.get(False)
        if not before or not after:
            return None
        return lag_between(before, after)
