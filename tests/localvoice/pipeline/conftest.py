"""The real Whisper (the default model) and Piper, loaded once for the tests that ask for them."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="package")
def stt():
    from localvoice.config import ServerConfig
    from localvoice.pipeline.stt import WhisperStt

    return WhisperStt(model=ServerConfig().stt, cpu_threads=2)


@pytest.fixture(scope="package")
def tts():
    from localvoice.pipeline.tts import PiperTts

    return PiperTts()
