"""Content-Security-Policy and Permissions-Policy (issue 9.8), in real Chromium.

Every page is loaded under the enforced policy with a ``securitypolicyviolation`` listener
installed first: the talk page streams the fake microphone to ``localvoice --echo`` and plays
the echo (both AudioWorklets, the websocket), the monitor page follows that session and plays
its audio, and the Django admin's pages (including the change form's JavaScript widgets) work.
No violation may be reported anywhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import PASSWORD, STAFF_USERNAME, USERNAME, _daphne
from tests.e2e.test_talk_page import logged
from tests.support.servers import DaphneServer, Database, django_shell

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

SUPERUSER = "e2e-csp-admin"

RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__csp.push(`${e.effectiveDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`);
});
"""


@pytest.fixture(scope="module")
def echo_daphne(
    e2e_database: Database, localvoice_echo: str, e2e_logs: Path
) -> Iterator[DaphneServer]:
    """The app in front of ``localvoice --echo`` (what is tested here is the page, not the AI)."""
    django_shell(
        e2e_database.url,
        "from django.contrib.auth import get_user_model; "
        f"get_user_model().objects.create_superuser({SUPERUSER!r}, '', {PASSWORD!r})",
    )
    extra = {"VOICE_MONITOR_AUDIO": "1", "ASSISTANT_LOG_LEVEL": "INFO"}
    with _daphne("csp", e2e_database, localvoice_echo, e2e_logs, extra) as server:
        yield server


@pytest.fixture
def open_page(chromium: Any, echo_daphne: DaphneServer) -> Iterator[Any]:
    contexts: list[Any] = []

    def open_one() -> Any:
        context = chromium.new_context(base_url=echo_daphne.base_url)
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        console: list[str] = []
        page.on("console", lambda msg: console.append(f"[{msg.type}] {msg.text}"))
        page.on("pageerror", lambda exc: console.append(f"[pageerror] {exc}"))
        page.on(
            "response",
            lambda r: console.append(f"[http {r.status}] {r.url}") if r.status >= 400 else None,
        )
        page.add_init_script(RECORD_VIOLATIONS)
        page.console_lines = console
        return page

    yield open_one
    for context in contexts:
        context.close()


def log_in(page: Any, username: str) -> None:
    page.goto("/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/accounts/" not in url)


def assert_clean(page: Any) -> None:
    """No CSP violation and no error on the page."""
    violations = page.evaluate("window.__csp")
    assert violations == [], violations
    refused = [line for line in page.console_lines if "Content Security Policy" in line]
    assert refused == [], refused
    # The admin has no favicon link, so Chromium asks for /favicon.ico (404): not our concern.
    failed = [line for line in page.console_lines if line.startswith("[http ")]
    assert all(line.endswith("/favicon.ico") for line in failed), failed
    errors = [
        line
        for line in page.console_lines
        if line.startswith("[pageerror]")
        or (line.startswith("[error]") and "Failed to load resource" not in line)
    ]
    assert errors == [], errors


def test_headers_of_each_kind_of_page(open_page: Any, echo_daphne: DaphneServer) -> None:
    page = open_page()
    login = page.goto("/accounts/login/")
    csp = login.headers["content-security-policy"]
    assert "script-src 'self';" in csp
    assert "style-src 'self';" in csp
    assert "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert f"ws://127.0.0.1:{echo_daphne.port}" in csp
    assert login.headers["permissions-policy"].startswith("microphone=()")
    log_in(page, USERNAME)
    talk = page.goto("/")
    assert talk.headers["permissions-policy"].startswith("microphone=(self)")
    assert "unsafe-inline" not in talk.headers["content-security-policy"]
    admin = page.goto("/admin/login/")
    admin_csp = admin.headers["content-security-policy"]
    # The admin writes inline styles; its scripts are files, so scripts stay 'self' there.
    assert "style-src 'self' 'unsafe-inline'" in admin_csp
    assert "script-src 'self';" in admin_csp
    assert admin.headers["permissions-policy"].startswith("microphone=()")


def test_talk_and_monitor_pages_work_under_the_policy(open_page: Any) -> None:
    talk = open_page()
    log_in(talk, USERNAME)
    talk.click("#start")
    talk.wait_for_function(
        "() => document.querySelector('#log-list').textContent.includes('session.ready')",
        timeout=30_000,
    )
    # The fake microphone's audio comes back from the echo upstream and is played.
    talk.wait_for_function(
        "() => document.querySelector('#log-list').textContent.includes('audio.start')",
        timeout=30_000,
    )
    session_id = logged(talk, "session.ready")[0]["session_id"]

    monitor = open_page()
    log_in(monitor, STAFF_USERNAME)
    response = monitor.goto(f"/monitor/{session_id}/")
    assert response.headers["permissions-policy"].startswith("microphone=()")
    monitor.wait_for_function(
        "() => document.getElementById('monitor-user').textContent === 'e2e-user'"
    )
    monitor.click("#listen")  # an AudioContext and the player worklet, under the policy
    monitor.wait_for_selector("#mute-user:not([disabled])")
    talk.click("#stop")
    monitor.wait_for_selector("#state[data-state=stopped]", timeout=10_000)
    assert_clean(talk)
    assert_clean(monitor)


def test_admin_pages_work_under_the_policy(open_page: Any) -> None:
    page = open_page()
    log_in(page, SUPERUSER)
    page.goto("/admin/")
    page.wait_for_selector("#content-main")
    page.goto("/admin/assistant/assistantprofile/")
    page.click("#result_list tbody tr a")
    # filter_horizontal: the admin's SelectFilter2.js builds the two-box widget.
    page.wait_for_selector(".selector-available", timeout=10_000)
    page.click("input[name=_continue]")
    page.wait_for_selector(".messagelist .success")
    page.goto("/admin/assistant/livesession/")
    page.wait_for_selector("#content-main")
    page.goto("/admin/auth/user/")
    page.click("#result_list tbody tr a")
    page.wait_for_selector("#id_user_permissions_from", timeout=10_000)  # SelectFilter again
    assert_clean(page)
