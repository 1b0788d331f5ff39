"""Map the session's ``voice`` (Azure, OpenAI or local names) to an installed local voice.

Resolution order for a voice name: an installed local voice with that exact name; then the
mapping (built-in defaults, overridden by ``--voice-map FILE.json``): the name itself, then its
longest prefix pattern (``"fr-*"``, case-insensitive); then the mapping's ``"*"`` entry; then
the default local voice. A mapped voice that is not installed is skipped. A voice *object*
must be a dict with a known ``type`` and a string ``name``; anything else is rejected with
:class:`VoiceError`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Voice object types the SDK can send (``models`` 1.3.1).
VOICE_TYPES = frozenset(
    {
        "openai",
        "azure-standard",
        "azure-custom",
        "azure-personal",
        "azure-realtime-native",
        "avatar-voice-sync",
    }
)

# Every OpenAI voice and the Azure names used in samples go to the bundled English voice by
# default, every French Azure voice (fr-FR-DeniseNeural, fr-FR-HenriNeural, fr-CA-...) to
# espeak-ng's French voice, the only French voice shipped in a package; a voice map file can
# send them elsewhere once more local voices are installed.
DEFAULT_MAPPING: dict[str, str] = {
    "alloy": "joe",
    "ash": "joe",
    "ballad": "joe",
    "coral": "joe",
    "echo": "joe",
    "sage": "joe",
    "shimmer": "joe",
    "verse": "joe",
    "marin": "joe",
    "cedar": "joe",
    "en-US-Ava:DragonHDLatestNeural": "joe",
    "en-US-AvaNeural": "joe",
    "en-US-AndrewNeural": "joe",
    "fr-*": "espeak-fr",
    "*": "joe",
}


class VoiceError(ValueError):
    """The session's voice value is malformed."""


@dataclass(frozen=True, slots=True)
class VoiceChoice:
    """A resolved voice: which local voice speaks, and how fast.

    Attributes:
        local_name: the installed local voice.
        length_scale: Piper phoneme length scale (``1 / rate``); ``None`` keeps the voice default.
    """

    local_name: str
    length_scale: float | None = None


def load_voice_map(path: Path | None) -> dict[str, str]:
    """The built-in mapping, overridden by a JSON file of ``{"voice name": "local voice"}``.

    Args:
        path: the JSON file, or ``None`` for the defaults only.

    Returns:
        The merged mapping.

    Raises:
        ValueError: the file is not a JSON object of strings.
    """
    mapping = dict(DEFAULT_MAPPING)
    if path is None:
        return mapping
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    ):
        msg = f"{path}: the voice map must be a JSON object of voice name -> local voice name"
        raise ValueError(msg)
    mapping.update(data)
    return mapping


def parse_rate(rate: Any) -> float | None:
    """Turn an Azure ``rate`` (``"1.2"``, ``"+20%"``, ``"-10%"``, a number) into a multiplier."""
    if rate is None:
        return None
    try:
        if isinstance(rate, int | float):
            value = float(rate)
        elif isinstance(rate, str) and rate.strip().endswith("%"):
            value = 1.0 + float(rate.strip().rstrip("%")) / 100.0
        else:
            value = float(rate)
    except (TypeError, ValueError):
        return None
    # Piper gets unintelligible outside roughly half to double speed.
    return min(max(value, 0.5), 2.0) if value > 0 else None


class VoiceMap:
    """Resolve session voices to installed local voices.

    Args:
        installed: the local voice names that can actually speak.
        default: the fallback local voice.
        mapping: voice name -> local voice name (``"*"`` is the catch-all).
    """

    def __init__(self, installed: Iterable[str], default: str, mapping: Mapping[str, str]) -> None:
        self.installed = frozenset(installed)
        self.default = default
        self.mapping = dict(mapping)

    def _by_name(self, name: str) -> str:
        if name in self.installed:
            return name
        candidates = (self.mapping.get(name), self._by_prefix(name), self.mapping.get("*"))
        for candidate in candidates:
            if candidate in self.installed:
                return candidate
        return self.default

    def _by_prefix(self, name: str) -> str | None:
        """The local voice of the longest ``"prefix*"`` pattern that ``name`` starts with."""
        folded = name.casefold()
        patterns = [
            (len(key), voice)
            for key, voice in self.mapping.items()
            if len(key) > 1 and key.endswith("*") and folded.startswith(key[:-1].casefold())
        ]
        return max(patterns)[1] if patterns else None

    def validate(self, voice: Any) -> None:
        """Raise :class:`VoiceError` unless ``voice`` is a string or a well-formed voice object."""
        if voice is None or isinstance(voice, str):
            return
        if not isinstance(voice, dict):
            msg = "voice must be a string or a voice object"
            raise VoiceError(msg)
        kind = voice.get("type")
        if kind not in VOICE_TYPES:
            msg = f"voice.type must be one of {sorted(VOICE_TYPES)}, got {kind!r}"
            raise VoiceError(msg)
        name = voice.get("name")
        if not isinstance(name, str) or not name:
            msg = "voice.name must be a non-empty string"
            raise VoiceError(msg)

    def resolve(self, voice: Any) -> VoiceChoice:
        """Pick the local voice for a session or response ``voice`` value.

        Args:
            voice: a string, a voice object, or ``None``.

        Returns:
            The local voice and its speed.

        Raises:
            VoiceError: the voice object is malformed.
        """
        self.validate(voice)
        if voice is None:
            return VoiceChoice(self.default)
        if isinstance(voice, str):
            return VoiceChoice(self._by_name(voice))
        rate = parse_rate(voice.get("rate"))
        return VoiceChoice(self._by_name(voice["name"]), 1.0 / rate if rate else None)
