"""The pipeline's worker threads: what it counts while other models work."""

from __future__ import annotations

import asyncio
import threading

from tests.localvoice.fakes import fake_pipeline


class BlockingSpeaker:
    """A voice that speaks once ``release`` is set."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def speak(self, text: str) -> bytes:
        self.release.wait(5)
        return text.encode()


async def test_the_pipeline_is_busy_while_a_synthesis_runs_and_free_after() -> None:
    pipeline = fake_pipeline()
    speaker = BlockingSpeaker()
    assert not pipeline.busy()
    synthesis = pipeline.synthesize(speaker, "Hello")
    await asyncio.sleep(0.05)
    assert pipeline.busy()  # the chat engine then keeps a lone reply on one thread
    speaker.release.set()
    assert await synthesis == b"Hello"
    assert not pipeline.busy()
