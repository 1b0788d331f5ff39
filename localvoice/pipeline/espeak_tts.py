"""espeak-ng voices (French) from the libespeak-ng that ``piper-tts`` bundles, through ctypes.

No French neural voice ships in any package (the offline-models survey looked), so French is
spoken by espeak-ng's formant synthesiser: robotic, but French. piper-tts 1.8.0 carries a
complete libespeak-ng inside its ``espeakbridge`` extension (the whole C API is exported) and
the ``espeak-ng-data`` beside it (French dictionary, voices and variants), so nothing more is
installed and the system's espeak-ng is never used.

espeak-ng has one global state per process, which Piper's own phonemizer uses too (every
English sentence Piper speaks is phonemized by it). So espeak-ng is initialised once, by
Piper's phonemizer itself, and every synthesis here holds Piper's phonemizer lock: the two
never interleave, and each call sets the voice, speed and callback it needs.
"""

from __future__ import annotations

import ctypes
import functools
import threading
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from localvoice.pipeline.resample import ResampledSpeaker

#: Local voice name -> espeak-ng voice (``language+variant``). The variant was chosen by the
#: round trip through Whisper base in French (``python -m bench.french``, docs/benchmarks.md).
FRENCH_VOICES: dict[str, str] = {"espeak-fr": "fr"}
DEFAULT_VOICE = "espeak-fr"

ESPEAK_DEFAULT_WPM = 175  # espeak-ng's own default speed
MIN_WPM, MAX_WPM = 80, 450  # espeak-ng's usable range
ESPEAK_RATE = 1  # espeak_PARAMETER.espeakRATE
CHARS_UTF8 = 1  # espeakCHARS_UTF8
EE_OK = 0

_SYNTH_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


class EspeakError(RuntimeError):
    """libespeak-ng refused a voice or a text."""


class _Engine:
    """Piper's libespeak-ng, initialised once, and the lock every user of it holds."""

    def __init__(self) -> None:
        from piper import espeakbridge
        from piper import voice as piper_voice
        from piper.phonemize_espeak import ESPEAK_DATA_DIR, EspeakPhonemizer

        # Piper initialises espeak-ng lazily under this lock, through this singleton (both
        # pinned with piper-tts 1.8.0); doing it the same way keeps it initialised exactly once.
        self.lock: threading.Lock = piper_voice._ESPEAK_PHONEMIZER_LOCK
        with self.lock:
            if piper_voice._ESPEAK_PHONEMIZER is None:
                piper_voice._ESPEAK_PHONEMIZER = EspeakPhonemizer(ESPEAK_DATA_DIR)
        self.lib = ctypes.CDLL(espeakbridge.__file__)
        self.lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self.lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        self.lib.espeak_Synth.argtypes = [
            ctypes.c_char_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        self.sample_rate = int(self.lib.espeak_ng_GetSampleRate())
        self._chunks: list[npt.NDArray[np.int16]] = []
        # Kept referenced: ctypes callbacks must outlive every call that may invoke them.
        self._callback = _SYNTH_CALLBACK(self._collect)

    def _collect(self, wav: Any, samples: int, _events: Any) -> int:
        if wav and samples > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(samples,)).copy())
        return 0  # go on

    def synthesize(
        self, text: str, espeak_voice: str, words_per_minute: int
    ) -> npt.NDArray[np.int16]:
        """Speak ``text`` with an espeak-ng voice at the engine's rate; blocking."""
        data = text.encode("utf-8")
        with self.lock:
            self._chunks = []
            self.lib.espeak_SetSynthCallback(self._callback)
            if self.lib.espeak_SetVoiceByName(espeak_voice.encode()) != EE_OK:
                msg = f"espeak-ng has no voice {espeak_voice!r}"
                raise EspeakError(msg)
            self.lib.espeak_SetParameter(ESPEAK_RATE, words_per_minute, 0)
            status = self.lib.espeak_Synth(data, len(data) + 1, 0, 0, 0, CHARS_UTF8, None, None)
            chunks, self._chunks = self._chunks, []
        if status != EE_OK:
            msg = f"espeak-ng could not speak {text[:40]!r} (status {status})"
            raise EspeakError(msg)
        if not chunks:
            return np.zeros(0, dtype=np.int16)
        return np.concatenate(chunks)


@functools.cache
def _engine() -> _Engine:
    return _Engine()


def words_per_minute(length_scale: float | None) -> int:
    """espeak-ng's speed for a Piper-style ``length_scale`` (``1 / rate``; ``None``: default)."""
    if not length_scale:
        return ESPEAK_DEFAULT_WPM
    return int(min(max(ESPEAK_DEFAULT_WPM / length_scale, MIN_WPM), MAX_WPM))


class EspeakTts:
    """espeak-ng voices by local name, with the same speaker interface as ``PiperTts``.

    Args:
        voices: local voice name -> espeak-ng voice (``"fr+m3"``).

    Raises:
        EspeakError: an espeak-ng voice does not exist.
    """

    def __init__(self, voices: Mapping[str, str] | None = None) -> None:
        self._engine = _engine()
        self._voices = dict(voices or FRENCH_VOICES)
        self.voices = sorted(self._voices)
        self.default_voice = DEFAULT_VOICE if DEFAULT_VOICE in self._voices else self.voices[0]
        for name in self.voices:
            if self.synthesize("Bonjour.", voice=name, length_scale=None).size == 0:
                msg = f"espeak-ng voice {self._voices[name]!r} produced no audio"
                raise EspeakError(msg)

    def sample_rate(self, voice: str) -> int:
        """espeak-ng's rate (22050 Hz for every voice)."""
        del voice
        return self._engine.sample_rate

    def speaker(self, *, voice: str, length_scale: float | None, rate: int) -> ResampledSpeaker:
        """One response's speaker at ``rate``, chunk by chunk like Piper's."""
        if voice not in self._voices:
            voice = self.default_voice
        return ResampledSpeaker(
            functools.partial(self.synthesize, voice=voice, length_scale=length_scale),
            self._engine.sample_rate,
            rate,
        )

    def synthesize(
        self, text: str, *, voice: str, length_scale: float | None
    ) -> npt.NDArray[np.int16]:
        """Speak ``text`` with one voice (int16 at 22.05 kHz); blocking."""
        espeak_voice = self._voices.get(voice) or self._voices[self.default_voice]
        return self._engine.synthesize(text, espeak_voice, words_per_minute(length_scale))
