"""Pure parts of localvoice: chunking, voices, session merging, conversation truncation."""

from __future__ import annotations

import pytest

from localvoice.conversation import Conversation, message_item
from localvoice.session import ProtocolError, Session
from localvoice.text import SentenceChunker
from localvoice.voices import VoiceError, VoiceMap, load_voice_map, parse_rate


def voices() -> VoiceMap:
    return VoiceMap(["joe", "amy"], "joe", {"alloy": "amy", "*": "joe"})


def test_chunker_cuts_sentences_and_an_early_comma():
    chunker = SentenceChunker()
    out = []
    for piece in [
        "Well,",
        "that",
        "is",
        "a",
        "very",
        "good",
        "question",
        "to",
        "ask,",
        "my",
        "friend.",
        "It",
        "rains.",
        "Ok",
    ]:
        out += chunker.feed(piece + " ")
    out.append(chunker.flush())
    assert out[0] == "Well, that is a very good question to ask,"
    assert out[1:] == ["my friend. It rains.", "Ok"]  # "my friend." alone is too short


def test_voice_resolution_and_errors():
    vm = voices()
    assert vm.resolve("amy").local_name == "amy"
    assert vm.resolve("alloy").local_name == "amy"
    assert vm.resolve("en-US-Ava:DragonHDLatestNeural").local_name == "joe"
    assert vm.resolve({"type": "openai", "name": "alloy"}).local_name == "amy"
    fast = vm.resolve({"type": "azure-standard", "name": "x", "rate": "1.25"})
    assert fast.length_scale == pytest.approx(0.8)
    for bad in ({"type": "azure-standard"}, {"name": "x"}, {"type": "openai", "name": 3}, 42):
        with pytest.raises(VoiceError):
            vm.resolve(bad)
    assert parse_rate("+50%") == 1.5
    assert parse_rate("fast") is None


def test_voice_map_file(tmp_path):
    path = tmp_path / "voices.json"
    path.write_text('{"en-US-Ava:DragonHDLatestNeural": "amy"}')
    assert load_voice_map(path)["en-US-Ava:DragonHDLatestNeural"] == "amy"
    path.write_text("[1]")
    with pytest.raises(ValueError, match="voice map"):
        load_voice_map(path)


def test_session_update_merges_and_rejects_atomically():
    session = Session("m", voices(), max_seconds=60)
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


def test_first_chunk_is_capped_at_four_words_then_sentences():
    from localvoice.text import SentenceChunker

    reply = "The capital of France is Paris, and it is lovely. Yes."
    capped, plain = SentenceChunker(first_chunk_words=4), SentenceChunker()
    chunks: dict[str, list[str]] = {"capped": [], "plain": []}
    for token in reply.split(" "):
        chunks["capped"] += capped.feed(token + " ")
        chunks["plain"] += plain.feed(token + " ")
    assert chunks["capped"] == ["The capital of France", "is Paris, and it is lovely."]
    assert chunks["plain"] == ["The capital of France is Paris,", "and it is lovely."]
    assert capped.flush() == plain.flush() == "Yes."
