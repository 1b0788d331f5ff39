"""The report's comparison of two answers and its summary."""

from __future__ import annotations

from typing import Any

from assistant.evaluation.report import (
    describe_version,
    is_refusal,
    summary,
    text_report,
    tool_call_marks,
    turn_json,
)


def answer(text: str, latency: int, cost: float, *calls: dict[str, Any]) -> dict[str, Any]:
    return {
        "text": text,
        "tool_calls": list(calls),
        "latency_ms": latency,
        "input_tokens": 10,
        "output_tokens": len(text.split()),
        "estimated_cost": cost,
    }


LOOKUP = {"name": "get_order_status", "arguments": {"order": 1}}
OTHER = {"name": "get_order_status", "arguments": {"order": 2}}


def test_tool_calls_are_marked_where_the_other_side_made_no_identical_call() -> None:
    assert tool_call_marks([LOOKUP, OTHER], [LOOKUP]) == [(LOOKUP, False), (OTHER, True)]
    assert tool_call_marks([LOOKUP, LOOKUP], [LOOKUP]) == [(LOOKUP, False), (LOOKUP, True)]


def test_refused_looking_answers() -> None:
    assert is_refusal("I'm sorry, but I can't help with that.")
    assert is_refusal("I cannot answer that.")
    assert is_refusal("Je ne peux pas répondre.")
    assert not is_refusal("Sorry for the wait: the shop opens at nine.")


def test_the_summary_counts_changes_and_deltas() -> None:
    turns = [
        turn_json("Hi", answer("Hello!", 400, 0.001), answer("Bonjour !", 600, 0.002), "c1"),
        turn_json(
            "Order 1?",
            answer("Shipped.", 500, 0.001, LOOKUP),
            answer("I can't help with that.", 300, 0.001),
            "c1",
        ),
        turn_json("Bye", answer("Bye.", 100, 0.0), answer("bye.", 100, 0.0), "c1"),
    ]
    checks = [
        {"baseline": {"passed": True}, "candidate": {"passed": False}},
        {"baseline": {"passed": True}, "candidate": {"passed": True}},
    ]
    result = summary(turns, checks)
    assert result["turns"] == 3
    assert result["answers_changed"] == 2, "case and spacing are not a change"
    assert result["tool_calls_changed"] == 1
    assert result["candidate"]["refused_answers"] == 1
    assert result["baseline"]["median_latency_ms"] == 400
    assert result["deltas"]["median_latency_ms"] == 300 - 400
    assert result["deltas"]["characters"] == len("Bonjour !I can't help with that.bye.") - len(
        "Hello!Shipped.Bye."
    )
    assert result["deltas"]["estimated_cost"] == 0.001
    assert result["checks"] == {
        "baseline": {"passed": 2, "failed": 0},
        "candidate": {"passed": 1, "failed": 1},
    }


def test_the_text_report() -> None:
    turns = [turn_json("Hi", answer("Hello!", 400, 0), answer("Bonjour !", 600, 0), None)]
    checks = [
        {
            "kind": "judged",
            "value": "It answers in French.",
            "turn": None,
            "judged": True,
            "label": "model-judged",
            "baseline": {"passed": False, "detail": "the model says no"},
            "candidate": {"passed": True, "detail": "the model says yes"},
        }
    ]
    data = {
        "profile": {"id": 1, "name": "Default"},
        "baseline": describe_version(1, draft=False),
        "candidate": describe_version(1, draft=True),
        "turns": turns,
        "checks": checks,
        "summary": summary(turns, checks),
    }
    text = text_report(data)
    assert text.splitlines()[0] == "Default: version 1 → draft (of version 1)"
    assert "   [model-judged] judged 'It answers in French.'" in text
    assert "baseline: FAIL (the model says no)  candidate: PASS (the model says yes)" in text
    assert text.endswith("0 check(s) failed on the candidate.\n")


def test_recorded_turns_say_what_each_side_heard_and_whether_it_differs() -> None:
    def heard(text: str, transcript: str) -> dict[str, Any]:
        return answer(text, 300, 0.0) | {"heard": transcript}

    turns = [
        turn_json("Hi", answer("Hello!", 400, 0), answer("Bonjour !", 600, 0), None),
        turn_json(
            "capital of Italy (recorded)",
            heard("Rome.", "What is the capital of Italy?"),
            heard("Paris.", "c'est le capital de l'unmitral"),
            None,
        ),
        turn_json("hello (recorded)", heard("Hi.", "Hello."), heard("Hi!", "hello"), None),
    ]
    assert "heard_changed" not in turns[0], "a text turn is as before"
    assert [turn["heard_changed"] for turn in turns[1:]] == [True, False], (
        "case and punctuation are no change"
    )
    result = summary(turns, [])
    assert (result["recorded_turns"], result["heard_changed"]) == (2, 1)
    data = {
        "profile": {"id": 1, "name": "Default"},
        "baseline": describe_version(1, draft=False),
        "candidate": describe_version(1, draft=True),
        "turns": turns,
        "checks": [],
        "summary": result,
    }
    text = text_report(data)
    assert "   candidate heard: c'est le capital de l'unmitral" in text
    assert "   changed; heard differently" in text
