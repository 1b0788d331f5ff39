"""The worker's garbage collector, set up once the application is built (issue 25).

A full collection walks every tracked object, start-up's (Django, the SDK, the app: most of the
heap) included, and holds the event loop meanwhile: 100-250 ms stalls at 200-300 sessions
(docs/logbook/benchmarks.md). ``gc.freeze()`` moves what exists after start-up out of the
collector's sight. Alone it made saturated workers worse: CPython starts a full collection
once the objects promoted since the last one exceed a quarter of the long-lived ones, so with
start-up's objects gone from that count full collections come far more often. Hence the
thresholds may be raised with it (``VOICE_GC_THRESHOLDS``, ``gc.set_threshold``'s three).
"""

from __future__ import annotations

import gc
import logging

logger = logging.getLogger(__name__)


def thresholds_parse(text: str) -> tuple[int, ...]:
    """``"700,10,10"`` -> (700, 10, 10); empty -> () (Python's own thresholds stay).

    ``"700:10:10"`` is read the same (for lists of settings that are split on commas).

    Raises:
        ValueError: not one to three positive integers.
    """
    if not text.strip():
        return ()
    msg = f"VOICE_GC_THRESHOLDS needs one to three positive integers, not {text!r}"
    try:
        values = tuple(int(part) for part in text.replace(":", ",").split(","))
    except ValueError:
        raise ValueError(msg) from None
    if not 1 <= len(values) <= 3 or min(values) < 1:
        raise ValueError(msg)
    return values


def collector_setup(*, freeze: bool, thresholds: tuple[int, ...]) -> None:
    """Freeze start-up's objects and/or set the collection thresholds (both optional)."""
    if freeze:
        gc.collect()  # start-up's garbage is freed, not frozen
        gc.freeze()
    if thresholds:
        gc.set_threshold(*thresholds)
    if freeze or thresholds:
        logger.info(
            "garbage collector: %d objects frozen, thresholds %s",
            gc.get_freeze_count(),
            gc.get_threshold(),
        )
