"""Issue 14's talk modes in a real browser: push-to-talk, a greeting, idle handling.

Real Chromium, Daphne, the real SDK and localvoice with its models. Each test logs in as a user
of its own, assigned a profile of its own, so the other e2e tests keep the site default.
Push-to-talk uses the shared browser, whose fake microphone loops the spoken question; the
greeting and idle tests use a browser whose fake microphone is silent, so that anything the
assistant says, it says unprompted.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import PASSWORD, WAV_RATE, launch_chromium
from tests.e2e.test_talk_for_everyone import keep_screenshot
from tests.e2e.test_talk_page import Pages, log_in, logged, pages_on, states, wait_for_states
from tests.support.audio import silence, write_wav
from tests.support.servers import REPO, DaphneServer, Database, django_shell

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

# Profiles and users of these tests (the users' first names reach the greeting).
SETUP = f"""
from django.contrib.auth.models import User
from assistant.models import AssistantProfile
def user(name, first=""):
    return User.objects.create_user(name, password={PASSWORD!r}, first_name=first)
brief = "Answer in one short sentence."
AssistantProfile.objects.create(
    name="Hold to talk", instructions=brief, voice="alloy",
    turn_mode="push_to_talk", allow_turn_mode_switch=True, speakerphone_default=True,
).users.add(user("e2e-ptt"))
AssistantProfile.objects.create(
    name="Greeter", instructions=brief, voice="alloy",
    greeting_mode="fixed", greeting_text="Hello {{first_name}}, nice to hear you.",
).users.add(user("e2e-greet", "Gwen"))
AssistantProfile.objects.create(
    name="Patient", instructions=brief, voice="alloy",
    idle_check_in_seconds=3, idle_end_seconds=3,
).users.add(user("e2e-idle"))
"""
# E2E_UPDATE_SCREENSHOT=1 (make screenshots) refreshes it: the page while the user holds Talk.
PUSH_TO_TALK_SCREENSHOT = REPO / "docs" / "talk-page-push-to-talk.png"
ENTRIES = "() => [...document.querySelectorAll('#conversation .entry.{role}:not(.partial) .text')]"
SAID = ENTRIES.format(role="assistant") + ".some(e => e.textContent.trim().length > 3)"


@pytest.fixture(scope="module")
def talk_mode_users(e2e_database: Database) -> None:
    django_shell(e2e_database.url, SETUP)


@pytest.fixture(scope="module")
def quiet_chromium(playwright_api: Any, e2e_logs: Path) -> Iterator[Any]:
    """Chromium whose fake microphone plays silence."""
    wav = e2e_logs / "silence.wav"
    write_wav(wav, silence(4000, WAV_RATE), WAV_RATE)
    browser = launch_chromium(playwright_api, [f"--use-file-for-fake-audio-capture={wav}"])
    try:
        yield browser
    finally:
        browser.close()


def logged_in(page: Any, username: str) -> None:
    log_in(page, username, PASSWORD)
    page.wait_for_url(lambda url: "/accounts/" not in url)


def no_errors(page: Any) -> None:
    errors = [line for line in page.console_lines if line.startswith(("[error]", "[pageerror]"))]
    assert not errors, errors
    assert "error" not in states(page), (states(page), page.locator("#notice").inner_text())


@pytest.mark.usefixtures("talk_mode_users")
def test_push_to_talk_hold_speak_release_then_interrupt(pages: Pages, e2e_logs: Path) -> None:
    """Hold the Talk button over the spoken question, release: a reply. Then hold the space bar
    while the assistant speaks: it stops (playback cleared, what was heard reported)."""
    page = pages.open("ptt")
    logged_in(page, "e2e-ptt")
    talk = page.locator("#talk-button")
    # Before Start the page already follows the profile: the button, the switch, speakerphone.
    assert talk.is_visible()
    assert talk.is_disabled()
    assert page.locator("#turn-mode").is_checked()
    assert page.locator("#speakerphone").is_checked()

    page.click("#start")
    page.wait_for_selector("#talk-button:enabled", timeout=30_000)
    assert "hold Talk" in page.locator("#state-label").inner_text()
    assert logged(page, "turn_mode")[0]["mode"] == "push_to_talk"
    # Not held: the looping question is not heard at all.
    page.wait_for_timeout(5000)
    assert "listening" not in states(page)

    box = talk.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    held = wait_for_states(page, ["listening"], timeout=10)
    assert talk.get_attribute("aria-pressed") == "true"
    page.wait_for_timeout(5500)  # the question plays at least once, whole, while held
    page.mouse.up()
    assert talk.get_attribute("aria-pressed") == "false"
    spoke = wait_for_states(page, ["processing", "assistant_speaking"], after=held, timeout=90)
    page.wait_for_function(
        ENTRIES.format(role="user") + ".some(e => /capital|france/i.test(e.textContent))",
        timeout=30_000,
    )
    assert [m["type"] for m in logged(page, "input.press")] == ["input.press"]
    assert logged(page, "input.release")
    assert not logged(page, "speech.started")  # the button ended the turn, not the VAD

    # Interrupt with the space bar (the focus is on the page, not on a control).
    page.evaluate("document.activeElement.blur()")
    page.keyboard.down("Space")
    wait_for_states(page, ["listening"], after=spoke, timeout=10)
    page.wait_for_function(
        """() => [...document.querySelectorAll('#log-list .log-in code')]
            .some(c => c.textContent.includes('"playback.clear"'))""",
        timeout=10_000,
    )
    page.wait_for_timeout(5500)
    page.evaluate("window.scrollTo(0, 0)")
    keep_screenshot(page, e2e_logs / "talk-page-push-to-talk.png", PUSH_TO_TALK_SCREENSHOT)
    page.keyboard.up("Space")
    assert len(logged(page, "input.press")) == 2
    answered = wait_for_states(page, ["processing", "ready"], after=spoke, timeout=90)

    # The profile lets the user switch: back to voice activity, the looping question is heard.
    page.click("#turn-mode")
    page.wait_for_selector("#talk-button", state="hidden", timeout=10_000)
    assert [m["mode"] for m in logged(page, "turn_mode")][-1] == "voice_activity"
    wait_for_states(page, ["listening"], after=answered, timeout=30)
    assert logged(page, "speech.started")
    no_errors(page)
    page.click("#stop")
    page.wait_for_selector("#state[data-state=stopped]", timeout=10_000)


@pytest.mark.usefixtures("talk_mode_users")
def test_push_to_talk_pings_between_turns(quiet_chromium: Any, daphne: DaphneServer) -> None:
    """No audio flows between push-to-talk turns: a ping a minute keeps the hard idle timeout
    from taking the open page for a dead one (the page's clock is Playwright's)."""
    with pages_on(quiet_chromium, daphne) as opened:
        page = opened.open("ptt-keepalive")
        page.clock.install()
        logged_in(page, "e2e-ptt")
        page.click("#start")
        page.wait_for_selector("#talk-button:enabled", timeout=30_000)
        assert not logged(page, "ping")
        page.clock.run_for("01:01")
        page.wait_for_function(
            """() => [...document.querySelectorAll('#log-list .log-out code')]
                .some(c => c.textContent.includes('"ping"'))""",
            timeout=10_000,
        )
        page.wait_for_function(
            """() => [...document.querySelectorAll('#log-list .log-in code')]
                .some(c => c.textContent.includes('"pong"'))""",
            timeout=10_000,
        )
        no_errors(page)


@pytest.mark.usefixtures("talk_mode_users")
def test_the_assistant_greets_before_anyone_speaks(
    quiet_chromium: Any, daphne: DaphneServer
) -> None:
    with pages_on(quiet_chromium, daphne) as opened:
        page = opened.open("greet")
        logged_in(page, "e2e-greet")
        page.click("#start")
        page.wait_for_function(
            ENTRIES.format(role="assistant") + ".some(e => /Hello Gwen/.test(e.textContent))",
            timeout=90_000,
        )
        assert logged(page, "audio.start"), "no assistant audio"
        assert not logged(page, "speech.started")  # the user never said anything
        assert not [m for m in logged(page, "text.send")]
        said = page.locator("#conversation .entry.assistant .text").first.inner_text()
        assert said.strip() == "Hello Gwen, nice to hear you."
        no_errors(page)
        page.click("#stop")
        page.wait_for_selector("#state[data-state=stopped]", timeout=10_000)


@pytest.mark.usefixtures("talk_mode_users")
def test_idle_check_in_then_the_session_ends_with_a_reason(
    quiet_chromium: Any, daphne: DaphneServer
) -> None:
    with pages_on(quiet_chromium, daphne) as opened:
        page = opened.open("idle")
        logged_in(page, "e2e-idle")
        page.click("#start")
        page.wait_for_selector("#state[data-state=ready]", timeout=30_000)
        page.wait_for_function(SAID, timeout=90_000)  # "are you still there?"
        page.wait_for_selector("#state[data-state=stopped]", timeout=90_000)
        notice = page.locator("#notice")
        assert "nobody spoke" in notice.inner_text(), notice.inner_text()
        assert notice.get_attribute("data-kind") == "info"
        assert [m["code"] for m in logged(page, "error")] == ["idle_ended"]
        assert len(logged(page, "response.done")) == 1  # one check-in only
        page.wait_for_selector("#start:enabled", timeout=5_000)
        no_errors(page)
