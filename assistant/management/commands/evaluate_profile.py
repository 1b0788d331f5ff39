"""Replay a profile's recent conversations against two of its versions and compare the answers.

The candidate (the draft, or ``--version N``) and the baseline (``--against N``; default: the
published version) each answer the user turns of the profile's last ``--conversations``
conversations that kept their transcripts, on the configured engine, in text; the report puts
the answers side by side (docs/profile-versions.md#replaying-conversations-evaluate_profile).
No tool runs during a replay (assistant/management/replay.py).

Exit status: 0 the replay ran; 2 bad arguments (no such profile or version, nothing to replay);
3 the engine failed.
"""

from __future__ import annotations

import asyncio
import json
import statistics
from decimal import Decimal
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from assistant import services
from assistant.history.ledger import estimate_cost
from assistant.history.models import Conversation, ModelPrice, Turn
from assistant.live.admission import upstream_settings
from assistant.management.replay import ReplayedAnswer, ReplayError, replay_conversation
from assistant.models import AssistantProfile
from assistant.voicelive.config import SessionConfig
from assistant.voicelive.upstream import VoiceLiveUnavailable

BAD_ARGUMENTS = 2
ENGINE_FAILED = 3
USER_ROLES = (Turn.Role.USER, Turn.Role.TYPED)


class Command(BaseCommand):
    help = (
        "Replay the user turns of a profile's recent conversations (those that kept their "
        "transcripts) against its draft or a version, and against its published version or "
        "another, and compare the answers. Exit status: 0 ran, 2 bad arguments, 3 engine failed."
    )

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        """Django's own ``--version`` (its release) gives way to the candidate version's."""
        return super().create_parser(prog_name, subcommand, conflict_handler="resolve", **kwargs)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("profile", help="the profile's id or name")
        candidate = parser.add_mutually_exclusive_group()
        candidate.add_argument(
            "--draft", action="store_true", help="the candidate is the draft (the default)"
        )
        candidate.add_argument("--version", type=int, help="the candidate is version N")
        parser.add_argument(
            "--against", type=int, help="the baseline version (default: the published one)"
        )
        parser.add_argument(
            "--conversations",
            type=int,
            default=5,
            help="replay the profile's last N conversations with transcripts (default 5)",
        )
        parser.add_argument("--format", choices=["json", "text"], default="json")

    def handle(self, *args: Any, **options: Any) -> None:
        profile = _profile(options["profile"])
        if options["conversations"] < 1:
            msg = "--conversations must be at least 1"
            raise CommandError(msg, returncode=BAD_ARGUMENTS)
        baseline_number = options["against"] or profile.version
        try:
            candidate = services.profile_config_of(
                profile_id=profile.pk, version=options["version"]
            )
            baseline = services.profile_config_of(profile_id=profile.pk, version=baseline_number)
        except LookupError as exc:
            raise CommandError(str(exc), returncode=BAD_ARGUMENTS) from exc
        conversations = _conversations(profile, options["conversations"])
        if not conversations:
            msg = f"profile {profile.pk} has no conversation with a kept transcript to replay"
            raise CommandError(msg, returncode=BAD_ARGUMENTS)
        try:
            answers = asyncio.run(_replay_both(baseline, candidate, conversations))
        except (ReplayError, VoiceLiveUnavailable, TimeoutError) as exc:
            msg = f"the replay failed: {exc or type(exc).__name__}"
            raise CommandError(msg, returncode=ENGINE_FAILED) from exc
        report = _report(profile, baseline, candidate, conversations, answers)
        if options["format"] == "json":
            self.stdout.write(json.dumps(report, indent=2, ensure_ascii=False))
        else:
            self.stdout.write(_text(report))


def _profile(raw: str) -> AssistantProfile:
    profiles = AssistantProfile.objects.all()
    found = profiles.filter(pk=int(raw)).first() if raw.isdigit() else None
    found = found or profiles.filter(name=raw).first()
    if found is None:
        msg = f"no profile {raw!r}"
        raise CommandError(msg, returncode=BAD_ARGUMENTS)
    return found


def _conversations(profile: AssistantProfile, count: int) -> list[tuple[str, list[str]]]:
    """The last ``count`` conversations that kept their transcripts, oldest first.

    Each as (conversation id, its user turns' texts). Drafts are left out: they did not run
    on a version.
    """
    rows = Conversation.objects.filter(
        profile=profile, transcript_stored=True, is_draft=False
    ).order_by("-started_at")[:count]
    found = []
    for conversation in reversed(list(rows)):
        texts = [
            text.strip()
            for text in conversation.turns.filter(role__in=USER_ROLES).values_list(
                "text", flat=True
            )
            if text.strip()
        ]
        if texts:
            found.append((str(conversation.pk), texts))
    return found


Answers = list[tuple[list[ReplayedAnswer], list[ReplayedAnswer]]]


async def _replay_both(
    baseline: SessionConfig, candidate: SessionConfig, conversations: list[tuple[str, list[str]]]
) -> Answers:
    """Each conversation on the baseline, then on the candidate.

    One connection at a time: gentle on the engine that live sessions share.
    """
    upstream = upstream_settings()
    answers = []
    for _, turns in conversations:
        before = await replay_conversation(config=baseline, upstream=upstream, user_turns=turns)
        after = await replay_conversation(config=candidate, upstream=upstream, user_turns=turns)
        answers.append((before, after))
    return answers


def _describe(config: SessionConfig) -> dict[str, Any]:
    if config.is_draft:
        description = f"draft (of version {config.version_number})"
    else:
        description = f"version {config.version_number}"
    return {
        "version": config.version_number,
        "draft": config.is_draft,
        "description": description,
    }


def _report(
    profile: AssistantProfile,
    baseline: SessionConfig,
    candidate: SessionConfig,
    conversations: list[tuple[str, list[str]]],
    answers: Answers,
) -> dict[str, Any]:
    """The report: no user is named (conversations by id only)."""
    prices = {price.model: price for price in ModelPrice.objects.all()}

    def priced(answer: ReplayedAnswer, config: SessionConfig) -> dict[str, Any]:
        price = prices.get(config.model)
        cost = sum((estimate_cost(usage, price) for usage in answer.usage), Decimal(0))
        return answer.as_json() | {"estimated_cost": float(cost)}

    turns = []
    for (conversation_id, texts), (before, after) in zip(conversations, answers, strict=True):
        for user, old, new in zip(texts, before, after, strict=True):
            turns.append(
                {
                    "conversation": conversation_id,
                    "user": user,
                    "baseline": priced(old, baseline),
                    "candidate": priced(new, candidate),
                    "answer_changed": old.text != new.text,
                    "tool_calls_changed": old.tool_calls != new.tool_calls,
                }
            )
    return {
        "profile": {"id": profile.pk, "name": profile.name},
        "baseline": _describe(baseline),
        "candidate": _describe(candidate),
        "turns": turns,
        "summary": _summary(turns),
    }


def _summary(turns: list[dict[str, Any]]) -> dict[str, Any]:
    def side(name: str) -> dict[str, Any]:
        answers = [turn[name] for turn in turns]
        latencies = [a["latency_ms"] for a in answers if a["latency_ms"] is not None]
        return {
            "empty_answers": sum(1 for a in answers if not a["text"]),
            "characters": sum(len(a["text"]) for a in answers),
            "median_latency_ms": round(statistics.median(latencies)) if latencies else None,
            "input_tokens": sum(a["input_tokens"] for a in answers),
            "output_tokens": sum(a["output_tokens"] for a in answers),
            "tool_calls": sum(len(a["tool_calls"]) for a in answers),
            "estimated_cost": round(sum(a["estimated_cost"] for a in answers), 6),
        }

    return {
        "turns": len(turns),
        "answers_changed": sum(1 for turn in turns if turn["answer_changed"]),
        "tool_calls_changed": sum(1 for turn in turns if turn["tool_calls_changed"]),
        "baseline": side("baseline"),
        "candidate": side("candidate"),
    }


def _text(report: dict[str, Any]) -> str:
    lines = [
        f"{report['profile']['name']}: {report['baseline']['description']} → "
        f"{report['candidate']['description']}",
        "",
    ]
    for number, turn in enumerate(report["turns"], 1):
        mark = "changed" if turn["answer_changed"] else "same"
        lines += [
            f"{number}. user: {turn['user']}",
            f"   baseline  ({turn['baseline']['latency_ms']} ms): {turn['baseline']['text']}",
            f"   candidate ({turn['candidate']['latency_ms']} ms): {turn['candidate']['text']}",
            f"   {mark}" + ("; tool calls differ" if turn["tool_calls_changed"] else ""),
        ]
    summary = report["summary"]
    lines += [
        "",
        f"{summary['answers_changed']} of {summary['turns']} answers changed, "
        f"{summary['tool_calls_changed']} with different tool calls.",
    ]
    return "\n".join(lines) + "\n"
