"""Turn timings over the real path: Chromium's fake microphone, Daphne, the SDK, localvoice.

One spoken turn is answered by the real models; then the worker's ``voice_turn_latency_seconds``
has observed it (per profile, with its parts and the played latency the page reported), the
reply's turn row carries its timings, and the session timeline shows them to staff in Chromium
while a user who is not staff is sent to the admin's login.
"""

from __future__ import annotations

import re
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import PASSWORD, launch_chromium, make_speech_wav
from tests.e2e.test_history_flow import talk_once
from tests.e2e.test_talk_page import Pages, log_in, logged
from tests.support.localvoice import LocalVoiceProcess
from tests.support.servers import DaphneServer, Database, django_shell

pytestmark = pytest.mark.e2e

TIMING_USER = "e2e-timing"
OPS_USER = "e2e-timing-ops"
TIMING_COLUMNS = "latency_ms, eot_ms, transcription_ms, tool_ms, first_audio_ms, played_latency_ms"


@pytest.fixture(scope="module")
def timing_users(e2e_database: Database) -> None:
    django_shell(
        e2e_database.url,
        "from django.contrib.auth.models import Permission, User; "
        f"User.objects.create_user({TIMING_USER!r}, password={PASSWORD!r}); "
        f"ops = User.objects.create_user({OPS_USER!r}, password={PASSWORD!r}, is_staff=True); "
        "ops.user_permissions.add(*Permission.objects.filter("
        "codename__in=['view_usagerecord', 'view_conversation']))",
    )


@pytest.fixture(scope="module")
def one_question_pages(
    playwright_api: Any,
    speech_wav: Path,
    daphne: DaphneServer,
    localvoice_models_process: LocalVoiceProcess,
) -> Iterator[Pages]:
    """Pages whose fake microphone asks its question once (no loop to talk over the reply).

    A busy machine may take longer to answer than the looping WAV stays silent; asked once,
    the reply is heard whatever the load.
    """
    wav = make_speech_wav(speech_wav.with_name("question-once.wav"))
    browser = launch_chromium(playwright_api, [f"--use-file-for-fake-audio-capture={wav}%noloop"])
    opened = Pages(browser, daphne.base_url)
    try:
        yield opened
    finally:
        opened.report(Path(daphne.log_path).parent)
        opened.close()
        browser.close()


def timed_replies(database: Database, conversation_id: str) -> list[tuple[Any, ...]]:
    key: Any = uuid.UUID(conversation_id)
    if database.kind == "sqlite":
        key = key.hex
    return database.query(
        f"SELECT {TIMING_COLUMNS} FROM assistant_turn "
        "WHERE conversation_id = %s AND role = 'assistant' AND latency_ms IS NOT NULL",
        (key,),
    )


def metric(text: str, name: str) -> dict[str, float]:
    """Every sample of ``name`` in a Prometheus text page, by its label string."""
    pattern = re.compile(rf"^{re.escape(name)}(\{{[^}}]*\}})? (\S+)$", re.MULTILINE)
    return {labels or "": float(value) for labels, value in pattern.findall(text)}


def test_a_spoken_turn_is_timed_counted_and_shown_on_the_timeline(
    one_question_pages: Pages, daphne: DaphneServer, e2e_database: Database, timing_users: None
) -> None:
    pages = one_question_pages
    page = pages.open("timing")
    page.goto("/")
    log_in(page, TIMING_USER)
    page.wait_for_url(lambda url: "/accounts/" not in url)
    talk_once(page)
    session_id = logged(page, "session.ready")[-1]["session_id"]
    # The page reported when it began playing the reply (a measurement message).
    assert logged(page, "playback.started"), "the page reports playback starts"

    # The history: the reply carries its timings once the call's end is written.
    deadline = time.monotonic() + 20
    while not (rows := timed_replies(e2e_database, session_id)) and time.monotonic() < deadline:
        time.sleep(0.25)
    assert rows, "a timed reply in the history"
    latency, eot, transcription, tools, first_audio, played = rows[0]
    assert 50 < latency < 60_000, rows  # a cold model on a busy machine may take seconds
    assert eot + (transcription or 0) + (tools or 0) + first_audio == latency, rows
    assert eot > 0, "the silence the upstream waited is part of the wait"
    assert played is not None, rows
    assert played >= latency, "playback begins after the first audio reached the service"

    # The worker's histograms: the turn latency per profile, and its parts.
    with urllib.request.urlopen(f"{daphne.base_url}/metrics", timeout=10) as response:
        text = response.read().decode()
    counts = metric(text, "voice_turn_latency_seconds_count")
    sums = metric(text, "voice_turn_latency_seconds_sum")
    assert counts, "voice_turn_latency_seconds has observations"
    labels = next(iter(counts))
    assert 'profile="' in labels, labels
    assert 0.05 < sums[labels] / counts[labels] < 60, (sums, counts)
    assert sum(metric(text, "voice_turn_eot_seconds_count").values()) >= 1
    assert sum(metric(text, "voice_turn_played_latency_seconds_count").values()) >= 1

    # The timeline: not for a user who is not staff (sent to the admin's login)...
    url = f"/admin/history/conversation/{session_id}/timeline/"
    page.goto(url)
    assert "/admin/login/" in page.url
    assert page.locator("#timeline-entries").count() == 0
    # ... and for staff: the turn's latency, the chart of its parts, the end reason.
    ops = pages.open("ops")
    ops.goto("/admin/login/")
    ops.fill("#id_username", OPS_USER)
    ops.fill("#id_password", PASSWORD)
    ops.click("input[type=submit]")
    ops.wait_for_url(lambda u: "/admin/login/" not in u)
    ops.goto(url)
    ops.locator("#timeline-latency-chart").wait_for()
    assert ops.locator("#timeline-latency-chart .latency-bar").count() == len(rows)
    cells = ops.locator("#timeline-entries td.turn-latency").all_inner_texts()
    assert f"{latency} ms" in cells, cells
    assert ops.locator("#timeline-end-reason").inner_text() == "stopped"
