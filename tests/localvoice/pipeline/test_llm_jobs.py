"""Which KV slot a prompt takes: its conversation's, else an empty one, else the oldest."""

from __future__ import annotations

import threading

from localvoice.pipeline.llm_jobs import (
    FAST_FIRST_TOKENS,
    Generation,
    Prefill,
    Slot,
    decode_threads,
    pick_slot,
)
from localvoice.pipeline.stages import ChatStats

SYSTEM = list(range(100))


def reply() -> Generation:
    return Generation(
        render=list,
        key="",
        temperature=0.0,
        max_tokens=8,
        cancel=threading.Event(),
        emit=lambda _: None,
        finish=lambda _: None,
        stats=ChatStats(),
        stops=(),
    )


def test_a_conversation_gets_its_own_slot_back() -> None:
    mine = Slot(1, [*SYSTEM, 500, 501], last_used=5.0)
    other = Slot(0, [*SYSTEM, 600, 601], last_used=1.0)
    empty = Slot(2)
    assert pick_slot([other, mine, empty], [*SYSTEM, 500, 501, 502], preempt=False) is mine


def test_a_new_conversation_takes_an_empty_slot_before_anyone_elses() -> None:
    slots = [Slot(0, [*SYSTEM, *range(200, 240)]), Slot(1)]
    assert pick_slot(slots, [*SYSTEM, 900], preempt=False) is slots[1]


def test_with_every_slot_used_the_least_recently_used_conversation_loses_its_slot() -> None:
    slots = [
        Slot(0, [*SYSTEM, *range(200, 240)], last_used=3.0),
        Slot(1, [*SYSTEM, *range(300, 340)], last_used=1.0),
        Slot(2, [*SYSTEM, *range(400, 440)], last_used=2.0),
    ]
    assert pick_slot(slots, [*SYSTEM, 900], preempt=False) is slots[1]


def test_busy_slots_are_not_taken_but_a_reply_takes_over_a_prefill() -> None:
    busy = Slot(0, [*SYSTEM, 1], job=reply())
    prefilling = Slot(1, [*SYSTEM, 2], job=Prefill(render=list, key=""))
    assert pick_slot([busy, prefilling], [*SYSTEM, 2, 3], preempt=False) is None
    assert pick_slot([busy, prefilling], [*SYSTEM, 2, 3], preempt=True) is prefilling


def test_first_tokens_and_prompts_get_the_batch_threads_while_no_other_model_works() -> None:
    threads = (1, 2)
    fresh = reply()
    assert decode_threads([fresh], 1, threads) == 2  # the user waits for its first chunk
    assert decode_threads([fresh], 1, threads, others_busy=True) == 1  # STT or TTS has it
    assert decode_threads([fresh], 1, threads, other_replies=True) == 1  # another session's
    fresh.generated = FAST_FIRST_TOKENS
    assert decode_threads([fresh], 1, threads) == 1  # a reply already speaking
    assert decode_threads([fresh], 12, threads) == 2  # a prompt, as llama.cpp would
    assert decode_threads([Prefill(render=list, key="")], 8, threads) == 1  # nobody waits
    # Several sessions' prompts at once: both threads too, unless another model works.
    assert decode_threads([reply(), reply()], 24, threads, other_replies=True) == 2
    assert decode_threads([fresh], 12, threads, others_busy=True) == 1
    assert decode_threads([reply(), reply()], 24, threads, others_busy=True) == 1
    assert decode_threads([reply(), reply()], 2, threads) == 2  # both wait for a first chunk
    assert decode_threads([reply(), reply()], 2, threads, others_busy=True) == 1
    assert decode_threads([fresh, fresh], 2, threads) == 1  # both already speaking
