"""Noise suppression with RNNoise (the library shipped in ``pyrnnoise``), one state per session.

``pyrnnoise`` is installed without its dependencies (matplotlib, audio tools) and never
imported: its ``librnnoise.so`` is loaded with ctypes. RNNoise works on 10 ms frames at 48 kHz,
so the 16 kHz pipeline audio is resampled up and back down with streaming soxr resamplers
(a few ms of delay).
"""

from __future__ import annotations

import ctypes
import importlib.util
import threading
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soxr

from localvoice.pipeline.stages import PIPELINE_RATE
from localvoice.pipeline.weights import Part, locate

RNNOISE_RATE = 48000
LIBRARY = Part("pyrnnoise", "pyrnnoise", "librnnoise.so")
_lib: ctypes.CDLL | None = None
_lib_lock = threading.Lock()


def _library() -> ctypes.CDLL:
    global _lib
    with _lib_lock:
        if _lib is None:
            if importlib.util.find_spec("pyrnnoise") is None:
                locate(LIBRARY)  # raises with the package name
            lib = ctypes.CDLL(str(Path(locate(LIBRARY))))
            lib.rnnoise_create.argtypes = [ctypes.c_void_p]
            lib.rnnoise_create.restype = ctypes.c_void_p
            lib.rnnoise_destroy.argtypes = [ctypes.c_void_p]
            lib.rnnoise_get_frame_size.restype = ctypes.c_int
            lib.rnnoise_process_frame.argtypes = [
                ctypes.c_void_p,
                ctypes.POINTER(ctypes.c_float),
                ctypes.POINTER(ctypes.c_float),
            ]
            lib.rnnoise_process_frame.restype = ctypes.c_float
            _lib = lib
        return _lib


class RnNoise:
    """A streaming RNNoise denoiser for 16 kHz float32 audio (output lags input by a few ms)."""

    name = "RNNoise (pyrnnoise 0.4.5)"

    def __init__(self) -> None:
        self._lib = _library()
        self._state = self._lib.rnnoise_create(None)
        self._frame = int(self._lib.rnnoise_get_frame_size())
        self._up = soxr.ResampleStream(PIPELINE_RATE, RNNOISE_RATE, 1, dtype="float32")
        self._down = soxr.ResampleStream(RNNOISE_RATE, PIPELINE_RATE, 1, dtype="float32")
        self._pending = np.zeros(0, dtype=np.float32)
        self._buf = np.zeros(self._frame, dtype=np.float32)
        self._ptr = self._buf.ctypes.data_as(ctypes.POINTER(ctypes.c_float))

    def process(self, audio: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Denoise the next piece of the stream; blocking (call it from a worker thread)."""
        up = np.concatenate([self._pending, self._up.resample_chunk(audio)])
        count = up.size // self._frame
        out = np.empty(count * self._frame, dtype=np.float32)
        for index in range(count):
            # RNNoise expects int16-scaled floats.
            self._buf[:] = up[index * self._frame : (index + 1) * self._frame] * 32768.0
            self._lib.rnnoise_process_frame(self._state, self._ptr, self._ptr)
            out[index * self._frame : (index + 1) * self._frame] = self._buf / 32768.0
        self._pending = up[count * self._frame :]
        return np.asarray(self._down.resample_chunk(out), dtype=np.float32)

    def close(self) -> None:
        """Free the native state."""
        if self._state:
            self._lib.rnnoise_destroy(self._state)
            self._state = None

    def __del__(self) -> None:
        self.close()


class SpeexNoise:
    """Speex's spectral noise suppressor (``pyspeex-noise``) on 10 ms frames, AGC off."""

    name = "Speex noise suppression (pyspeex-noise 2.0.1)"

    def __init__(self, suppress_db: int = -30) -> None:
        from pyspeex_noise import AudioProcessor

        self._proc = AudioProcessor(0, suppress_db)
        self._pending = np.zeros(0, dtype=np.float32)

    def process(self, audio: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Denoise the next piece of the stream; blocking (call it from a worker thread)."""
        data = np.concatenate([self._pending, audio])
        count = data.size // 160
        pcm = np.clip(data[: count * 160] * 32768.0, -32768, 32767).astype("<i2")
        out = b"".join(
            self._proc.process_10ms(pcm[i * 160 : (i + 1) * 160].tobytes()) for i in range(count)
        )
        self._pending = data[count * 160 :]
        return np.frombuffer(out, dtype="<i2").astype(np.float32) / 32768.0

    def close(self) -> None:
        """Nothing to free explicitly."""
