"""``turn_detection``: the four types validated, echoed with their defaults, made effective."""

from __future__ import annotations

from typing import Any

import pytest

from localvoice.protocol.errors import ProtocolError
from localvoice.protocol.turn_detection import effective, validate_turn_detection


def refused(value: dict[str, Any]) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        validate_turn_detection(value)
    assert info.value.code == "invalid_value"
    return info.value


def test_server_vad_echoes_its_defaults_and_stays_silence_based():
    echoed = validate_turn_detection({"type": "server_vad"})
    assert echoed == {
        "type": "server_vad",
        "threshold": 0.5,
        "prefix_padding_ms": 300,
        "silence_duration_ms": 500,
        "create_response": True,
        "interrupt_response": True,
        "auto_truncate": False,
    }
    assert echoed is not None
    assert not effective(echoed).semantic


def test_a_semantic_type_turns_semantic_detection_on_with_default_level_and_timeout():
    echoed = validate_turn_detection(
        {"type": "azure_semantic_vad_multilingual", "languages": ["en-US", "fr-FR", "en-GB"]}
    )
    assert echoed is not None
    assert echoed["remove_filler_words"] is False
    turn = effective(echoed)
    assert turn.semantic
    assert (turn.eou_threshold, turn.eou_timeout_ms) == (0.5, 2000)
    assert turn.languages == ("en", "fr")


def test_end_of_utterance_detection_is_echoed_filled_and_sets_level_and_timeout():
    echoed = validate_turn_detection(
        {
            "type": "server_vad",
            "end_of_utterance_detection": {
                "model": "semantic_detection_v1",
                "threshold_level": "high",
            },
        }
    )
    assert echoed is not None
    assert echoed["end_of_utterance_detection"] == {
        "model": "semantic_detection_v1",
        "threshold_level": "high",
        "timeout_ms": 2000,
    }
    turn = effective(echoed)
    assert turn.semantic
    assert turn.eou_threshold == 0.7


def test_null_end_of_utterance_detection_switches_a_semantic_type_back_to_silence():
    echoed = validate_turn_detection(
        {"type": "azure_semantic_vad", "end_of_utterance_detection": None}
    )
    assert echoed is not None
    assert not effective(echoed).semantic


def test_semantic_fields_are_made_effective():
    echoed = validate_turn_detection(
        {
            "type": "azure_semantic_vad_en",
            "speech_duration_ms": 200,
            "remove_filler_words": True,
            "auto_truncate": True,
            "end_of_utterance_detection": {
                "model": "semantic_detection_v1_en",
                "threshold_level": "low",
                "timeout_ms": 900,
            },
        }
    )
    assert echoed is not None
    turn = effective(echoed)
    assert (turn.speech_duration_ms, turn.remove_filler_words, turn.auto_truncate) == (
        200,
        True,
        True,
    )
    assert (turn.eou_threshold, turn.eou_timeout_ms) == (0.3, 900)


@pytest.mark.parametrize(
    ("value", "param"),
    [
        ({"type": "semantic_vad"}, "session.turn_detection.type"),
        (
            {"type": "azure_semantic_vad_en", "languages": ["en"]},
            "session.turn_detection.languages",
        ),
        ({"type": "server_vad", "languages": ["en"]}, "session.turn_detection.languages"),
        (
            {"type": "server_vad", "remove_filler_words": True},
            "session.turn_detection.remove_filler_words",
        ),
        (
            {"type": "server_vad", "speech_duration_ms": 100},
            "session.turn_detection.speech_duration_ms",
        ),
        (
            {"type": "azure_semantic_vad", "speech_duration_ms": -1},
            "session.turn_detection.speech_duration_ms",
        ),
        (
            {"type": "azure_semantic_vad", "remove_filler_words": "yes"},
            "session.turn_detection.remove_filler_words",
        ),
        ({"type": "server_vad", "auto_truncate": 1}, "session.turn_detection.auto_truncate"),
        ({"type": "azure_semantic_vad", "languages": "en"}, "session.turn_detection.languages"),
        (
            {"type": "azure_semantic_vad", "languages": ["english!"]},
            "session.turn_detection.languages",
        ),
        (
            {"type": "server_vad", "end_of_utterance_detection": {"model": "v2"}},
            "session.turn_detection.end_of_utterance_detection.model",
        ),
        (
            {
                "type": "server_vad",
                "end_of_utterance_detection": {
                    "model": "semantic_detection_v1",
                    "threshold_level": "max",
                },
            },
            "session.turn_detection.end_of_utterance_detection.threshold_level",
        ),
        (
            {
                "type": "server_vad",
                "end_of_utterance_detection": {"model": "semantic_detection_v1", "timeout_ms": 1.5},
            },
            "session.turn_detection.end_of_utterance_detection.timeout_ms",
        ),
    ],
)
def test_bad_fields_are_refused_with_their_path(value, param):
    assert refused(value).param == param
