"""Replay a profile's recent conversations or a test set against two of its versions.

The candidate (the draft, or ``--version N``) and the baseline (``--against N``; default: the
published version) each answer the user turns of the profile's last ``--conversations``
conversations that kept their transcripts, or of the test set ``--set NAME`` (its recorded
turns as audio), on the configured engine; the report puts the answers side by side and scores
the set's checks on both sides (docs/evaluation.md#evaluate_profile). Tools follow the replay's
rule (``replay_tools.py``): no tool with side effects is called.

In this process, in the foreground: for CI and scripts. The admin's runs go to the runner
process (``run_evaluations``).

Exit status: 0 every check passed on the candidate (or there were none); 1 a check failed on
the candidate; 2 bad arguments (no such profile, version or set, nothing to replay) or the
engine failed.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from asgiref.sync import sync_to_async
from django.core.management.base import BaseCommand, CommandError, CommandParser

from assistant import services
from assistant.evaluation.checks import CheckSpec, score
from assistant.evaluation.models import TestSet
from assistant.evaluation.replay import ReplayedAnswer, ReplayError, replay_side_by_side
from assistant.evaluation.replay_tools import replay_tool_answers
from assistant.evaluation.report import (
    answer_json,
    describe_version,
    model_price,
    report,
    text_report,
    turn_json,
)
from assistant.evaluation.runs import (
    Group,
    conversation_groups,
    test_set_checks,
    test_set_groups,
)
from assistant.live.admission import upstream_settings
from assistant.models import AssistantProfile
from assistant.voicelive.config import SessionConfig
from assistant.voicelive.upstream import VoiceLiveUnavailable

CHECK_FAILED = 1
BAD_ARGUMENTS = 2
ENGINE_FAILED = 2


class Command(BaseCommand):
    help = (
        "Replay the user turns of a profile's recent conversations (those that kept their "
        "transcripts) or of a test set against its draft or a version, and against its "
        "published version or another; compare the answers and score the set's checks. "
        "Exit status: 0 checks passed, 1 a check failed, 2 bad arguments or engine failed."
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
        source = parser.add_mutually_exclusive_group()
        source.add_argument(
            "--conversations",
            type=int,
            help="replay the profile's last N conversations with transcripts (default 5)",
        )
        source.add_argument("--set", dest="test_set", help="replay the test set of this name")
        parser.add_argument("--format", choices=["json", "text"], default="json")

    def handle(self, *args: Any, **options: Any) -> None:
        profile = _profile(options["profile"])
        count = options["conversations"]
        if count is not None and count < 1:
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
        specs: list[CheckSpec] = []
        if options["test_set"]:
            test_set = TestSet.objects.filter(name=options["test_set"]).first()
            if test_set is None:
                msg = f"no test set {options['test_set']!r}"
                raise CommandError(msg, returncode=BAD_ARGUMENTS)
            groups = test_set_groups(test_set)
            specs = test_set_checks(test_set)
            source: dict[str, Any] = {"test_set": test_set.name}
        else:
            groups = conversation_groups(profile.pk, count or 5)
            source = {"conversations": count or 5}
        if not groups:
            msg = f"nothing to replay for profile {profile.pk} (no kept transcript, empty set)"
            raise CommandError(msg, returncode=BAD_ARGUMENTS)
        try:
            answers = asyncio.run(_replay_both(baseline, candidate, groups))
            turns = _turns(baseline, candidate, groups, answers)
            checks = asyncio.run(
                score(
                    specs,
                    [turn["user"] for turn in turns],
                    {side: [turn[side] for turn in turns] for side in ("baseline", "candidate")},
                    judge=candidate,
                    upstream=upstream_settings(),
                )
            )
        except (ReplayError, VoiceLiveUnavailable, TimeoutError) as exc:
            msg = f"the replay failed: {exc or type(exc).__name__}"
            raise CommandError(msg, returncode=ENGINE_FAILED) from exc
        data = report(
            profile={"id": profile.pk, "name": profile.name},
            baseline=describe_version(baseline.version_number or 0, draft=False),
            candidate=describe_version(candidate.version_number or 0, draft=candidate.is_draft),
            source=source,
            turns=turns,
            checks=checks,
        )
        if options["format"] == "json":
            self.stdout.write(json.dumps(data, indent=2, ensure_ascii=False))
        else:
            self.stdout.write(text_report(data))
        failed = data["summary"]["checks"]["candidate"]["failed"]
        if failed:
            msg = f"{failed} check(s) failed on the candidate"
            raise CommandError(msg, returncode=CHECK_FAILED)


def _profile(raw: str) -> AssistantProfile:
    profiles = AssistantProfile.objects.all()
    found = profiles.filter(pk=int(raw)).first() if raw.isdigit() else None
    found = found or profiles.filter(name=raw).first()
    if found is None:
        msg = f"no profile {raw!r}"
        raise CommandError(msg, returncode=BAD_ARGUMENTS)
    return found


Answers = list[list[tuple[ReplayedAnswer, ReplayedAnswer]]]


async def _replay_both(
    baseline: SessionConfig, candidate: SessionConfig, groups: list[Group]
) -> Answers:
    """Each conversation on both sides, turn by turn; one conversation at a time."""
    upstream = upstream_settings()
    tools = await sync_to_async(replay_tool_answers)(baseline, candidate)
    answers: Answers = []
    for _, user_turns in groups:
        pairs: list[tuple[ReplayedAnswer, ReplayedAnswer]] = []

        async def collect(
            _index: int,
            before: ReplayedAnswer,
            after: ReplayedAnswer,
            pairs: list[tuple[ReplayedAnswer, ReplayedAnswer]] = pairs,
        ) -> None:
            pairs.append((before, after))

        await replay_side_by_side(
            baseline=baseline,
            candidate=candidate,
            upstream=upstream,
            user_turns=user_turns,
            on_turn=collect,
            tools=tools,
        )
        answers.append(pairs)
    return answers


def _turns(
    baseline: SessionConfig, candidate: SessionConfig, groups: list[Group], answers: Answers
) -> list[dict[str, Any]]:
    prices = model_price(baseline.model), model_price(candidate.model)
    turns = []
    for (conversation, user_turns), pairs in zip(groups, answers, strict=True):
        for user, (before, after) in zip(user_turns, pairs, strict=True):
            turns.append(
                turn_json(
                    user.text,
                    answer_json(before, prices[0]),
                    answer_json(after, prices[1]),
                    conversation,
                )
            )
    return turns
