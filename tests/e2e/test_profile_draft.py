"""Try this draft, in real Chromium: staff talk to a profile's unpublished draft.

The change form's "Try this draft" opens the talk page on the draft: it is marked as a draft,
the session starts, and its conversation is recorded as a draft of the published version. A
user without the right is refused the draft page.
"""

from __future__ import annotations

import os
import shutil
import uuid
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import STAFF_USERNAME
from tests.e2e.test_talk_page import Pages, log_in, logged, wait_for_states
from tests.support.servers import DaphneServer, Database, django_shell, wait_until

pytestmark = pytest.mark.e2e

# The docs' screenshots are refreshed only on request (make screenshots), as the talk page's.
DOCS = Path(__file__).resolve().parents[2] / "docs"


def screenshot(page: Any, tmp: Path, name: str) -> None:
    """Take a screenshot; with E2E_UPDATE_SCREENSHOT set, it replaces ``docs/<name>``."""
    shot = tmp / name
    page.screenshot(path=str(shot))
    assert shot.stat().st_size > 1000
    if os.environ.get("E2E_UPDATE_SCREENSHOT"):
        shutil.copyfile(shot, DOCS / name)


#: The staff user may edit profiles; the default profile gets a draft.
SETUP = f"""
from django.contrib.auth.models import Permission, User
from assistant.models import AssistantProfile
from assistant.models.versions import profile_snapshot
staff = User.objects.get(username={STAFF_USERNAME!r})
for codename in ("view_assistantprofile", "change_assistantprofile"):
    staff.user_permissions.add(Permission.objects.get(codename=codename))
profile = AssistantProfile.objects.get(is_default=True)
draft = profile_snapshot(profile) | {{"instructions": "Always answer in French."}}
AssistantProfile.objects.filter(pk=profile.pk).update(draft=draft)
print(profile.pk)
"""


@pytest.fixture(scope="module")
def draft_profile(e2e_database: Database) -> int:
    return int(django_shell(e2e_database.url, SETUP).strip().splitlines()[-1])


def test_staff_try_a_draft_from_the_change_form(
    pages: Pages,
    daphne: DaphneServer,
    e2e_database: Database,
    draft_profile: int,
    tmp_path: Path,
) -> None:
    page = pages.open("draft")
    page.goto("/")
    log_in(page, STAFF_USERNAME)
    page.wait_for_url(lambda url: "/accounts/" not in url)
    page.goto(f"/admin/assistant/assistantprofile/{draft_profile}/change/")
    assert page.locator("#draft-notice").is_visible()
    screenshot(page, tmp_path, "profile-versions-draft.png")
    page.click("#draft-diff-link")
    diff = page.locator("#diff-table")
    assert "Always answer in French." in diff.inner_text()
    screenshot(page, tmp_path, "profile-versions-diff.png")
    page.goto(f"/admin/assistant/assistantprofile/{draft_profile}/versions/")
    assert page.locator("#version-1").is_visible()
    screenshot(page, tmp_path, "profile-versions-list.png")
    page.goto(f"/admin/assistant/assistantprofile/{draft_profile}/change/")
    # The link opens a new tab; followed here in this one, which records the page's states.
    href = page.get_attribute("#try-draft-link", "href")
    assert href is not None
    assert "draft=1" in href
    talk = page
    talk.goto(href)
    marker = talk.locator("#draft-marker")
    assert marker.is_visible()
    assert "Draft" in marker.inner_text()

    talk.click("#start")
    wait_for_states(talk, ["listening"], timeout=60)
    ready = logged(talk, "session.ready")
    assert ready, "the session started"
    screenshot(talk, tmp_path, "profile-versions-try-draft.png")
    talk.click("#stop")
    talk.wait_for_selector("#start:enabled", timeout=10_000)

    session_id = ready[-1]["session_id"]
    wait_until(
        lambda: _conversation(e2e_database, session_id) is not None,
        timeout=15,
        what="the draft conversation written",
    )
    version, is_draft = _conversation(e2e_database, session_id) or ()
    assert bool(is_draft), "the conversation is marked as a draft"
    assert version == 1, "a draft of version 1"


def test_a_user_is_refused_the_draft_page(
    pages: Pages, daphne: DaphneServer, draft_profile: int
) -> None:
    page = pages.open("draft-refused")
    page.goto("/")
    log_in(page)
    page.wait_for_url(lambda url: "/accounts/" not in url)
    response = page.goto(f"/?profile={draft_profile}&draft=1")
    assert response is not None
    assert response.status == HTTPStatus.FORBIDDEN
    page.goto(f"/?profile={draft_profile}")
    assert page.locator("#draft-marker").count() == 0


def _conversation(database: Database, session_id: str) -> tuple[Any, ...] | None:
    value = uuid.UUID(session_id)
    rows = database.query(
        "SELECT profile_version, is_draft FROM assistant_conversation "
        "WHERE id = %s AND ended_at IS NOT NULL",
        (value.hex if database.kind == "sqlite" else value,),
    )
    return tuple(rows[0]) if rows else None
