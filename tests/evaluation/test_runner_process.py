"""The evaluation runner process for real: localvoice's models, a throwaway database, stored
conversations, and ``manage.py run_evaluations`` killed mid-run and started again.

A run of the draft ("Always answer in French.") against version 1 over the profile's last two
stored conversations is queued as the admin queues it. The first runner is SIGKILLed once a
turn is stored; a second one takes the run over when the lease expires, resumes after the
stored turn and finishes it: every turn once, the answers changed, the run done.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.processes import PYTHON, REPO
from tests.support.servers import manage, wait_until
from tests.support.talking import model_database

pytestmark = [pytest.mark.integration, pytest.mark.models]

CONVERSATIONS = [
    ["What is the capital of Italy?", "And of Spain?"],
    ["What colour is the sky on a clear day?"],
]

SETUP = f"""
from django.contrib.auth.models import User
from django.utils import timezone
from assistant.evaluation.runs import run_request
from assistant.history.models import Conversation, Turn
from assistant.models import AssistantProfile
from assistant.models.versions import profile_snapshot
user = User.objects.create_user("replayed-user", first_name="Secretname")
profile = AssistantProfile.objects.get(is_default=True)
for texts in {CONVERSATIONS!r}:
    conversation = Conversation.objects.create(
        user=user, profile=profile, profile_name=profile.name
    )
    for seq, text in enumerate(texts):
        Turn.objects.create(conversation=conversation, seq=2 * seq, role="user", text=text,
                            started_at=timezone.now())
draft = profile_snapshot(profile) | {{"instructions": "Always answer in French, only in French."}}
AssistantProfile.objects.filter(pk=profile.pk).update(draft=draft)
profile.refresh_from_db()
run = run_request(profile=profile, candidate_version=None, baseline_version=None, conversations=2)
print(run.pk)
"""

RUN_STATE = """
import json
from assistant.evaluation.models import EvaluationRun
from assistant.evaluation.report import run_report
run = EvaluationRun.objects.get()
print(json.dumps({"status": run.status, "done": run.turns_done, "total": run.turns_total,
                  "attempts": run.attempts, "error": run.error_code, "report": run_report(run)}))
"""


@pytest.fixture(scope="module")
def environment(
    localvoice_models: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[dict[str, str], Path]]:
    logs = tmp_path_factory.mktemp("runner")
    with model_database("runner", logs, upstream_url=localvoice_models, setup=SETUP) as prepared:
        yield prepared.env, logs


def state(env: dict[str, str]) -> dict[str, Any]:
    return dict(json.loads(manage(env, "shell", "-c", RUN_STATE).strip().splitlines()[-1]))


def runner(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            str(PYTHON),
            "manage.py",
            "run_evaluations",
            "--lease-seconds",
            "6",
            "--poll-seconds",
            "0.5",
        ],
        cwd=REPO,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


def test_a_killed_runner_is_taken_over_and_the_run_resumes(
    environment: tuple[dict[str, str], Path],
) -> None:
    env, logs = environment
    first = runner(env, logs / "runner-1.log")
    try:
        wait_until(lambda: state(env)["done"] >= 1, timeout=300, interval=1, what="a turn stored")
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
    stalled = state(env)
    assert stalled["status"] == "running", stalled
    stored = stalled["done"]
    assert 1 <= stored < stalled["total"] == 3
    assert "niceness 10" in (logs / "runner-1.log").read_text()

    second = runner(env, logs / "runner-2.log")
    try:
        wait_until(
            lambda: state(env)["status"] in {"done", "failed"},
            timeout=400,
            interval=1,
            what="the run finished",
        )
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=30)
    finished = state(env)
    print((logs / "runner-2.log").read_text())
    assert (finished["status"], finished["error"]) == ("done", ""), finished
    assert (finished["done"], finished["attempts"]) == (3, 2), "taken over once, no turn twice"
    report = finished["report"]
    users = [turn["user"] for turn in report["turns"]]
    assert users == [text for texts in CONVERSATIONS for text in texts]
    for turn in report["turns"]:
        assert turn["baseline"]["text"], turn
        assert turn["candidate"]["text"], turn
    assert report["summary"]["answers_changed"] >= 1, "the draft's French changes answers"
    assert "Secretname" not in json.dumps(report)
    assert "replayed-user" not in json.dumps(report)
    assert second.returncode == 0, "SIGTERM stops the runner cleanly"
