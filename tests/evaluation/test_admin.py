"""The evaluation admin: the permission, Evaluate, one run per profile, the run page, Cancel."""

from __future__ import annotations

import datetime as dt
import json
from http import HTTPStatus

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse
from django.utils import timezone, translation

from assistant.evaluation.models import EvaluationRun, RunStatus, RunTurn, TestSet, TestTurn
from assistant.evaluation.runs import run_plan, run_request
from assistant.models import AssistantProfile

pytestmark = pytest.mark.django_db


def staff(*codenames: str) -> Client:
    user = User.objects.create_user("staffer", password="pw", is_staff=True)
    for codename in codenames:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def profile() -> AssistantProfile:
    return AssistantProfile.objects.get(is_default=True)


def answer(text: str, *tools: str) -> dict[str, object]:
    return {
        "text": text,
        "tool_calls": [{"name": name, "arguments": {"id": 1}} for name in tools],
        "latency_ms": 300,
        "input_tokens": 10,
        "output_tokens": 5,
        "estimated_cost": 0.0001,
    }


def test_every_page_needs_the_permission(profile: AssistantProfile) -> None:
    client = staff("view_assistantprofile", "change_assistantprofile")
    run = run_request(
        profile=profile, candidate_version=None, baseline_version=None, conversations=1
    )
    for url in (
        reverse("admin:evaluation_evaluationrun_new", args=[profile.pk]),
        reverse("admin:evaluation_evaluationrun_change", args=[run.pk]),
        reverse("admin:evaluation_evaluationrun_progress", args=[run.pk]),
        reverse("admin:evaluation_evaluationrun_json", args=[run.pk]),
        reverse("admin:evaluation_testset_changelist"),
    ):
        assert client.get(url).status_code == HTTPStatus.FORBIDDEN, url
    cancel = reverse("admin:evaluation_evaluationrun_cancel", args=[run.pk])
    assert client.post(cancel).status_code == HTTPStatus.FORBIDDEN
    page = client.get(reverse("admin:assistant_assistantprofile_change", args=[profile.pk]))
    assert b'id="evaluate-link"' not in page.content


def test_evaluate_queues_one_run_per_profile(profile: AssistantProfile) -> None:
    client = staff("view_assistantprofile", "change_assistantprofile", "run_evaluation")
    page = client.get(reverse("admin:assistant_assistantprofile_change", args=[profile.pk]))
    assert b'id="evaluate-link"' in page.content
    url = reverse("admin:evaluation_evaluationrun_new", args=[profile.pk])
    assert client.get(url).status_code == HTTPStatus.OK
    form = {"candidate": "draft", "baseline": "1", "source": "conversations", "conversations": "4"}
    response = client.post(url, form)
    run = EvaluationRun.objects.get()
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == reverse("admin:evaluation_evaluationrun_change", args=[run.pk])
    assert (run.candidate_version, run.baseline_version, run.conversations) == (None, 1, 4)
    again = client.post(url, form)
    assert again.status_code == HTTPStatus.CONFLICT
    assert b"already has an evaluation queued or running" in again.content
    assert EvaluationRun.objects.count() == 1
    missing_set = client.post(url, form | {"source": "test_set"})
    assert b"Choose a test set." in missing_set.content


def test_the_run_page_shows_progress_then_the_report(profile: AssistantProfile) -> None:
    client = staff("run_evaluation")
    test_set = TestSet.objects.create(name="orders")
    for position, text in enumerate(["Where is order 1?", "Thanks."]):
        TestTurn.objects.create(test_set=test_set, position=position, text=text)
    run = run_request(
        profile=profile, candidate_version=None, baseline_version=None, test_set=test_set
    )
    url = reverse("admin:evaluation_evaluationrun_change", args=[run.pk])
    queued = client.get(url)
    assert b'data-active="1"' in queued.content
    assert b"Waiting for the evaluation runner" in queued.content
    assert b"0 of 0 turns" not in queued.content
    assert b"admin-evaluation.js" in queued.content
    assert b'id="run-cancel"' in queued.content
    progress = client.get(reverse("admin:evaluation_evaluationrun_progress", args=[run.pk]))
    assert progress.json() | {"status_text": ""} == {
        "status": "queued",
        "status_text": "",
        "active": True,
        "done": 0,
        "total": 0,
        "error_code": "",
        "runner_state": "waiting",
    }
    run_plan(run)
    RunTurn.objects.filter(run=run, position=0).update(
        baseline=answer("Order 1 has shipped.", "get_order_status"),
        candidate=answer("La commande 1 est partie.", "get_order_status", "send_mail"),
    )
    RunTurn.objects.filter(run=run, position=1).update(
        baseline=answer("You're welcome."), candidate=answer("")
    )
    EvaluationRun.objects.filter(pk=run.pk).update(
        status=RunStatus.DONE,
        turns_done=2,
        check_results=[
            {
                "kind": "judged",
                "value": "The answers are in French.",
                "turn": None,
                "judged": True,
                "label": "model-judged",
                "baseline": {"passed": False, "detail": "the model says no"},
                "candidate": {"passed": True, "detail": "the model says yes"},
            }
        ],
    )
    page = client.get(url).content.decode()
    assert 'data-active="0"' in page
    assert "La commande 1 est partie." in page
    assert "model-judged" in page
    assert page.count('class="differs"') == 1, "only send_mail differs"
    assert "(empty answer)" in page
    data = json.loads(
        client.get(reverse("admin:evaluation_evaluationrun_json", args=[run.pk])).content
    )
    assert set(data) >= {"profile", "baseline", "candidate", "turns", "summary", "checks"}
    assert data["summary"]["candidate"]["empty_answers"] == 1
    assert data["summary"]["tool_calls_changed"] == 1
    assert data["candidate"]["description"] == "draft (of version 1)"


def test_cancel_a_queued_run(profile: AssistantProfile) -> None:
    client = staff("run_evaluation")
    run = run_request(
        profile=profile, candidate_version=None, baseline_version=None, conversations=1
    )
    response = client.post(reverse("admin:evaluation_evaluationrun_cancel", args=[run.pk]))
    assert response.status_code == HTTPStatus.FOUND
    assert EvaluationRun.objects.get().status == RunStatus.CANCELLED


def test_test_sets_with_turns_and_checks(profile: AssistantProfile) -> None:
    client = staff("run_evaluation")
    response = client.post(
        reverse("admin:evaluation_testset_add"),
        {
            "name": "hours",
            "profile": profile.pk,
            "description": "",
            "turns-TOTAL_FORMS": "1",
            "turns-INITIAL_FORMS": "0",
            "turns-0-position": "1",
            "turns-0-text": "When do you open?",
            "checks-TOTAL_FORMS": "1",
            "checks-INITIAL_FORMS": "0",
            "checks-0-kind": "phrase_appears",
            "checks-0-value": "nine",
            "checks-0-turn": "1",
        },
    )
    assert response.status_code == HTTPStatus.FOUND, response.content.decode()[:2000]
    test_set = TestSet.objects.get(name="hours")
    assert [turn.text for turn in test_set.replayed_turns()] == ["When do you open?"]
    assert [(c.kind, c.value, c.turn) for c in test_set.checks.all()] == [
        ("phrase_appears", "nine", 1)
    ]


def test_a_queued_run_waits_for_a_runner_and_says_when_none_seems_to_run(
    profile: AssistantProfile,
) -> None:
    client = staff("run_evaluation")
    run = run_request(
        profile=profile, candidate_version=None, baseline_version=None, conversations=1
    )
    url = reverse("admin:evaluation_evaluationrun_change", args=[run.pk])
    progress = reverse("admin:evaluation_evaluationrun_progress", args=[run.pk])
    waiting = client.get(url).content.decode()
    assert "Waiting for the evaluation runner…" in waiting
    assert 'id="run-runner-missing"' not in waiting

    # Queued for over a minute, and no runner holds any run: none seems to be running.
    EvaluationRun.objects.filter(pk=run.pk).update(
        created_at=timezone.now() - dt.timedelta(seconds=61)
    )
    assert client.get(progress).json()["runner_state"] == "missing"
    missing = client.get(url).content.decode()
    assert 'id="run-runner-missing"' in missing
    assert "manage.py run_evaluations" in missing
    assert 'data-runner-state="missing"' in missing, "the page reloads when that changes"
    with translation.override("fr"):
        french = client.get(url, HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert "manage.py run_evaluations" in french
    assert "Waiting for the evaluation runner" not in french

    # A runner busy with another profile's run: this one waits its turn, nothing is missing.
    other = AssistantProfile.objects.create(name="Other")
    busy = EvaluationRun.objects.create(
        profile=other,
        baseline_version=1,
        source="conversations",
        conversations=1,
        status=RunStatus.RUNNING,
        lease_owner="runner-a",
        lease_expires_at=timezone.now() + dt.timedelta(seconds=30),
    )
    assert client.get(progress).json()["runner_state"] == "busy"
    assert 'id="run-runner-busy"' in client.get(url).content.decode()

    # Claimed: the progress shows again.
    EvaluationRun.objects.filter(pk=busy.pk).update(status=RunStatus.DONE)
    EvaluationRun.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING, turns_total=2)
    running = client.get(url).content.decode()
    assert "0 of 2 turns" in running
    assert "Waiting for the evaluation runner" not in running
    assert client.get(progress).json()["runner_state"] == ""
