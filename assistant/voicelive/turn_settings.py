"""Voice Live's turn-detection and transcription settings: their names, limits and rules (pure).

The admin validates a profile against these, and ``session_request`` builds the SDK's models
from them; both read the same table, so the admin refuses what Voice Live would.
"""

from __future__ import annotations

import re

from azure.ai.voicelive.models import EouThresholdLevel, TurnDetectionType

SERVER_VAD = TurnDetectionType.SERVER_VAD.value
SEMANTIC_VAD = TurnDetectionType.AZURE_SEMANTIC_VAD.value
SEMANTIC_VAD_EN = TurnDetectionType.AZURE_SEMANTIC_VAD_EN.value
SEMANTIC_VAD_MULTILINGUAL = TurnDetectionType.AZURE_SEMANTIC_VAD_MULTILINGUAL.value
SEMANTIC_TYPES = frozenset({SEMANTIC_VAD, SEMANTIC_VAD_EN, SEMANTIC_VAD_MULTILINGUAL})
#: The semantic types whose detection takes a ``languages`` list (the English one has none).
LANGUAGE_TYPES = frozenset({SEMANTIC_VAD, SEMANTIC_VAD_MULTILINGUAL})

EOU_V1 = "semantic_detection_v1"
EOU_V1_EN = "semantic_detection_v1_en"
EOU_V1_MULTILINGUAL = "semantic_detection_v1_multilingual"
EOU_MODELS = (EOU_V1, EOU_V1_EN, EOU_V1_MULTILINGUAL)
#: A profile's end-of-utterance setting besides a model: "" leaves it to Voice Live (the field
#: is absent: the semantic types may turn it on), "off" sends an explicit null.
EOU_SERVICE_DEFAULT = ""
EOU_OFF = "off"
EOU_THRESHOLD_LEVELS = tuple(level.value for level in EouThresholdLevel)
EOU_DEFAULT_THRESHOLD_LEVEL = EouThresholdLevel.DEFAULT.value

# The languages a detection type or end-of-utterance model covers: Voice Live documents
# semantic_detection_v1 as English, the _en variants as English-optimised, the multilingual ones
# as the ten languages below. None: no language of its own (server VAD, plain semantic VAD).
_ENGLISH = "en"
_MULTILINGUAL = "multilingual"
_LANGUAGE_OF = {
    SEMANTIC_VAD_EN: _ENGLISH,
    SEMANTIC_VAD_MULTILINGUAL: _MULTILINGUAL,
    EOU_V1: _ENGLISH,
    EOU_V1_EN: _ENGLISH,
    EOU_V1_MULTILINGUAL: _MULTILINGUAL,
}

#: What ``languages`` may name: the semantic detectors ignore every other language.
DETECTION_LANGUAGES = frozenset({"en", "es", "fr", "it", "de", "ja", "pt", "zh", "ko", "hi"})
# A language (en) or locale (en-US): what both ``languages`` and the transcription take.
LANGUAGE_CODE_RE = re.compile(r"[a-z]{2,3}(-[A-Z]{2})?")

#: Azure speech's phrase lists should hold no more than this many phrases (Azure Speech docs,
#: "Improve recognition accuracy with phrase list"; the SDK's docstring states no limit).
PHRASE_LIST_MAX_PHRASES = 500
#: Ours, not Voice Live's: a phrase is a name or a term, and a longer one is a pasted sentence.
PHRASE_MAX_CHARS = 100
#: Only Azure speech transcription takes a phrase list (not mai-transcribe-1, nor OpenAI's).
PHRASE_LIST_TRANSCRIPTION_MODEL = "azure-speech"

# The native-audio models, which Voice Live documents as supporting neither end-of-utterance
# detection nor phrase lists (they do their own speech recognition).
_NATIVE_AUDIO_MODEL_PREFIXES = (
    "gpt-realtime",
    "gpt-4o-realtime",
    "gpt-4o-mini-realtime",
    "phi4-mm-realtime",
)


def language_codes(text: str) -> tuple[str, ...]:
    """The codes of a comma-separated list (``"en, fr"`` -> ``("en", "fr")``), empties dropped."""
    return tuple(code.strip() for code in text.split(",") if code.strip())


def phrase_list_parse(text: str) -> tuple[str, ...]:
    """The phrases of a text area, one per line, trimmed; blank lines are no phrase."""
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def eou_model_fits(turn_detection: str, eou_model: str) -> bool:
    """False when the detector and the end-of-utterance model are made for different languages.

    An English-only detector with the multilingual model, or the reverse, would leave one of
    them guessing in a language it does not know.
    """
    own = _LANGUAGE_OF.get(turn_detection)
    return own is None or _LANGUAGE_OF.get(eou_model) == own


def native_audio_model(model: str) -> bool:
    """True for the models that take no end-of-utterance detection and no phrase list."""
    return model.lower().startswith(_NATIVE_AUDIO_MODEL_PREFIXES)
