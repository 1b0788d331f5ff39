"""My conversations in real Chromium: talk, find the transcript, continue it.

The fake microphone asks "What is the capital of France?" in a loop; the real models answer.
The conversation is then searched for on My conversations, opened, and continued: the talk
page says what was carried over, and the new session's upstream got it.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import PASSWORD
from tests.e2e.test_talk_page import Pages, log_in, logged, wait_for_states
from tests.support.servers import DaphneServer, Database, django_shell

pytestmark = pytest.mark.e2e

HISTORY_USER = "e2e-history"


@pytest.fixture(scope="module")
def history_user(e2e_database: Database) -> str:
    django_shell(
        e2e_database.url,
        "from django.contrib.auth.models import User; "
        f"User.objects.create_user({HISTORY_USER!r}, password={PASSWORD!r})",
    )
    return HISTORY_USER


def talk_once(page: Any) -> str:
    """Start, let the microphone's question be answered, stop; returns the answer's text."""
    page.click("#start")
    spoke = wait_for_states(page, ["listening", "processing", "assistant_speaking"], timeout=90)
    page.click("#mute")  # no further questions from the looping microphone
    wait_for_states(page, ["ready"], after=spoke, timeout=60)
    answer = logged(page, "transcript.assistant.done")[-1]["transcript"]
    page.click("#stop")
    page.wait_for_selector("#start:enabled", timeout=10_000)
    return str(answer)


def test_talk_then_find_the_transcript_and_continue_it(
    pages: Pages, daphne: DaphneServer, history_user: str
) -> None:
    page = pages.open("history")
    page.goto("/")
    log_in(page, history_user)
    page.wait_for_url(lambda url: "/accounts/" not in url)
    assert page.locator("#continue-latest").count() == 0, "nothing to continue yet"
    answer = talk_once(page)

    # My conversations: search the transcripts for what was asked (written within a flush).
    page.goto("/history/?q=capital")
    for _ in range(20):
        if page.locator("#history-list a").count():
            break
        page.wait_for_timeout(500)
        page.reload()
    page.locator("#history-list a").first.click()
    transcript = page.locator("#transcript")
    transcript.wait_for()
    assert "capital" in transcript.locator(".entry.user .text").first.inner_text().lower()
    # The looping microphone may have asked more than once: the answer the page showed is there.
    assert answer.strip() in transcript.locator(".entry.assistant .text").all_inner_texts()

    # Continue it: the talk page names it, Start carries its messages over.
    page.click("#continue")
    page.wait_for_url(lambda url: "resume=" in url)
    assert page.locator("#resume-notice").is_visible()
    page.click("#start")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#conversation .entry.note')]"
        ".some(e => /Continuing: \\d+ earlier messages? carried over/.test(e.textContent))",
        timeout=60_000,
    )
    resumed = logged(page, "conversation.resumed")
    assert resumed, "no conversation.resumed"
    assert resumed[0]["messages"] >= 2, resumed
    page.click("#stop")
    page.wait_for_selector("#start:enabled", timeout=10_000)

    # The talk page now offers to continue where the user left off.
    page.goto("/")
    assert page.locator("#continue-latest").is_visible()
    errors = [line for line in page.console_lines if line.startswith(("[error]", "[pageerror]"))]
    assert not errors, errors


QUOTA_USER = "e2e-quota"
OVER_QUOTA = f"""
import uuid
from django.contrib.auth.models import User
from assistant.history.models import UsageQuota, UsageRecord
user = User.objects.create_user({QUOTA_USER!r}, password={PASSWORD!r})
UsageQuota.objects.create(user=user, minutes_per_day=1, minutes_per_month=100)
UsageRecord.objects.create(
    user=user, session_id=uuid.uuid4(), model="gpt-realtime", audio_in_seconds=90
)
"""


def test_a_user_over_quota_sees_what_is_left_and_when_it_resets(
    pages: Pages, e2e_database: Database
) -> None:
    django_shell(e2e_database.url, OVER_QUOTA)
    page = pages.open("quota")
    page.goto("/")
    log_in(page, QUOTA_USER)
    page.wait_for_url(lambda url: "/accounts/" not in url)
    left = page.locator("#quota-left").inner_text()
    assert "0.0 minutes today" in left, left
    assert "98.5 minutes this month" in left, left
    page.click("#start")
    page.wait_for_selector("#state[data-state=error]", timeout=20_000)
    notice = page.locator("#notice").inner_text()
    assert "You have used up your conversation quota for now." in notice, notice
    assert "It resets on" in notice, notice
