"""Smart Turn v3.2: is the user's turn complete, judged from the audio of the turn so far.

Smart Turn (Pipecat, BSD-2) is a Whisper-encoder classifier, 8 MB int8 ONNX, trained on 23
languages. It takes the Whisper log-mel features of the last 8 s of 16 kHz audio (zeros
prepended when shorter, the waveform normalised to zero mean and unit variance first) and
returns the probability that the speaker has finished. The features are computed here with
numpy, as the model's own code does (a Whisper feature extractor with an 8 s window); pipecat
itself is never imported. The ONNX file is installed by ``smart_turn_install.py``.

One ONNX Runtime session, single-threaded, shared by every session of the process; calls are
serialised by a lock and run in the pipeline's turn-detection worker.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import onnxruntime as ort  # type: ignore[import-untyped]

from localvoice.pipeline.smart_turn_install import SHA256, installed, model_path
from localvoice.pipeline.weights import WeightsError

if TYPE_CHECKING:
    from localvoice.config import ServerConfig

logger = logging.getLogger(__name__)

RATE = 16000
WINDOW_SECONDS = 8
N_FFT = 400
HOP = 160
N_MELS = 80


def _hz_to_mel(freq: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Slaney's mel scale: linear below 1 kHz, logarithmic above."""
    mels = 3.0 * freq / 200.0
    high = freq >= 1000.0
    mels[high] = 15.0 + np.log(freq[high] / 1000.0) * (27.0 / np.log(6.4))
    return mels


def _mel_to_hz(mels: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    freq = 200.0 * mels / 3.0
    high = mels >= 15.0
    freq[high] = 1000.0 * np.exp((np.log(6.4) / 27.0) * (mels[high] - 15.0))
    return freq


def _mel_filters() -> npt.NDArray[np.float64]:
    """Slaney-normalised triangular filters, shape (N_FFT // 2 + 1, N_MELS)."""
    edges = _mel_to_hz(np.linspace(0.0, float(_hz_to_mel(np.array([RATE / 2.0]))[0]), N_MELS + 2))
    bins = np.linspace(0, RATE // 2, N_FFT // 2 + 1)
    slopes = edges[None, :] - bins[:, None]
    widths = np.diff(edges)
    rising = -slopes[:, :-2] / widths[:-1]
    falling = slopes[:, 2:] / widths[1:]
    filters = np.maximum(0.0, np.minimum(rising, falling))
    return filters * (2.0 / (edges[2:] - edges[:-2]))[None, :]


_FILTERS = _mel_filters()
_HANN = np.hanning(N_FFT + 1)[:-1]  # periodic, like torch.hann_window


def features(audio: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Smart Turn's input: (80, 800) log-mel features of the last 8 s of 16 kHz audio."""
    size = RATE * WINDOW_SECONDS
    x = np.asarray(audio, dtype=np.float32)[-size:]
    if x.size < size:
        x = np.concatenate([np.zeros(size - x.size, dtype=np.float32), x])
    x = (x - x.mean()) / np.sqrt(x.var() + 1e-7)
    padded = np.pad(x.astype(np.float64), (N_FFT // 2, N_FFT // 2), mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP]
    power = np.abs(np.fft.rfft(frames * _HANN, axis=-1)) ** 2
    log_mel = np.log10(np.maximum(1e-10, power @ _FILTERS)).T[:, :-1]
    log_mel = np.maximum(log_mel, log_mel.max() - 8.0)
    return ((log_mel + 4.0) / 4.0).astype(np.float32)


class SmartTurn:
    """Smart Turn v3.2 on ONNX Runtime, one thread.

    Raises:
        WeightsError: the model file is not installed (``make python-deps`` installs it).
    """

    name = f"Smart Turn v3.2 (smart-turn-v3.2-cpu.onnx {SHA256[:12]}, ONNX Runtime, 1 thread)"

    def __init__(self) -> None:
        if not installed():
            msg = (
                f"Smart Turn v3.2 is not installed at {model_path()}; run `make python-deps` "
                "(it extracts the model from the pinned pipecat-ai wheel)"
            )
            raise WeightsError(msg)
        options = ort.SessionOptions()
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.inter_op_num_threads = 1
        options.intra_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._session = ort.InferenceSession(
            str(model_path()), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self._lock = threading.Lock()

    def probability(self, audio: npt.NDArray[np.float32]) -> float:
        """Probability that the turn in ``audio`` (16 kHz mono, ending now) is complete."""
        inputs = {"input_features": features(audio)[None]}
        with self._lock:
            outputs = self._session.run(None, inputs)
        return float(np.asarray(outputs[0]).reshape(-1)[0])


def load(config: ServerConfig) -> SmartTurn:
    """The ``smart-turn-v3.2`` entry of ``pipeline/registry.py``, warmed up."""
    model = SmartTurn()
    model.probability(np.zeros(RATE, dtype=np.float32))
    return model
