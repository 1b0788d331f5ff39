"""Tool calls on the talk page, in real Chromium: the user asks the time out loud, the local
engine calls the date-and-time tool, the page shows the call as a line of the conversation and
the spoken answer after it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import STAFF_USERNAME, WAV_RATE, launch_chromium
from tests.e2e.test_talk_page import log_in, logged, pages_on
from tests.support.audio import silence, speak, write_wav
from tests.support.servers import DaphneServer, Database, django_shell

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

TOOL_USER = "e2e-tools"
TOOL_PASSWORD = "e2e-tools-pw-7"
# A profile of its own with the clock, so the other e2e users keep the plain default profile.
SETUP = f"""
from django.contrib.auth import get_user_model
from assistant.models import AssistantProfile
from assistant.tools.models import Tool
user = get_user_model().objects.create_user({TOOL_USER!r}, "", {TOOL_PASSWORD!r})
profile = AssistantProfile.objects.create(
    name="Clock", instructions="You are a helpful voice assistant. Keep answers short."
)
profile.users.add(user)
Tool.objects.get(builtin="get_current_time").profiles.add(profile)
"""


@pytest.fixture(scope="module")
def tool_user(e2e_database: Database) -> str:
    django_shell(e2e_database.url, SETUP)
    return TOOL_USER


@pytest.fixture(scope="module")
def time_chromium(playwright_api: Any, e2e_logs: Path) -> Iterator[Any]:
    """Chromium whose fake microphone asks the time (Chromium loops the file)."""
    # Asked after 4 s (time for a monitor to attach), then once a minute: long enough for the
    # call and the answer before the loop asks again.
    question = speak("What time is it now?", WAV_RATE)
    pcm = silence(4000, WAV_RATE) + question + silence(60_000, WAV_RATE)
    wav = write_wav(e2e_logs / "what-time.wav", pcm, WAV_RATE)
    browser = launch_chromium(playwright_api, [f"--use-file-for-fake-audio-capture={wav}"])
    try:
        yield browser
    finally:
        browser.close()


def test_a_spoken_request_shows_the_tool_call_then_the_answer(
    time_chromium: Any, daphne: DaphneServer, tool_user: str
) -> None:
    """On the talk page, and on a staff member's live monitor of the session."""
    with pages_on(time_chromium, daphne) as pages:
        page = pages.open("tools")
        page.goto("/")
        log_in(page, tool_user, TOOL_PASSWORD)
        page.wait_for_url(lambda url: "/accounts/" not in url)
        page.click("#start")
        page.wait_for_function(
            "() => document.querySelector('#log-list').textContent.includes('session.ready')",
            timeout=30_000,
        )
        session_id = logged(page, "session.ready")[0]["session_id"]
        monitor = pages.open("monitor")
        log_in(monitor, STAFF_USERNAME)
        monitor.wait_for_url(lambda url: "/accounts/" not in url)
        monitor.goto(f"/monitor/{session_id}/")
        line = page.locator('#conversation .entry.tool[data-tool="get_current_time"]')
        line.wait_for(timeout=120_000)
        page.wait_for_selector(
            '#conversation .entry.tool[data-tool="get_current_time"][data-outcome="ok"]',
            timeout=60_000,
        )
        text = line.locator(".text").inner_text()
        assert text.startswith("get_current_time: done"), text
        assert "time_zone" in text  # the short summary of what the tool answered
        # The answer that uses it comes after the tool's line.
        page.wait_for_function(
            """() => {
                const entries = [...document.querySelectorAll('#conversation .entry')];
                const tool = entries.findIndex(e => e.classList.contains('tool'));
                return entries.slice(tool + 1).some(
                    e => e.classList.contains('assistant') && !e.classList.contains('partial')
                );
            }""",
            timeout=90_000,
        )
        assert line.locator(".who").text_content() == "Tool"
        monitor.wait_for_selector(
            '#conversation .entry.tool[data-tool="get_current_time"][data-outcome="ok"]',
            timeout=30_000,
        )
        page.click("#stop")
