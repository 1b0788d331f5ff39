"""Voice names, objects, rates and the voice map file."""

from __future__ import annotations

import pytest

from localvoice.protocol.voices import VoiceError, VoiceMap, load_voice_map, parse_rate


def voices() -> VoiceMap:
    return VoiceMap(["joe", "amy"], "joe", {"alloy": "amy", "*": "joe"})


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
