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


def test_french_azure_voices_go_to_the_french_voice_when_it_is_installed():
    vm = VoiceMap(["joe", "espeak-fr"], "joe", load_voice_map(None))
    for name in ("fr-FR-DeniseNeural", "fr-FR-HenriNeural", "fr-CA-SylvieNeural", "FR-be-x"):
        assert vm.resolve(name).local_name == "espeak-fr", name
        assert vm.resolve({"type": "azure-standard", "name": name}).local_name == "espeak-fr"
    slow = vm.resolve({"type": "azure-standard", "name": "fr-FR-DeniseNeural", "rate": "0.8"})
    assert (slow.local_name, slow.length_scale) == ("espeak-fr", pytest.approx(1.25))
    # Not a French name: a prefix pattern needs the whole prefix ("fr-").
    assert vm.resolve("fred").local_name == "joe"
    assert vm.resolve("alloy").local_name == "joe"


def test_without_the_french_voice_french_names_fall_through_to_the_catch_all():
    vm = VoiceMap(["joe", "amy"], "joe", {**load_voice_map(None), "*": "amy"})
    assert vm.resolve("fr-FR-DeniseNeural").local_name == "amy"


def test_the_longest_prefix_wins_and_an_exact_name_beats_any_prefix():
    mapping = {"fr-*": "amy", "fr-CA-*": "bea", "fr-FR-HenriNeural": "joe", "*": "joe"}
    vm = VoiceMap(["joe", "amy", "bea"], "joe", mapping)
    assert vm.resolve("fr-FR-DeniseNeural").local_name == "amy"
    assert vm.resolve("fr-CA-SylvieNeural").local_name == "bea"
    assert vm.resolve("fr-FR-HenriNeural").local_name == "joe"
