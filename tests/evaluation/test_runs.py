"""Evaluation runs in the database: one active run per profile, claims and leases, the plan,
the runner's resume and cancel (over a scripted replay), and the purge with the history."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.utils import timezone

from assistant import services
from assistant.evaluation import runner, runs
from assistant.evaluation.models import (
    Check,
    EvaluationRun,
    RunError,
    RunStatus,
    RunTurn,
    TestSet,
    TestTurn,
)
from assistant.evaluation.replay import ContextTurn, ReplayedAnswer, ReplayError, UserTurn
from assistant.history.models import Conversation, Turn
from assistant.models import AssistantProfile
from assistant.voicelive.config import UpstreamSettings

pytestmark = pytest.mark.django_db(transaction=True)

UPSTREAM = UpstreamSettings(endpoint="http://127.0.0.1:9", api_key="k", api_version="v")


@pytest.fixture
def profile() -> AssistantProfile:
    """A published profile (version 1) with a draft (transactional tests flush the rest)."""
    found = AssistantProfile(name="Evaluated", instructions="Be brief.")
    services.profile_save(profile=found)
    services.profile_publish(profile_id=found.pk, author=None, note="created")
    draft = {"instructions": "Always answer in French."}
    AssistantProfile.objects.filter(pk=found.pk).update(draft=draft)
    found.refresh_from_db()
    return found


def conversation(profile: AssistantProfile, *texts: str, kept: bool = True) -> Conversation:
    user = User.objects.get_or_create(username="talker", first_name="Secretname")[0]
    found = Conversation.objects.create(
        user=user, profile=profile, profile_name=profile.name, transcript_stored=kept
    )
    for seq, text in enumerate(texts):
        Turn.objects.create(
            conversation=found, seq=2 * seq, role="user", text=text, started_at=timezone.now()
        )
        Turn.objects.create(
            conversation=found,
            seq=2 * seq + 1,
            role="assistant",
            text="(recorded)",
            started_at=timezone.now(),
        )
    return found


def test_one_active_run_per_profile(profile: AssistantProfile) -> None:
    first = runs.run_request(
        profile=profile, candidate_version=None, baseline_version=None, conversations=3
    )
    assert (first.status, first.baseline_version, first.draft_of) == ("queued", 1, 1)
    assert first.candidate_snapshot == {"instructions": "Always answer in French."}
    with pytest.raises(runs.RunBusy):
        runs.run_request(
            profile=profile, candidate_version=None, baseline_version=None, conversations=3
        )
    runs.run_cancel(first.pk)
    assert EvaluationRun.objects.get(pk=first.pk).status == RunStatus.CANCELLED
    second = runs.run_request(
        profile=profile, candidate_version=1, baseline_version=1, conversations=3
    )
    assert second.candidate_description == "version 1"


def test_a_missing_version_is_refused(profile: AssistantProfile) -> None:
    with pytest.raises(LookupError, match="no version 7"):
        runs.run_request(profile=profile, candidate_version=7, baseline_version=1, conversations=1)


def test_claims_and_leases(profile: AssistantProfile) -> None:
    run = runs.run_request(
        profile=profile, candidate_version=None, baseline_version=None, conversations=1
    )
    claimed = runs.run_claim("runner-a", lease_seconds=30)
    assert claimed is not None
    assert (claimed.pk, claimed.status, claimed.lease_owner) == (run.pk, "running", "runner-a")
    assert runs.run_claim("runner-b", lease_seconds=30) is None, "held by runner-a"
    assert runs.lease_renew(run.pk, "runner-a", 30) == "running"
    assert runs.lease_renew(run.pk, "runner-b", 30) is None
    # runner-a dies: its lease runs out, and runner-b takes the run over.
    EvaluationRun.objects.filter(pk=run.pk).update(
        lease_expires_at=timezone.now() - dt.timedelta(seconds=1)
    )
    taken = runs.run_claim("runner-b", lease_seconds=30)
    assert taken is not None
    assert (taken.lease_owner, taken.attempts) == ("runner-b", 2)
    assert runs.lease_renew(run.pk, "runner-a", 30) is None, "runner-a lost it"
    assert not runs.turn_store(run.pk, "runner-a", 0, {}, {})
    assert not runs.run_finish(run.pk, "runner-a", RunStatus.DONE)
    assert runs.run_finish(run.pk, "runner-b", RunStatus.DONE)


def test_the_plan_keeps_kept_transcripts_of_the_last_conversations_in_order(
    profile: AssistantProfile,
) -> None:
    conversation(profile, "old")
    conversation(profile, "first question", "second question")
    conversation(profile, "not kept", kept=False)
    run = runs.run_request(
        profile=profile, candidate_version=None, baseline_version=None, conversations=3
    )
    planned = runs.run_plan(run)
    assert [(t.group, t.position, t.user_text) for t in planned] == [
        (0, 0, "old"),
        (1, 1, "first question"),
        (1, 2, "second question"),
    ]
    assert runs.run_plan(run) == planned, "planned once"
    assert EvaluationRun.objects.get(pk=run.pk).turns_total == 3


class ScriptedReplay:
    """Stands in for ``replay_side_by_side``: answers each turn, recording what it was given."""

    def __init__(self, *, fail_at: int | None = None, error: Exception | None = None) -> None:
        self.calls: list[dict[str, Any]] = []
        self.recordings: list[list[bytes | None]] = []
        self.fail_at = fail_at
        self.error = error
        self.hook: Any = None

    async def __call__(self, **kwargs: Any) -> None:
        user_turns: Sequence[UserTurn] = kwargs["user_turns"]
        done = kwargs["done"]
        self.calls.append({"user_turns": [turn.text for turn in user_turns], "done": list(done)})
        self.recordings.append([turn.audio for turn in user_turns])
        for index in range(len(done), len(user_turns)):
            if self.fail_at is not None and index == self.fail_at:
                raise self.error or RuntimeError("boom")
            text = user_turns[index].text
            before = ReplayedAnswer(text=f"About {text}.", latency_ms=100, output_tokens=5)
            after = ReplayedAnswer(text=f"À propos de {text}.", latency_ms=120, output_tokens=7)
            await kwargs["on_turn"](index, before, after)
            if self.hook:
                await self.hook(index)


def set_run(profile: AssistantProfile) -> EvaluationRun:
    test_set = TestSet.objects.create(name="greetings", profile=profile)
    for position, text in enumerate(["Say hello.", "What time is it?", "Goodbye."]):
        TestTurn.objects.create(test_set=test_set, position=position, text=text)
    Check.objects.create(test_set=test_set, kind="phrase_appears", value="à propos")
    Check.objects.create(test_set=test_set, kind="tool_called", value="get_time", turn=2)
    return runs.run_request(
        profile=profile, candidate_version=None, baseline_version=None, test_set=test_set
    )


async def execute(run: EvaluationRun, owner: str = "runner-a", **kwargs: Any) -> str:
    return await runner.run_execute(run, owner=owner, lease_seconds=30, upstream=UPSTREAM, **kwargs)


async def test_a_run_replays_stores_each_turn_and_scores_the_checks(
    profile: AssistantProfile, monkeypatch: pytest.MonkeyPatch
) -> None:
    from asgiref.sync import sync_to_async

    run = await sync_to_async(set_run)(profile)
    replay = ScriptedReplay()
    monkeypatch.setattr(runner, "replay_side_by_side", replay)
    claimed = await sync_to_async(runs.run_claim)("runner-a", 30)
    assert claimed is not None
    assert await execute(claimed) == "done"
    done = await EvaluationRun.objects.aget(pk=run.pk)
    assert (done.status, done.turns_done, done.turns_total) == ("done", 3, 3)
    assert [c["candidate"]["passed"] for c in done.check_results] == [True, False]
    assert [c["baseline"]["passed"] for c in done.check_results] == [False, False]
    turns = [turn async for turn in RunTurn.objects.filter(run=run).order_by("position")]
    assert turns[0].candidate["text"] == "À propos de Say hello.."
    assert turns[0].baseline["estimated_cost"] == 0.0


async def test_a_run_resumes_after_its_last_stored_turn(
    profile: AssistantProfile, monkeypatch: pytest.MonkeyPatch
) -> None:
    from asgiref.sync import sync_to_async

    run = await sync_to_async(set_run)(profile)
    # The first runner dies after storing one turn (its process killed: nothing more written).
    dying = ScriptedReplay(fail_at=1, error=SystemExit())
    monkeypatch.setattr(runner, "replay_side_by_side", dying)
    claimed = await sync_to_async(runs.run_claim)("runner-a", 30)
    assert claimed is not None
    with pytest.raises(SystemExit):
        await execute(claimed)
    stalled = await EvaluationRun.objects.aget(pk=run.pk)
    assert (stalled.status, stalled.turns_done) == ("running", 1)
    await EvaluationRun.objects.filter(pk=run.pk).aupdate(
        lease_expires_at=timezone.now() - dt.timedelta(seconds=1)
    )
    replay = ScriptedReplay()
    monkeypatch.setattr(runner, "replay_side_by_side", replay)
    taken = await sync_to_async(runs.run_claim)("runner-b", 30)
    assert taken is not None
    assert await execute(taken, owner="runner-b") == "done"
    assert replay.calls == [
        {
            "user_turns": ["Say hello.", "What time is it?", "Goodbye."],
            "done": [
                (
                    ContextTurn("Say hello.", "About Say hello.."),
                    ContextTurn("Say hello.", "À propos de Say hello.."),
                )
            ],
        }
    ], "the stored turn is context, not replayed again"
    finished = await EvaluationRun.objects.aget(pk=run.pk)
    assert (finished.status, finished.turns_done, finished.attempts) == ("done", 3, 2)


async def test_cancel_stops_the_run_between_turns(
    profile: AssistantProfile, monkeypatch: pytest.MonkeyPatch
) -> None:
    from asgiref.sync import sync_to_async

    run = await sync_to_async(set_run)(profile)
    replay = ScriptedReplay()

    async def cancel_after_first(index: int) -> None:
        if index == 0:
            await sync_to_async(runs.run_cancel)(run.pk)

    replay.hook = cancel_after_first
    monkeypatch.setattr(runner, "replay_side_by_side", replay)
    claimed = await sync_to_async(runs.run_claim)("runner-a", 30)
    assert claimed is not None
    assert await execute(claimed) == "cancelled"
    cancelled = await EvaluationRun.objects.aget(pk=run.pk)
    # Cancelled while the second turn was replaying: that turn is kept, the third never runs.
    assert (cancelled.status, cancelled.turns_done) == ("cancelled", 2)
    assert cancelled.finished_at is not None


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ReplayError("the engine refused the replay: x: y"), RunError.ENGINE_ERROR),
        (TimeoutError(), RunError.TURN_TIMEOUT),
        (ValueError("a bug"), RunError.INTERNAL_ERROR),
    ],
)
async def test_every_failure_ends_the_run_with_a_stable_code(
    profile: AssistantProfile, monkeypatch: pytest.MonkeyPatch, error: Exception, code: str
) -> None:
    from asgiref.sync import sync_to_async

    run = await sync_to_async(set_run)(profile)
    monkeypatch.setattr(runner, "replay_side_by_side", ScriptedReplay(fail_at=0, error=error))
    claimed = await sync_to_async(runs.run_claim)("runner-a", 30)
    assert claimed is not None
    assert await execute(claimed) == "failed"
    failed = await EvaluationRun.objects.aget(pk=run.pk)
    assert (failed.status, failed.error_code) == ("failed", code)


async def test_nothing_to_replay_fails_the_run(profile: AssistantProfile) -> None:
    from asgiref.sync import sync_to_async

    run = await sync_to_async(runs.run_request)(
        profile=profile, candidate_version=None, baseline_version=None, conversations=5
    )
    claimed = await sync_to_async(runs.run_claim)("runner-a", 30)
    assert claimed is not None
    assert await execute(claimed) == "failed"
    failed = await EvaluationRun.objects.aget(pk=run.pk)
    assert failed.error_code == RunError.NOTHING_TO_REPLAY


def test_reports_follow_the_historys_retention_and_purge(profile: AssistantProfile) -> None:
    kept = conversation(profile, "a question")
    run = runs.run_request(
        profile=profile, candidate_version=None, baseline_version=None, conversations=1
    )
    runs.run_plan(run)
    answer = {"text": "x", "tool_calls": [], "latency_ms": 1, "input_tokens": 0}
    RunTurn.objects.filter(run=run).update(baseline=answer, candidate=answer)
    EvaluationRun.objects.filter(pk=run.pk).update(status=RunStatus.DONE)
    kept.delete()  # a user deletes a conversation: its replayed turns go with it
    assert not RunTurn.objects.filter(run=run).exists()
    old = timezone.now() - dt.timedelta(days=100)
    EvaluationRun.objects.filter(pk=run.pk).update(created_at=old)
    call_command("purge_history", "--days", "90")
    assert not EvaluationRun.objects.filter(pk=run.pk).exists()


def test_a_resumed_recorded_turn_gives_each_side_back_what_it_heard() -> None:
    row = RunTurn(
        user_text="capital of Italy (recording)",
        baseline={"text": "Rome.", "heard": "What is the capital of Italy?"},
        candidate={"text": "Roma.", "heard": "What is the capital of Italie?"},
    )
    assert runner._context(row) == (
        ContextTurn("What is the capital of Italy?", "Rome."),
        ContextTurn("What is the capital of Italie?", "Roma."),
    )
    text = RunTurn(user_text="Hello", baseline={"text": "Hi."}, candidate={"text": "Salut."})
    assert runner._context(text) == (ContextTurn("Hello", "Hi."), ContextTurn("Hello", "Salut."))


async def test_a_recorded_turn_goes_to_the_replay_as_audio(
    profile: AssistantProfile, monkeypatch: pytest.MonkeyPatch
) -> None:
    from asgiref.sync import sync_to_async

    recording = bytes(range(256)) * 40

    def recorded_set() -> EvaluationRun:
        run = set_run(profile)
        TestTurn.objects.filter(test_set=run.test_set, position=1).update(audio=recording)
        return run

    await sync_to_async(recorded_set)()
    replay = ScriptedReplay()
    monkeypatch.setattr(runner, "replay_side_by_side", replay)
    claimed = await sync_to_async(runs.run_claim)("runner-a", 30)
    assert claimed is not None
    assert await execute(claimed) == "done"
    assert replay.recordings == [[None, recording, None]]
    assert replay.calls[0]["user_turns"] == ["Say hello.", "What time is it?", "Goodbye."]
