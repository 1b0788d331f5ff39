"""Acoustic echo cancellation with Speex's MDF canceller (``libspeexdsp``, through ctypes).

The reference is the engine's own output: every audio delta a session sends is placed on that
session's input timeline (``EchoReference``) where the client will be playing it, and the
canceller subtracts its echo from the microphone signal. The adaptive filter spans
``TAIL_MS``, which covers the unknown playout delay of a browser or a laptop (50-300 ms) plus
the room's reverberation. Speex's preprocessor then suppresses the residual echo.

The adaptive filter needs a few seconds of a new reply's speech to converge, and the residual
echo before that is enough to make the VAD hear "speech" and cut the reply off. So, like the
non-linear stage of WebRTC's canceller, a frame is also muted while the output is playing
unless what is left after cancellation is louder than ``DOUBLE_TALK`` times the reply's loudest
output: echo alone never is (the path attenuates it), a user talking over the assistant close
to the microphone is. "While playing" is judged by the wall clock (the reply's duration from
when it was sent, plus ``GATE_MARGIN_S``), not by the input timeline: a loaded server lags the
client's microphone, which would shift the echo out of any fixed window. The muted signal only
feeds the VAD; STT gets the cancelled signal unmuted, since muting chops the user's words.
The muting also stops a user who talks over the reply at the same level, so it is only on with
``--echo-mute`` (a loudspeaker setup where self-interruption is the bigger problem).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
import time

import numpy as np
import numpy.typing as npt

from localvoice.pipeline.stages import PIPELINE_RATE
from localvoice.pipeline.weights import WeightsError

FRAME = 160  # 10 ms at 16 kHz
TAIL_MS = 350  # playout delay up to ~300 ms plus the first reflections
GATE_MARGIN_S = 1.0  # client jitter buffer, loudspeaker delay, the server's input backlog
DOUBLE_TALK = 0.5  # power ratio; the test's laptop returns the reply at about -10 dB (0.1)
MUTE = 0.0  # Silero still hears speech in echo attenuated by 30 dB: silence it
SPEEX_ECHO_SET_SAMPLING_RATE = 24
SPEEX_PREPROCESS_SET_DENOISE = 0
SPEEX_PREPROCESS_SET_ECHO_STATE = 24
_lib: ctypes.CDLL | None = None
_lock = threading.Lock()
_INT16_P = ctypes.POINTER(ctypes.c_int16)


def _library() -> ctypes.CDLL:
    global _lib
    with _lock:
        if _lib is None:
            path = ctypes.util.find_library("speexdsp") or "libspeexdsp.so.1"
            try:
                lib = ctypes.CDLL(path)
            except OSError as exc:
                msg = "echo cancellation needs libspeexdsp (apt-get install libspeexdsp1)"
                raise WeightsError(msg) from exc
            lib.speex_echo_state_init.argtypes = [ctypes.c_int, ctypes.c_int]
            lib.speex_echo_state_init.restype = ctypes.c_void_p
            lib.speex_echo_state_destroy.argtypes = [ctypes.c_void_p]
            lib.speex_echo_ctl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
            lib.speex_echo_cancellation.argtypes = [ctypes.c_void_p, _INT16_P, _INT16_P, _INT16_P]
            lib.speex_preprocess_state_init.argtypes = [ctypes.c_int, ctypes.c_int]
            lib.speex_preprocess_state_init.restype = ctypes.c_void_p
            lib.speex_preprocess_state_destroy.argtypes = [ctypes.c_void_p]
            lib.speex_preprocess_ctl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
            lib.speex_preprocess_run.argtypes = [ctypes.c_void_p, _INT16_P]
            _lib = lib
        return _lib


def check_available() -> str:
    """Load libspeexdsp once; returns a description for ``/healthz``.

    Raises:
        WeightsError: the library is not installed.
    """
    _library()
    return f"Speex MDF echo canceller (libspeexdsp), {TAIL_MS} ms tail"


class EchoReference:
    """The session's output audio, placed on the input timeline where it is being played."""

    def __init__(self) -> None:
        self._start = 0  # input sample index of _far[0]
        self._far = np.zeros(0, dtype=np.float32)
        self._playing_until = 0.0  # monotonic time the client finishes playing what was sent
        self._loudest = 0.0  # highest 10 ms power of the output being played

    def gate_power(self) -> float:
        """The loudest output power while output is (or may still be) playing, else 0."""
        if time.monotonic() > self._playing_until + GATE_MARGIN_S:
            self._loudest = 0.0
        return self._loudest

    def play(self, audio: npt.NDArray[np.float32], now: int) -> None:
        """Queue output audio (16 kHz): it plays after what is queued, or now if nothing is."""
        wall = time.monotonic()
        self.gate_power()
        self._playing_until = max(wall, self._playing_until) + audio.size / PIPELINE_RATE
        frames = audio[: audio.size - audio.size % FRAME].reshape(-1, FRAME)
        if frames.size:
            self._loudest = max(self._loudest, float(np.mean(frames**2, axis=1).max()))
        end = self._start + self._far.size
        if end < now:
            self._start, self._far = now, np.zeros(0, dtype=np.float32)
        self._far = np.concatenate([self._far, audio])

    def stop(self, cut: int, now: int) -> None:
        """The client dropped the output queued from input sample ``cut`` on (``now`` or later).

        What plays before ``cut`` stays: a reply queued behind another is cancelled unplayed.
        """
        cut = max(cut, now)
        self._far = self._far[: max(0, cut - self._start)]
        left = (cut - now) / PIPELINE_RATE
        self._playing_until = min(self._playing_until, time.monotonic() + left)

    def take(self, start: int, count: int) -> npt.NDArray[np.float32]:
        """The reference for input samples ``[start, start + count)``, silence where none."""
        out = np.zeros(count, dtype=np.float32)
        lo, hi = max(start, self._start), min(start + count, self._start + self._far.size)
        if hi > lo:
            out[lo - start : hi - start] = self._far[lo - self._start : hi - self._start]
        drop = start + count - self._start
        if drop > 0:  # the past is never needed again
            self._far = self._far[drop:]
            self._start += drop
        return out


class SpeexEchoCanceller:
    """A streaming echo canceller for 16 kHz float32 audio, 10 ms frames (output lags by <10 ms).

    Args:
        mute: also silence frames for the VAD while the reply plays (``--echo-mute``).
    """

    def __init__(self, mute: bool = False) -> None:
        self.mute = mute
        self._lib = _library()
        self._echo = self._lib.speex_echo_state_init(FRAME, PIPELINE_RATE * TAIL_MS // 1000)
        rate = ctypes.c_int(PIPELINE_RATE)
        self._lib.speex_echo_ctl(self._echo, SPEEX_ECHO_SET_SAMPLING_RATE, ctypes.byref(rate))
        self._pre = self._lib.speex_preprocess_state_init(FRAME, PIPELINE_RATE)
        off = ctypes.c_int(0)  # noise is RNNoise's job; this one only removes residual echo
        self._lib.speex_preprocess_ctl(self._pre, SPEEX_PREPROCESS_SET_DENOISE, ctypes.byref(off))
        self._lib.speex_preprocess_ctl(
            self._pre, SPEEX_PREPROCESS_SET_ECHO_STATE, ctypes.c_void_p(self._echo)
        )
        self._near = np.zeros(0, dtype=np.float32)
        self._far = np.zeros(0, dtype=np.float32)
        self._rec = np.zeros(FRAME, dtype=np.int16)
        self._play = np.zeros(FRAME, dtype=np.int16)
        self._out = np.zeros(FRAME, dtype=np.int16)

    def process(
        self, near: npt.NDArray[np.float32], far: npt.NDArray[np.float32], gate_power: float
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """Cancel the echo of ``far`` (same length as ``near``) in ``near``; blocking.

        ``gate_power`` is :meth:`EchoReference.gate_power` (0: nothing playing, no muting).

        Returns:
            The signal for the VAD (muted while only echo plays) and the one for STT.
        """
        self._near = np.concatenate([self._near, near])
        self._far = np.concatenate([self._far, far])
        count = self._near.size // FRAME
        out = np.empty(count * FRAME, dtype=np.float32)
        gated = np.empty(count * FRAME, dtype=np.float32)
        ptr = [a.ctypes.data_as(_INT16_P) for a in (self._rec, self._play, self._out)]
        for index in range(count):
            window = slice(index * FRAME, (index + 1) * FRAME)
            self._rec[:] = np.clip(self._near[window] * 32768.0, -32768, 32767)
            self._play[:] = np.clip(self._far[window] * 32768.0, -32768, 32767)
            self._lib.speex_echo_cancellation(self._echo, *ptr)
            self._lib.speex_preprocess_run(self._pre, ptr[2])
            frame = self._out / 32768.0
            out[window] = frame
            if self.mute and gate_power > 1e-7 and np.mean(frame**2) < DOUBLE_TALK * gate_power:
                frame = frame * MUTE
            gated[window] = frame
        self._near = self._near[count * FRAME :]
        self._far = self._far[count * FRAME :]
        return gated, out

    def close(self) -> None:
        """Free the native states."""
        if self._echo:
            self._lib.speex_echo_state_destroy(self._echo)
            self._lib.speex_preprocess_state_destroy(self._pre)
            self._echo = self._pre = None

    def __del__(self) -> None:
        self.close()
