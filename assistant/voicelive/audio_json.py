"""The audio events' JSON, both ways, without running base64 text through a JSON codec.

Every 100 ms of audio is about 6.4 kB of base64 inside a small JSON object, each way. Base64
needs no escaping, so its text can be placed and found by hand; only the small rest is JSON.

**Out**, ``input_audio_buffer.append``: ``VoiceLiveConnection.send`` turns a mapping into JSON
with ``json.dumps(..., default=...)``: a new encoder per call that escapes the base64 audio
character by character, about 30-40 µs for one 100 ms frame (a tenth of the relay's whole cost
per frame). Here the text is a concatenation. The SDK sends a ``ClientEvent`` as what its
``as_dict()`` returns, unchanged when that is already a string
(``tests/voicelive/test_audio_json.py`` pins this, through the real ``send``); the event still
goes through ``send``, so a failure is the SDK's ``ConnectionError`` as before.

**In**, ``response.audio.delta``: ``json.loads`` scans the whole delta (about 9 µs per 100 ms
frame); :func:`split_audio_delta` finds it with two byte searches and parses only the rest. Any
frame it is not sure of (escapes in the delta, a ``delta`` key that may be nested, another event
type) it leaves to the full parse.
"""

from __future__ import annotations

import json
from typing import Any

from azure.ai.voicelive.models import ClientEvent, ClientEventType, ServerEventType

# SIMD base64, ~10x the standard library's speed: every audio frame is encoded once.
from pybase64 import b64encode_as_string

APPEND = ClientEventType.INPUT_AUDIO_BUFFER_APPEND.value
AUDIO_DELTA = ServerEventType.RESPONSE_AUDIO_DELTA.value
_HEAD = '{"type":"' + APPEND + '","audio":"'
_TAIL = '"}'


class AudioAppend(ClientEvent):
    """One append, already encoded; also a read-only mapping of its fields (tests read it).

    The model's own constructor (field validation, discriminator bookkeeping) is skipped: the
    event is never deserialised or changed, only sent.
    """

    _data: dict[str, Any]
    _text: str

    def __new__(cls, audio: str) -> AudioAppend:
        """The append of ``audio`` (base64), its fields and its JSON text."""
        event = object.__new__(cls)
        event.__dict__["_data"] = {"type": APPEND, "audio": audio}
        event.__dict__["_text"] = _HEAD + audio + _TAIL
        return event

    def __init__(self, audio: str) -> None:
        """Nothing left to do: ``__new__`` built the event."""

    def as_dict(self, *, exclude_readonly: bool = False) -> Any:  # the SDK's signature
        """The event's JSON text, which ``send`` passes on as it is."""
        return self._text


def audio_append(pcm: bytes) -> AudioAppend:
    """The ``input_audio_buffer.append`` carrying ``pcm``."""
    return AudioAppend(b64encode_as_string(pcm))


_DELTA_KEY = b'"delta":'
_JSON_SPACE = b" \t\r\n"
_QUOTE = ord('"')


def split_audio_delta(raw: bytes) -> tuple[dict[str, Any], bytes] | None:
    """A ``response.audio.delta``'s other fields and its base64 delta; None for anything else.

    None means "parse it in full": the frame is another event, or one this shortcut cannot
    read with certainty. Malformed JSON in the rest raises ``ValueError`` as ``json.loads`` does.
    """
    key = raw.find(_DELTA_KEY)
    if key < 0:
        return None
    # At the top level only: nothing before the key opens an object or an array but the
    # event's own brace (a brace or bracket inside a string before it also sends us back).
    if raw.count(b"{", 0, key) != 1 or raw.find(b"[", 0, key) >= 0:
        return None
    start = key + len(_DELTA_KEY)
    size = len(raw)
    while start < size and raw[start] in _JSON_SPACE:
        start += 1
    if start >= size or raw[start] != _QUOTE:
        return None
    start += 1
    end = raw.find(b'"', start)
    # Without a backslash in between, the first quote is the string's end.
    if end < 0 or raw.find(b"\\", start, end) >= 0:
        return None
    fields = json.loads(raw[:start] + raw[end:])  # the delta emptied: ~150 bytes of JSON
    # A second "delta" key would be the one json.loads keeps: then the full parse decides.
    if not isinstance(fields, dict) or fields.get("type") != AUDIO_DELTA or fields["delta"]:
        return None
    return fields, raw[start:end]
