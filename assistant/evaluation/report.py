"""The report of a replay: each turn's two answers compared, and the summary.

One shape for ``evaluate_profile``'s JSON and the admin's run page (docs/evaluation.md#json):
``profile``, ``baseline``/``candidate`` (version descriptions), ``turns`` (each with ``user``
and both answers: ``text``, ``tool_calls``, ``latency_ms``, tokens, ``estimated_cost``, and for
a recorded turn ``heard``), ``checks`` and ``summary``. No user is named: a conversation
appears by its id only.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from assistant.evaluation.checks import normalized
from assistant.evaluation.replay import ReplayedAnswer
from assistant.history.ledger import estimate_cost
from assistant.history.models import ModelPrice

SIDES = ("baseline", "candidate")

#: Openings of a refusal, in English and French (a heuristic: the report says "refused-looking").
REFUSAL = re.compile(
    r"^(i'?m sorry,? but|sorry,? (but )?i (can'?t|cannot)|i (can'?t|cannot|am unable to|"
    r"won'?t) (help|do|answer|assist|provide)|i'?m (not able|unable) to|"
    r"je (ne peux pas|suis désolée?,? mais))",
    re.IGNORECASE,
)


def answer_json(answer: ReplayedAnswer, price: ModelPrice | None) -> dict[str, Any]:
    """One replayed answer as a report holds it, with its cost at ``price``."""
    cost = sum((estimate_cost(usage, price) for usage in answer.usage), Decimal(0))
    return answer.as_json() | {"estimated_cost": float(cost)}


def model_price(model: str) -> ModelPrice | None:
    """The usage ledger's price of ``model`` (None: costs are estimated as 0)."""
    return ModelPrice.objects.filter(model=model).first()


def is_refusal(text: str) -> bool:
    """Whether an answer opens like a refusal (a heuristic, English and French)."""
    return bool(REFUSAL.match(normalized(text)))


def turn_json(
    user: str, baseline: dict[str, Any], candidate: dict[str, Any], conversation: str | None
) -> dict[str, Any]:
    """One turn of the report: the user's text, both answers and what changed.

    A recorded turn also says whether the two sides heard it differently (``heard_changed``).
    """
    turn = {
        "conversation": conversation,
        "user": user,
        "baseline": baseline,
        "candidate": candidate,
        "answer_changed": normalized(baseline["text"]) != normalized(candidate["text"]),
        "tool_calls_changed": baseline["tool_calls"] != candidate["tool_calls"],
    }
    if "heard" in baseline or "heard" in candidate:
        heard = [_words(answer.get("heard") or "") for answer in (baseline, candidate)]
        turn["heard_changed"] = heard[0] != heard[1]
    return turn


def _words(transcript: str) -> list[str]:
    """A transcript's words: recognisers differ in case and punctuation, which is no change."""
    return re.findall(r"\w+", normalized(transcript))


def tool_call_marks(
    mine: Sequence[dict[str, Any]], theirs: Sequence[dict[str, Any]]
) -> list[tuple[dict[str, Any], bool]]:
    """Each of one side's tool calls, and whether the other side made no identical call."""
    left = list(theirs)
    marked = []
    for call in mine:
        if call in left:
            left.remove(call)
            marked.append((call, False))
        else:
            marked.append((call, True))
    return marked


def _side(answers: Sequence[dict[str, Any]]) -> dict[str, Any]:
    latencies = [a["latency_ms"] for a in answers if a["latency_ms"] is not None]
    characters = sum(len(a["text"]) for a in answers)
    return {
        "empty_answers": sum(1 for a in answers if not a["text"].strip()),
        "refused_answers": sum(1 for a in answers if is_refusal(a["text"])),
        "characters": characters,
        "mean_characters": round(characters / len(answers)) if answers else 0,
        "median_latency_ms": round(statistics.median(latencies)) if latencies else None,
        "input_tokens": sum(a["input_tokens"] for a in answers),
        "output_tokens": sum(a["output_tokens"] for a in answers),
        "tool_calls": sum(len(a["tool_calls"]) for a in answers),
        "estimated_cost": round(sum(a["estimated_cost"] for a in answers), 6),
    }


def _delta(after: float | None, before: float | None, places: int = 0) -> float | None:
    if after is None or before is None:
        return None
    return round(after - before, places) if places else round(after - before)


def summary(turns: Sequence[dict[str, Any]], checks: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """What changed from the baseline to the candidate, over every turn and check."""
    before = _side([turn["baseline"] for turn in turns])
    after = _side([turn["candidate"] for turn in turns])
    return {
        "turns": len(turns),
        "answers_changed": sum(1 for turn in turns if turn["answer_changed"]),
        "tool_calls_changed": sum(1 for turn in turns if turn["tool_calls_changed"]),
        "recorded_turns": sum(1 for turn in turns if "heard_changed" in turn),
        "heard_changed": sum(1 for turn in turns if turn.get("heard_changed")),
        "baseline": before,
        "candidate": after,
        "deltas": {
            "characters": after["characters"] - before["characters"],
            "median_latency_ms": _delta(after["median_latency_ms"], before["median_latency_ms"]),
            "output_tokens": after["output_tokens"] - before["output_tokens"],
            "estimated_cost": _delta(after["estimated_cost"], before["estimated_cost"], 6),
        },
        "checks": {
            side: {
                "passed": sum(1 for check in checks if check[side]["passed"]),
                "failed": sum(1 for check in checks if not check[side]["passed"]),
            }
            for side in SIDES
        },
    }


def describe_version(number: int, *, draft: bool) -> dict[str, Any]:
    """A side's version description, as the JSON's ``baseline`` and ``candidate`` hold it."""
    description = f"draft (of version {number})" if draft else f"version {number}"
    return {"version": number, "draft": draft, "description": description}


def report(
    *,
    profile: dict[str, Any],
    baseline: dict[str, Any],
    candidate: dict[str, Any],
    source: dict[str, Any],
    turns: list[dict[str, Any]],
    checks: list[dict[str, Any]],
) -> dict[str, Any]:
    """The whole report (docs/evaluation.md#json)."""
    return {
        "profile": profile,
        "baseline": baseline,
        "candidate": candidate,
        "source": source,
        "turns": turns,
        "checks": checks,
        "summary": summary(turns, checks),
    }


def text_report(data: dict[str, Any]) -> str:
    """The report as plain text, side by side per turn, then the checks and the summary."""
    lines = [
        f"{data['profile']['name']}: {data['baseline']['description']} → "
        f"{data['candidate']['description']}",
        "",
    ]
    for number, turn in enumerate(data["turns"], 1):
        mark = "changed" if turn["answer_changed"] else "same"
        lines.append(f"{number}. user: {turn['user']}")
        for side in SIDES:
            answer = turn[side]
            calls = "".join(
                f" [{call['name']}({call['arguments']})]" for call in answer["tool_calls"]
            )
            if "heard" in answer:
                lines.append(f"   {side:<9} heard: {answer['heard']}")
            lines.append(f"   {side:<9} ({answer['latency_ms']} ms): {answer['text']}{calls}")
        lines.append(
            f"   {mark}"
            + ("; tool calls differ" if turn["tool_calls_changed"] else "")
            + ("; heard differently" if turn.get("heard_changed") else "")
        )
    if data["checks"]:
        lines += ["", "checks:"]
        for check in data["checks"]:
            where = f" (turn {check['turn']})" if check["turn"] else ""
            verdicts = "  ".join(
                f"{side}: {'PASS' if check[side]['passed'] else 'FAIL'} ({check[side]['detail']})"
                for side in SIDES
            )
            lines.append(f"   [{check['label']}] {check['kind']} {check['value']!r}{where}")
            lines.append(f"      {verdicts}")
    summary_ = data["summary"]
    lines += [
        "",
        f"{summary_['answers_changed']} of {summary_['turns']} answers changed, "
        f"{summary_['tool_calls_changed']} with different tool calls.",
    ]
    if data["checks"]:
        failed = summary_["checks"]["candidate"]["failed"]
        lines.append(f"{failed} check(s) failed on the candidate.")
    return "\n".join(lines) + "\n"


def run_report(run: Any) -> dict[str, Any]:
    """The report of an evaluation run, from its stored turns (those replayed so far).

    A turn whose conversation was deleted since (retention, a user's deletion) is gone with it.
    """
    turns = [
        turn_json(
            row.user_text,
            row.baseline,
            row.candidate,
            str(row.conversation_id) if row.conversation_id else None,
        )
        for row in run.turns.order_by("position")
        if row.is_done
    ]
    source: dict[str, Any] = (
        {"test_set": run.test_set_name}
        if run.test_set_name
        else {"conversations": run.conversations}
    )
    data = report(
        profile={"id": run.profile_id, "name": run.profile.name},
        baseline=describe_version(run.baseline_version, draft=False),
        candidate=describe_version(
            run.candidate_version or run.draft_of or 0, draft=run.candidate_version is None
        ),
        source=source,
        turns=turns,
        checks=list(run.check_results or []),
    )
    data["run"] = {
        "id": str(run.pk),
        "status": run.status,
        "error_code": run.error_code,
        "turns_done": run.turns_done,
        "turns_total": run.turns_total,
    }
    return data
