"""The worker's garbage-collector set-up (assistant/live/collector.py)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from assistant.live.collector import collector_setup, thresholds_parse


@pytest.fixture
def restored_collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_thresholds_are_parsed() -> None:
    assert thresholds_parse("") == ()
    assert thresholds_parse(" ") == ()
    assert thresholds_parse("700,10,10") == (700, 10, 10)
    assert thresholds_parse("50000") == (50000,)
    assert thresholds_parse("20000:20:100") == (20000, 20, 100)


@pytest.mark.parametrize("text", ["0", "1,2,3,4", "a", "700,-1"])
def test_bad_thresholds_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="VOICE_GC_THRESHOLDS"):
        thresholds_parse(text)


@pytest.mark.usefixtures("restored_collector")
def test_nothing_is_changed_by_default() -> None:
    before = gc.get_threshold(), gc.get_freeze_count()
    collector_setup(freeze=False, thresholds=())
    assert (gc.get_threshold(), gc.get_freeze_count()) == before


@pytest.mark.usefixtures("restored_collector")
def test_freeze_and_thresholds() -> None:
    collector_setup(freeze=True, thresholds=(20_000, 20, 50))
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (20_000, 20, 50)
