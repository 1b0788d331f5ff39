"""Checks scored on one side's answers: the exact kinds, the judge's prompt and its verdict."""

from __future__ import annotations

from typing import Any

import pytest

from assistant.evaluation.checks import (
    JUDGE_INSTRUCTIONS,
    CheckSpec,
    exact_verdict,
    judge_config,
    judge_prompt,
    read_verdict,
    score,
)
from assistant.voicelive.config import SessionTool, UpstreamSettings
from tests.support.session_configs import session_config


def answer(text: str, *tools: str) -> dict[str, Any]:
    return {"text": text, "tool_calls": [{"name": name, "arguments": {}} for name in tools]}


ANSWERS = [
    answer("We open at nine.", "get_opening_hours"),
    answer("Bonjour ! Votre commande est partie.", "get_order_status"),
]


@pytest.mark.parametrize(
    ("spec", "passed"),
    [
        (CheckSpec("tool_called", "get_order_status"), True),
        (CheckSpec("tool_called", "get_order_status", turn=1), False),
        (CheckSpec("tool_called", "place_order"), False),
        (CheckSpec("tool_not_called", "place_order"), True),
        (CheckSpec("tool_not_called", "get_opening_hours", turn=1), False),
        (CheckSpec("phrase_appears", "open at NINE"), True),
        (CheckSpec("phrase_appears", "  votre   commande "), True),
        (CheckSpec("phrase_appears", "bonjour", turn=1), False),
        (CheckSpec("phrase_absent", "bonjour"), False),
        (CheckSpec("phrase_absent", "bonjour", turn=1), True),
    ],
)
def test_exact_checks(spec: CheckSpec, passed: bool) -> None:
    assert exact_verdict(spec, ANSWERS).passed is passed


def test_a_check_of_a_missing_turn_fails_saying_so() -> None:
    verdict = exact_verdict(CheckSpec("phrase_appears", "nine", turn=3), ANSWERS)
    assert not verdict.passed
    assert verdict.detail == "there is no turn 3"


def test_apostrophes_match_whatever_their_shape() -> None:
    spec = CheckSpec("phrase_appears", "l'Italie")
    assert exact_verdict(spec, [answer("La capitale de l\u2019Italie est Rome.")]).passed


@pytest.mark.parametrize(
    ("reply", "passed", "detail"),
    [
        ("YES", True, "the model says yes"),
        ("Yes, they are.", True, "the model says yes"),
        ("No.", False, "the model says no"),
        ("The statement is true: yes", True, "the model says yes"),
        ("Oui", True, "the model says yes"),
        ("I think so", False, "unclear verdict: 'I think so'"),
        ("", False, "unclear verdict: ''"),
    ],
)
def test_the_judges_verdict(reply: str, passed: bool, detail: str) -> None:
    verdict = read_verdict(reply)
    assert (verdict.passed, verdict.detail) == (passed, detail)


def test_the_judge_reads_the_statement_and_the_turns_it_is_about() -> None:
    users = ["When do you open?", "Where is my order?"]
    prompt = judge_prompt(CheckSpec("judged", "The answers are in French."), users, ANSWERS)
    assert "User: When do you open?\nAssistant: We open at nine." in prompt
    assert "Statement: The answers are in French." in prompt
    assert prompt.endswith("Reply YES or NO.")
    one = judge_prompt(CheckSpec("judged", "It greets.", turn=2), users, ANSWERS)
    assert "When do you open?" not in one
    assert "Bonjour" in one


def test_the_judge_has_the_sides_model_and_no_tools() -> None:
    config = session_config(
        profile_name="p",
        instructions="Be kind.",
        voice="v",
        input_transcription_model="whisper-1",
        tools=(SessionTool(name="x", definition={"type": "function", "name": "x"}),),
    )
    judge = judge_config(config)
    assert (judge.model, judge.tools, judge.instructions) == (
        "gpt-realtime",
        (),
        JUDGE_INSTRUCTIONS,
    )


async def test_score_labels_each_check_on_both_sides() -> None:
    upstream = UpstreamSettings(endpoint="http://127.0.0.1:9", api_key="k", api_version="v")
    results = await score(
        [CheckSpec("phrase_appears", "bonjour")],
        ["Hi", "Order?"],
        {"baseline": [answer("Hello"), answer("Sent")], "candidate": ANSWERS},
        judge=None,  # type: ignore[arg-type]  # exact checks never ask the judge
        upstream=upstream,
    )
    assert results == [
        {
            "kind": "phrase_appears",
            "value": "bonjour",
            "turn": None,
            "judged": False,
            "label": "exact",
            "baseline": {"passed": False, "detail": "not found"},
            "candidate": {"passed": True, "detail": "found"},
        }
    ]
