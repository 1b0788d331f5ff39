"""``session.update`` merging and validation."""

from __future__ import annotations

import pytest

from localvoice.protocol.errors import ProtocolError
from localvoice.protocol.session_config import SessionConfig
from localvoice.protocol.voices import VoiceMap


def voices() -> VoiceMap:
    return VoiceMap(["joe", "amy"], "joe", {"alloy": "amy", "*": "joe"})


def test_session_update_merges_and_rejects_atomically():
    session = SessionConfig("m", voices(), max_seconds=60)
    assert session.data["expires_at"] > 0
    session.update({"turn_detection": {"type": "server_vad", "threshold": 0.7}})
    assert session.turn_detection is not None
    assert session.turn_detection.threshold == 0.7
    assert session.turn_detection.silence_duration_ms == 500
    with pytest.raises(ProtocolError) as info:
        session.update({"instructions": "new", "voice": {"type": "bogus", "name": "x"}})
    assert info.value.code == "invalid_voice"
    assert session.data["instructions"] != "new"
    session.update({"turn_detection": None})
    assert session.turn_detection is None
