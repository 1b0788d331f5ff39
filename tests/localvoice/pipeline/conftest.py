"""The real Whisper and Piper, loaded once for the pipeline tests that ask for them."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="package")
def stt():
    from localvoice.pipeline.stt import WhisperStt

    return WhisperStt(cpu_threads=2)


@pytest.fixture(scope="package")
def tts():
    from localvoice.pipeline.tts import PiperTts

    return PiperTts()
