"""Scoring a test set's checks on one side's answers.

Exact checks look at the answers themselves: a tool called (or not), a phrase that appears (or
not), compared ignoring case and spacing. A ``judged`` check asks the engine's model whether a
plain-language statement holds, with a yes/no prompt; the report labels it *model-judged*
because a model can be wrong. A check with a turn number looks at that turn's answer alone,
one without at the whole replay (docs/evaluation.md#checks).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from assistant.evaluation.replay import replay_conversation
from assistant.voicelive.config import SessionConfig, UpstreamSettings

TOOL_CALLED = "tool_called"
TOOL_NOT_CALLED = "tool_not_called"
PHRASE_APPEARS = "phrase_appears"
PHRASE_ABSENT = "phrase_absent"
JUDGED = "judged"
EXACT_KINDS = frozenset({TOOL_CALLED, TOOL_NOT_CALLED, PHRASE_APPEARS, PHRASE_ABSENT})

#: The judge's instructions: one word back, so its verdict can be read without a parser.
JUDGE_INSTRUCTIONS = (
    "You check the answers of an assistant against a statement. Reply with exactly one word: "
    "YES if the statement is true of the assistant's answers, NO if it is not."
)
#: How many characters of the conversation the judge reads (a small model's context is short).
JUDGE_MAX_CHARACTERS = 6000


@dataclass(frozen=True, slots=True)
class CheckSpec:
    """A check as the scorer needs it (detached from the ORM)."""

    kind: str
    value: str
    turn: int | None = None  # 1-based; None: the whole replay

    @property
    def judged(self) -> bool:
        """Whether the engine's model scores it (else it is exact)."""
        return self.kind == JUDGED

    def describe(self) -> str:
        """The check in a few words, for logs and messages."""
        where = f" (turn {self.turn})" if self.turn else ""
        return f"{self.kind} {self.value!r}{where}"


@dataclass(frozen=True, slots=True)
class Verdict:
    """One side's result of one check; ``detail`` says what was seen."""

    passed: bool
    detail: str

    def as_json(self) -> dict[str, Any]:
        """The verdict as the report holds it."""
        return {"passed": self.passed, "detail": self.detail}


def normalized(text: str) -> str:
    """Text compared ignoring case, spacing and the shape of apostrophes."""
    return " ".join(text.replace("\u2019", "'").casefold().split())


def _scope(spec: CheckSpec, answers: Sequence[dict[str, Any]]) -> Sequence[dict[str, Any]]:
    if spec.turn is None:
        return answers
    index = spec.turn - 1
    return answers[index : index + 1] if 0 <= index < len(answers) else ()


def exact_verdict(spec: CheckSpec, answers: Sequence[dict[str, Any]]) -> Verdict:
    """Score an exact check on one side's answers (each with ``text`` and ``tool_calls``).

    A check naming a turn the replay does not have fails, saying so.
    """
    scoped = _scope(spec, answers)
    if not scoped:
        return Verdict(False, f"there is no turn {spec.turn}")
    if spec.kind in (TOOL_CALLED, TOOL_NOT_CALLED):
        called = [call["name"] for answer in scoped for call in answer["tool_calls"]]
        hit = spec.value.strip() in called
        seen = ", ".join(called) or "no tool"
        if spec.kind == TOOL_CALLED:
            return Verdict(hit, f"called: {seen}")
        return Verdict(not hit, f"called: {seen}")
    if spec.kind in (PHRASE_APPEARS, PHRASE_ABSENT):
        phrase = normalized(spec.value)
        found = [n for n, answer in enumerate(scoped, 1) if phrase in normalized(answer["text"])]
        if spec.kind == PHRASE_APPEARS:
            return Verdict(bool(found), "found" if found else "not found")
        return Verdict(not found, "found" if found else "not found")
    msg = f"not an exact check: {spec.kind}"
    raise ValueError(msg)


def judge_prompt(spec: CheckSpec, users: Sequence[str], answers: Sequence[dict[str, Any]]) -> str:
    """The yes/no question the judge gets: the statement and the conversation it is about."""
    if spec.turn is not None:
        index = spec.turn - 1
        pairs = list(zip(users, answers, strict=True))[index : index + 1]
    else:
        pairs = list(zip(users, answers, strict=True))
    lines = [
        f"User: {user}\nAssistant: {answer['text'] or '(no answer)'}" for user, answer in pairs
    ]
    conversation = "\n".join(lines)[-JUDGE_MAX_CHARACTERS:]
    return (
        f"Conversation:\n{conversation}\n\nStatement: {spec.value.strip()}\n\n"
        "Is the statement true of the assistant's answers? Reply YES or NO."
    )


def read_verdict(reply: str) -> Verdict:
    """The judge's reply as a verdict: its first YES or NO (OUI or NON too).

    A reply with neither fails the check, quoting the reply: an unclear verdict is no pass.
    """
    for word in re.findall(r"[a-zA-Z]+", reply):
        if word.upper() in {"YES", "OUI"}:
            return Verdict(True, "the model says yes")
        if word.upper() in {"NO", "NON"}:
            return Verdict(False, "the model says no")
    return Verdict(False, f"unclear verdict: {reply[:80]!r}")


def judge_config(config: SessionConfig) -> SessionConfig:
    """The side's session configuration as a judge: same model, no tools, no greeting."""
    return dataclasses.replace(
        config,
        instructions=JUDGE_INSTRUCTIONS,
        tools=(),
        greeting_mode="none",
        temperature=0.6,  # Voice Live's lowest
        max_response_output_tokens=16,
    )


async def judged_verdict(
    spec: CheckSpec,
    users: Sequence[str],
    answers: Sequence[dict[str, Any]],
    *,
    config: SessionConfig,
    upstream: UpstreamSettings,
) -> Verdict:
    """Ask the engine's model (on a connection of its own) whether the statement holds.

    Raises:
        ReplayError, TimeoutError, VoiceLiveUnavailable: the engine failed.
    """
    if not _scope(spec, answers):
        return Verdict(False, f"there is no turn {spec.turn}")
    (reply,) = await replay_conversation(
        config=judge_config(config),
        upstream=upstream,
        user_turns=[judge_prompt(spec, users, answers)],
    )
    return read_verdict(reply.text)


async def score(
    specs: Sequence[CheckSpec],
    users: Sequence[str],
    sides: dict[str, Sequence[dict[str, Any]]],
    *,
    judge: SessionConfig,
    upstream: UpstreamSettings,
) -> list[dict[str, Any]]:
    """Every check on every side, as the report holds them.

    ``users`` are the user turns, in order (the judge reads them with the answers);
    ``sides`` maps "baseline"/"candidate" to its answers, in order; ``judge`` is the
    configuration whose model judges both sides (the candidate's).
    """
    results = []
    for spec in specs:
        row: dict[str, Any] = {
            "kind": spec.kind,
            "value": spec.value,
            "turn": spec.turn,
            "judged": spec.judged,
            "label": "model-judged" if spec.judged else "exact",
        }
        for name, answers in sides.items():
            if spec.judged:
                verdict = await judged_verdict(
                    spec, users, answers, config=judge, upstream=upstream
                )
            else:
                verdict = exact_verdict(spec, answers)
            row[name] = verdict.as_json()
        results.append(row)
    return results
