"""Real test speech, made with the espeak-ng CLI and sox (Debian packages), cached per text.

Typical use::

    from tests.support.audio import speak, silence, write_wav

    pcm = speak("What is the weather like in Paris today")  # PCM16 mono, 24 kHz
    write_wav(tmp_path / "mic.wav", silence(500) + pcm + silence(1500), 24000)  # Chromium fake mic

``speak`` caches its output under ``$TMPDIR/localvoice-test-speech`` so repeated runs cost nothing.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import tempfile
import wave
from pathlib import Path

CACHE_DIR = Path(tempfile.gettempdir()) / "localvoice-test-speech"


def speak(
    text: str, rate: int = 24000, *, voice: str = "en-us", words_per_minute: int = 150
) -> bytes:
    """Speak ``text`` with espeak-ng; returns PCM16 little-endian mono at ``rate`` Hz.

    Args:
        text: what to say.
        rate: output sample rate (8000, 16000, 24000, 48000, ...).
        voice: an espeak-ng voice name.
        words_per_minute: espeak-ng speed.

    Raises:
        RuntimeError: espeak-ng or sox is not installed.
    """
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            msg = f"{tool} is not installed (apt-get install espeak-ng sox)"
            raise RuntimeError(msg)
    key = hashlib.sha256(f"{text}|{rate}|{voice}|{words_per_minute}".encode()).hexdigest()[:24]
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    cached = CACHE_DIR / f"{key}.pcm"
    if cached.exists():
        return cached.read_bytes()
    wav = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(words_per_minute), "--stdout", text],
        check=True,
        capture_output=True,
    ).stdout
    pcm = subprocess.run(
        [
            "sox",
            "-t",
            "wav",
            "-",
            "-t",
            "raw",
            "-r",
            str(rate),
            "-e",
            "signed-integer",
            "-b",
            "16",
            "-c",
            "1",
            "-L",
            "-",
        ],
        input=wav,
        check=True,
        capture_output=True,
    ).stdout
    tmp = cached.with_suffix(f".{key}.tmp")
    tmp.write_bytes(pcm)
    tmp.replace(cached)  # atomic, so parallel test workers never read half a file
    return pcm


def silence(ms: int, rate: int = 24000) -> bytes:
    """``ms`` milliseconds of PCM16 silence."""
    return bytes(rate * ms // 1000 * 2)


def trim_silence(pcm: bytes, threshold: int = 300) -> bytes:
    """Drop leading and trailing samples quieter than ``threshold`` (espeak-ng pads both ends).

    With the padding gone, the end of the returned audio is the real end of speech, which is
    what latency measurements start from.
    """
    samples = memoryview(pcm).cast("h")
    loud = [i for i in range(len(samples)) if abs(samples[i]) > threshold]
    if not loud:
        return b""
    return pcm[loud[0] * 2 : (loud[-1] + 1) * 2]


def duration_ms(pcm: bytes, rate: int = 24000) -> float:
    """Length of PCM16 mono audio in milliseconds."""
    return len(pcm) / 2 / rate * 1000


class PlaybackClock:
    """When a page that plays the reply's PCM16 audio as it arrives would be done with it.

    Audio that comes while the page is idle starts at once; audio that comes while it plays
    is queued behind what it has (so gaps in the stream count). ``stalled_s``: the silence
    the listener heard inside the reply, audio that came after what was queued had played out.
    """

    def __init__(self, rate: int = 24000) -> None:
        self.until = 0.0
        self.stalled_s = 0.0
        self._bytes_per_s = rate * 2

    def played(self, nbytes: int, now: float) -> None:
        """``nbytes`` of audio arrived at ``now``."""
        if self.until and now > self.until:
            self.stalled_s += now - self.until
        self.until = max(self.until, now) + nbytes / self._bytes_per_s


def write_wav(path: Path | str, pcm: bytes, rate: int = 24000) -> Path:
    """Write PCM16 mono as a WAV file (e.g. Chromium's ``--use-file-for-fake-audio-capture``)."""
    path = Path(path)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm)
    return path


def read_wav(path: Path | str) -> tuple[bytes, int]:
    """Read a PCM16 mono WAV file; returns ``(pcm, rate)``."""
    with wave.open(str(path), "rb") as wav:
        if wav.getsampwidth() != 2 or wav.getnchannels() != 1:
            msg = f"{path}: expected 16-bit mono"
            raise ValueError(msg)
        return wav.readframes(wav.getnframes()), wav.getframerate()


_NUMBERS = {"10": "ten", "4": "four", "7": "seven", "2": "two", "1": "one", "3": "three"}


def words(text: str) -> list[str]:
    """Lower-case words without punctuation (digits spelled out for a few small numbers)."""
    tokens = re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split()
    return [_NUMBERS.get(t, t) for t in tokens]


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    """Substitutions + deletions + insertions that turn the words ``ref`` into ``hyp``."""
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[len(hyp)]


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Word error rate: (substitutions + deletions + insertions) / reference words.

    English words only (accents are dropped): ``bench.french`` scores French itself.
    """
    ref = words(reference)
    return edit_distance(ref, words(hypothesis)) / max(1, len(ref))
