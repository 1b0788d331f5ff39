"""A test-set turn's recording: an uploaded WAV checked strictly and stored as a replay sends it.

The replay sends audio as the live service does: 24 kHz PCM16 mono (``input_audio_format``
pcm16 at ``input_audio_sampling_rate`` 24000). An upload is therefore converted once, when it is
saved: a PCM16 WAV, mono or stereo (averaged to mono), 8 to 48 kHz (resampled to 24 kHz), at
most :data:`MAX_SECONDS` long and :data:`MAX_UPLOAD_BYTES` large. Only the standard library is
used: the web service does not install the offline engine's numpy or soxr.
"""

from __future__ import annotations

import io
import struct
import sys
import wave
from array import array
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

#: The rate and format every stored recording has (what a replay appends).
RATE = 24_000
MAX_SECONDS = 30
#: A short tap is no turn: Voice Live refuses a commit under 100 ms (talk_modes.MIN_TURN_BYTES).
MIN_SECONDS = 0.2
MIN_RATE = 8_000
MAX_RATE = 48_000
#: 30 s of 48 kHz stereo PCM16 is 5.5 MiB; a header and some slack on top.
MAX_UPLOAD_BYTES = 6 * 1024 * 1024
#: A recording whose loudest sample is quieter than this (of 32767) is taken for silence.
SILENCE_PEAK = 100


def _reject(message: StrOrPromise, code: str, **params: object) -> ValidationError:
    """A stable ``code``; the message is translated when shown."""
    return ValidationError(message, code=code, params=params or None)


def recording_from_wav(data: bytes) -> bytes:
    """The 24 kHz PCM16 mono recording of an uploaded WAV file.

    Raises:
        ValidationError: the file is not a WAV file this accepts (``code`` says why: too_large,
            not_wav, not_pcm16, channels, sample_rate, too_short, too_long, silent).
    """
    if len(data) > MAX_UPLOAD_BYTES:
        raise _reject(_("The file is larger than 6 MB."), "too_large")
    try:
        with wave.open(io.BytesIO(data), "rb") as wav:
            channels, width, rate = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
            compression = wav.getcomptype()
            frames = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError, RuntimeError, ValueError, struct.error) as exc:
        # What the standard library's reader raises on a malformed file, whatever its fault.
        raise _reject(
            _("This is not a WAV file this page can read: upload a 16-bit PCM WAV file."),
            "not_wav",
        ) from exc
    if width != 2 or compression != "NONE":
        raise _reject(
            _("The recording must be 16-bit PCM (this one is %(bits)d-bit)."),
            "not_pcm16",
            bits=width * 8,
        )
    if channels not in (1, 2):
        raise _reject(
            _("The recording must be mono or stereo (it has %(n)d channels)."),
            "channels",
            n=channels,
        )
    if not MIN_RATE <= rate <= MAX_RATE:
        raise _reject(
            _("The sample rate must be between 8 and 48 kHz (it is %(rate)d Hz)."),
            "sample_rate",
            rate=rate,
        )
    samples = array("h")
    samples.frombytes(frames[: len(frames) - len(frames) % (2 * channels)])
    if sys.byteorder == "big":
        samples.byteswap()  # WAV is little-endian
    seconds = len(samples) / channels / rate
    if seconds < MIN_SECONDS:
        raise _reject(_("The recording is too short (under 0.2 s)."), "too_short")
    if seconds > MAX_SECONDS:
        raise _reject(
            _("The recording is %(seconds).1f s long: at most %(max)d s."),
            "too_long",
            seconds=seconds,
            max=MAX_SECONDS,
        )
    mono = _mono(samples) if channels == 2 else samples
    if max(abs(min(mono)), max(mono)) < SILENCE_PEAK:
        raise _reject(_("The recording is silent."), "silent")
    converted = _resample(mono, rate, RATE) if rate != RATE else mono
    if sys.byteorder == "big":
        converted.byteswap()
    return converted.tobytes()


def _mono(stereo: array[int]) -> array[int]:
    """Left and right averaged."""
    left, right = stereo[0::2], stereo[1::2]
    return array("h", [(a + b) // 2 for a, b in zip(left, right, strict=True)])


def _resample(samples: array[int], rate: int, target: int) -> array[int]:
    """Linear interpolation to ``target`` Hz, after a moving average when it lowers the rate.

    Plain speech for a speech recogniser, not hi-fi: the average (as wide as the rate ratio)
    keeps the worst aliasing out of a 44.1 or 48 kHz upload.
    """
    if rate > target:
        width = round(rate / target)
        if width > 1:
            total = 0
            window: list[int] = []
            smoothed = array("h")
            for sample in samples:
                window.append(sample)
                total += sample
                if len(window) > width:
                    total -= window.pop(0)
                smoothed.append(total // len(window))
            samples = smoothed
    count = int(len(samples) * target / rate)
    step = rate / target
    last = len(samples) - 1
    out = array("h", bytes(2 * count))
    for index in range(count):
        position = index * step
        left = int(position)
        right = min(left + 1, last)
        fraction = position - left
        out[index] = int(samples[left] + (samples[right] - samples[left]) * fraction)
    return out


def recording_seconds(pcm: bytes | memoryview | None) -> float:
    """How long a stored recording is, in seconds (0 for none)."""
    return len(pcm) / 2 / RATE if pcm else 0.0


def recording_as_wav(pcm: bytes) -> bytes:
    """A stored recording as a WAV file (to listen to it in the admin)."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes(pcm)
    return buffer.getvalue()
