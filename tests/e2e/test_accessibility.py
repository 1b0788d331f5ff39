"""An automated accessibility audit (axe-core) of every kind of page, in real Chromium.

axe-core is an npm devDependency pinned in package-lock.json (``make lint-js`` installs it with
npm ci, before ``make test`` runs pytest); it is read from node_modules and injected into each
page by the test only, never served to users. The context bypasses the CSP for that one
injected script (Playwright adds it inline). Every page must have no serious or critical
violation; minor and moderate ones are printed.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import PASSWORD, USERNAME, _daphne
from tests.support.servers import REPO, DaphneServer, Database, django_shell

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

AXE = REPO / "node_modules" / "axe-core" / "axe.min.js"
BLOCKING = {"serious", "critical"}
SUPERUSER = "e2e-a11y-admin"
SESSION_ID = uuid.UUID("00000000-0000-4000-8000-000000000014")

# A superuser, a past conversation of the e2e user, and a live-session row to monitor.
SEED = f"""
import datetime
from django.contrib.auth import get_user_model
from django.utils import timezone
from assistant.history.models import Conversation, Turn
from assistant.models import LiveSession
User = get_user_model()
User.objects.create_superuser({SUPERUSER!r}, "", {PASSWORD!r})
user = User.objects.get(username={USERNAME!r})
now = timezone.now()
talk = Conversation.objects.create(user=user, profile_name="Audit", ended_at=now)
Turn.objects.create(conversation=talk, seq=0, role="user", text="What is the capital of France?",
                    started_at=now)
Turn.objects.create(conversation=talk, seq=1, role="assistant", text="Paris.", started_at=now,
                    interrupted=True, heard_ms=400)
LiveSession.objects.create(id={str(SESSION_ID)!r}, user=user, worker="gone", channel_name="none",
                           last_seen=now - datetime.timedelta(days=1))
print(talk.pk)
"""

RUN_AXE = """async () => {
  const result = await axe.run(document, { resultTypes: ['violations'] });
  return result.violations.map((v) => ({
    id: v.id,
    impact: v.impact,
    help: v.help,
    nodes: v.nodes.slice(0, 5).map((n) => n.target.join(' ')),
  }));
}"""


@pytest.fixture(scope="module")
def a11y_daphne(
    e2e_database: Database, localvoice_echo: str, e2e_logs: Path
) -> Iterator[tuple[DaphneServer, str]]:
    """The app in front of ``localvoice --echo``, and the id of a seeded conversation."""
    conversation_id = django_shell(e2e_database.url, SEED).strip().splitlines()[-1]
    with _daphne("a11y", e2e_database, localvoice_echo, e2e_logs, {}) as server:
        yield server, conversation_id


def audit(page: Any) -> list[dict[str, Any]]:
    """axe-core's violations on the page as it stands."""
    page.add_script_tag(path=str(AXE))
    violations: list[dict[str, Any]] = page.evaluate(RUN_AXE)
    return violations


def log_in(page: Any, username: str) -> None:
    page.goto("/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/accounts/" not in url)


@pytest.mark.parametrize("locale", ["en-US", "fr-FR"])
def test_no_serious_or_critical_violations_on_any_page(
    chromium: Any, a11y_daphne: tuple[DaphneServer, str], locale: str
) -> None:
    """Login, talk, My conversations (list and one), the monitor, the custom admin pages."""
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run `make lint-js` (npm ci) first")
    server, conversation_id = a11y_daphne
    context = chromium.new_context(base_url=server.base_url, bypass_csp=True, locale=locale)
    context.set_default_timeout(15_000)
    page = context.new_page()
    found: dict[str, list[dict[str, Any]]] = {}
    try:
        page.goto("/accounts/login/")
        found["login"] = audit(page)
        page.fill("#id_username", "nobody")
        page.fill("#id_password", "not-the-password")
        page.click("button[type=submit]")
        page.wait_for_selector("#login-errors")
        found["login, wrong password"] = audit(page)

        log_in(page, USERNAME)
        found["talk"] = audit(page)
        page.locator("#audio-settings summary").click()
        page.locator("#event-log summary").click()
        found["talk, settings and log open"] = audit(page)
        page.goto("/history/")
        found["my conversations"] = audit(page)
        page.goto(f"/history/{conversation_id}/")
        found["a conversation"] = audit(page)
        page.goto("/history/delete/")
        found["delete all"] = audit(page)

        page.context.clear_cookies()
        log_in(page, SUPERUSER)
        page.goto(f"/monitor/{SESSION_ID}/")
        page.wait_for_function("() => document.getElementById('log-count').textContent !== '0'")
        found["monitor"] = audit(page)
        page.goto("/admin/history/usagerecord/dashboard/")
        found["admin usage dashboard"] = audit(page)
        page.goto("/admin/assistant/livesession/")
        found["admin live sessions"] = audit(page)
    finally:
        context.close()

    counts: dict[str, int] = {}
    for name, violations in found.items():
        for v in violations:
            counts[v["impact"]] = counts.get(v["impact"], 0) + 1
            print(f"{locale} {name}: [{v['impact']}] {v['id']} ({v['help']}) {v['nodes']}")
    print(f"{locale}: violations by impact: {counts or 'none'}")
    blocking = {
        name: [v for v in violations if v["impact"] in BLOCKING]
        for name, violations in found.items()
    }
    assert not any(blocking.values()), {k: v for k, v in blocking.items() if v}
