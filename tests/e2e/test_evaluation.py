"""An evaluation from the admin, in real Chromium: Evaluate, the run's page, its report.

Staff with ``run_evaluation`` open a profile whose draft says "Always answer in French.",
press *Evaluate*, choose a test set with checks and start. The runner process (``manage.py
run_evaluations``, started here as ``make run`` starts it) replays the set on localvoice's
models; the run's page follows the progress by itself (its script polls, CSP allowing) and
shows the report: both answers side by side, the checks with the model-judged one labelled.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import STAFF_USERNAME
from tests.e2e.test_talk_page import Pages, log_in
from tests.support.processes import PYTHON, REPO
from tests.support.servers import DaphneServer, Database, daphne_env, manage

pytestmark = pytest.mark.e2e

DOCS = Path(__file__).resolve().parents[2] / "docs"

SETUP = f"""
from django.contrib.auth.models import Permission, User
from assistant.evaluation.models import Check, TestSet, TestTurn
from assistant.models import AssistantProfile
from assistant.models.versions import profile_snapshot
staff = User.objects.get(username={STAFF_USERNAME!r})
for codename in ("view_assistantprofile", "change_assistantprofile", "run_evaluation"):
    staff.user_permissions.add(Permission.objects.get(codename=codename))
profile = AssistantProfile.objects.get(is_default=True)
draft = profile_snapshot(profile) | {{"instructions": "Always answer in French."}}
AssistantProfile.objects.filter(pk=profile.pk).update(draft=draft)
test_set, _ = TestSet.objects.get_or_create(name="French answers", profile=profile)
TestTurn.objects.create(test_set=test_set, position=1, text="What is the capital of Italy?")
TestTurn.objects.create(test_set=test_set, position=2, text="Thank you, goodbye.")
Check.objects.create(test_set=test_set, kind="phrase_appears", value="la capitale", turn=1)
Check.objects.create(test_set=test_set, kind="judged", value="The assistant answers in French.")
Check.objects.create(test_set=test_set, kind="tool_not_called", value="end_conversation", turn=1)
# A price, so the report's cost estimates are not all zero (the ledger's prices).
from django.conf import settings
from assistant.history.models import ModelPrice
ModelPrice.objects.update_or_create(
    model=profile.model or settings.AZURE_VOICELIVE_MODEL,
    defaults={{"text_input": 4, "text_output": 16}},
)
print(profile.pk, test_set.pk)
"""


def screenshot(page: Any, tmp: Path, name: str, *, full_page: bool = False) -> None:
    """Take a screenshot; with E2E_UPDATE_SCREENSHOT set, it replaces ``docs/<name>``."""
    shot = tmp / name
    page.screenshot(path=str(shot), full_page=full_page)
    assert shot.stat().st_size > 1000
    if os.environ.get("E2E_UPDATE_SCREENSHOT"):
        shutil.copyfile(shot, DOCS / name)


@pytest.fixture(scope="module")
def evaluated(e2e_database: Database) -> tuple[int, int]:
    env = daphne_env(
        worker_name="setup", database_url=e2e_database.url, redis_url="", upstream_url=""
    )
    profile_id, set_id = manage(env, "shell", "-c", SETUP).strip().splitlines()[-1].split()
    return int(profile_id), int(set_id)


@pytest.fixture(scope="module")
def runner(
    e2e_database: Database, localvoice_models: str, e2e_logs: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """The evaluation runner, as the Procfile starts it; stopped by its own PID."""
    env = daphne_env(
        worker_name="runner",
        database_url=e2e_database.url,
        redis_url="",
        upstream_url=localvoice_models,
        extra={"VOICE_CONNECT_TIMEOUT": "10"},
    )
    log = (e2e_logs / "runner.log").open("wb")
    process = subprocess.Popen(
        [str(PYTHON), "manage.py", "run_evaluations", "--poll-seconds", "0.5"],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=100)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def test_staff_evaluate_a_draft_and_read_the_report(
    pages: Pages,
    daphne: DaphneServer,
    evaluated: tuple[int, int],
    runner: subprocess.Popen[bytes],
    e2e_logs: Path,
    tmp_path: Path,
) -> None:
    profile_id, set_id = evaluated
    page = pages.open("evaluation", viewport={"width": 1280, "height": 900})
    page.goto("/")
    log_in(page, STAFF_USERNAME)
    page.wait_for_url(lambda url: "/accounts/" not in url)

    page.goto(f"/admin/evaluation/testset/{set_id}/change/")
    assert "la capitale" in page.content()
    screenshot(page, tmp_path, "evaluation-test-set.png", full_page=True)

    page.goto(f"/admin/assistant/assistantprofile/{profile_id}/change/")
    page.click("#evaluate-link")
    page.check("input[name=source][value=test_set]")
    page.select_option("#id_test_set", str(set_id))
    assert page.input_value("#id_candidate") == "draft"
    screenshot(page, tmp_path, "evaluation-new.png")
    page.click("#evaluate-start")
    page.wait_for_url(lambda url: "/admin/evaluation/evaluationrun/" in url)
    assert page.locator("#run-state").get_attribute("data-active") == "1"
    page.wait_for_selector("#run-progress", state="visible")
    screenshot(page, tmp_path, "evaluation-progress.png")

    # The page follows the run by itself (its script polls and reloads), until the report.
    page.wait_for_selector('#run-state[data-active="0"]', timeout=400_000)
    status = page.inner_text("#run-status")
    assert status == "done", (status, (e2e_logs / "runner.log").read_text()[-3000:])
    turns = page.locator("#run-turns tbody tr")
    assert turns.count() == 2
    first = turns.nth(0).inner_text()
    assert "What is the capital of Italy?" in first
    checks = page.inner_text("#run-checks")
    assert "model-judged" in checks
    assert "la capitale" in checks
    assert page.locator("#run-summary").is_visible()
    screenshot(page, tmp_path, "evaluation-report.png", full_page=True)
    assert "e2e-user" not in page.content(), "no user names in reports"
