"""Conversation items: truncation and the history window."""

from __future__ import annotations

import pytest

from localvoice.protocol.errors import ProtocolError
from localvoice.turns.conversation import Conversation, message_item


def test_truncate_cuts_text_in_proportion():
    conv = Conversation()
    item = message_item(
        "assistant", [{"type": "audio", "transcript": "one two three four five six"}]
    )
    item.audio_ms = 3000
    conv.add(item)
    conv.truncate(item.id, 0, 1500)
    assert item.data["content"][0]["transcript"] == "one two three"
    user = message_item("user", [{"type": "input_text", "text": "hi"}])
    conv.add(user)
    with pytest.raises(ProtocolError):
        conv.truncate(user.id, 0, 10)
    messages = conv.history()
    assert [m["role"] for m in messages] == ["assistant", "user"]
