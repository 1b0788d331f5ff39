"""Fixtures for browser tests: the local voice engine, a real Daphne server, headless Chromium.

Session scope: a throwaway SQLite database (migrated, with one user); ``localvoice`` with its
real models (the suite's ``localvoice_models`` fixture); one Daphne process serving
``voiceproject.asgi:application`` against both; a spoken WAV that Chromium's fake microphone
plays in a loop; and Debian's Chromium driven by Playwright. Every process binds 127.0.0.1 on a
free port and is stopped by its own PID.
"""

from __future__ import annotations

import contextlib
import shutil
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.support.audio import silence, speak, write_wav
from tests.support.localvoice import LocalVoiceProcess
from tests.support.servers import DaphneServer, Database, daphne_env, manage, throwaway_database

if TYPE_CHECKING:
    from tests.e2e.test_talk_page import Pages

CHROMIUM = Path("/usr/bin/chromium")
USERNAME = "e2e-user"
PASSWORD = "e2e-pw-4k2m9"
SENTENCE = "What is the capital of France?"
TRAILING_SILENCE_MS = 2500
WAV_RATE = 24_000
# --headless etc.: this machine has no network; without these Chromium hangs on lookups.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
]

STAFF_USERNAME = "e2e-staff"
CREATE_USERS = f"""
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
User = get_user_model()
User.objects.create_user({USERNAME!r}, "", {PASSWORD!r}, first_name="Erin")
staff = User.objects.create_user({STAFF_USERNAME!r}, "", {PASSWORD!r}, is_staff=True)
staff.user_permissions.add(Permission.objects.get(codename="monitor_livesession"))
"""


def make_speech_wav(path: Path, text: str = SENTENCE) -> Path:
    """A WAV of ``text`` followed by silence (Chromium loops it as the microphone)."""
    pcm = silence(300, WAV_RATE) + speak(text, WAV_RATE) + silence(TRAILING_SILENCE_MS, WAV_RATE)
    write_wav(path, pcm, WAV_RATE)
    with wave.open(str(path), "rb") as wav:
        assert wav.getnchannels() == 1
        assert wav.getsampwidth() == 2
        assert wav.getnframes() > WAV_RATE  # at least a second of audio
    return path


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
    """Keep each phase's report on the item, so fixtures can print diagnostics on failure."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def e2e_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the process logs of this run go (their tails are printed on failure)."""
    return tmp_path_factory.mktemp("e2e-logs")


@pytest.fixture(scope="session")
def speech_wav(e2e_logs: Path) -> Path:
    """The fake microphone's input: a spoken question, then about 2.5 s of silence."""
    if not (shutil.which("espeak-ng") and shutil.which("sox")):  # what speak() runs
        pytest.skip("espeak-ng and sox are needed to make the spoken WAV")
    return make_speech_wav(e2e_logs / "question.wav")


@pytest.fixture(scope="session")
def e2e_database(e2e_logs: Path) -> Iterator[Database]:
    """A fresh, migrated database (SQLite unless PostgreSQL answers): a user and a monitor."""
    with throwaway_database(e2e_logs) as db:
        env = daphne_env(worker_name="setup", database_url=db.url, redis_url="", upstream_url="")
        manage(env, "migrate", "--noinput", "-v", "0")
        manage(env, "shell", "-c", CREATE_USERS)
        yield db


@contextlib.contextmanager
def _daphne(
    name: str, database: Database, upstream_url: str, log_dir: Path, extra: dict[str, str]
) -> Iterator[DaphneServer]:
    env = daphne_env(
        worker_name=name,
        database_url=database.url,
        redis_url="",
        upstream_url=upstream_url,
        extra=extra,
    )
    server = DaphneServer(name, env, log_dir)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def daphne(
    e2e_database: Database, localvoice_models: str, e2e_logs: Path
) -> Iterator[DaphneServer]:
    """One Daphne process serving the whole app (HTTP, static files, websockets)."""
    extra = {"ASSISTANT_LOG_LEVEL": "INFO", "VOICE_MONITOR_AUDIO": "1"}
    with _daphne("e2e", e2e_database, localvoice_models, e2e_logs, extra) as server:
        yield server


@pytest.fixture(scope="session")
def busy_daphne(
    e2e_database: Database, localvoice_models: str, e2e_logs: Path
) -> Iterator[DaphneServer]:
    """A Daphne worker at capacity from the start: every voice socket is closed with 4503."""
    extra = {"VOICE_MAX_SESSIONS_PER_WORKER": "0"}
    with _daphne("busy", e2e_database, localvoice_models, e2e_logs, extra) as server:
        yield server


@pytest.fixture(scope="session")
def wrong_key_daphne(
    e2e_database: Database, localvoice_models: str, e2e_logs: Path
) -> Iterator[DaphneServer]:
    """A worker whose key the engine does not accept (a misconfigured deployment)."""
    extra = {"AZURE_VOICELIVE_API_KEY": "not-the-engine-key", "VOICE_CONNECT_TIMEOUT": "5"}
    with _daphne("wrongkey", e2e_database, localvoice_models, e2e_logs, extra) as server:
        yield server


# Package scope, not session: Playwright's sync API keeps an event loop running in this thread
# while it is alive, which would break every asyncio test collected after tests/e2e.
@pytest.fixture(scope="package")
def playwright_api() -> Iterator[Any]:
    """Playwright's sync API (its device descriptors, and browsers launched by a test)."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        yield playwright


def launch_chromium(
    playwright: Any, extra_args: list[str], *, fake_ui: bool = True, fake_device: bool = True
) -> Any:
    """Debian's headless Chromium.

    Without ``fake_ui`` a context must be granted the microphone (``permissions=["microphone"]``)
    or getUserMedia fails with NotAllowedError; without ``fake_device`` there is no microphone
    at all (NotFoundError).
    """
    dropped = set()
    if not fake_ui:
        dropped.add("--use-fake-ui-for-media-stream")
    if not fake_device:
        dropped.add("--use-fake-device-for-media-stream")
    args = [a for a in CHROMIUM_ARGS if a not in dropped]
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=[*args, *extra_args], timeout=60_000
    )


@pytest.fixture(scope="package")
def chromium(playwright_api: Any, speech_wav: Path) -> Iterator[object]:
    """Debian's headless Chromium with a fake microphone playing ``speech_wav`` in a loop."""
    browser = launch_chromium(playwright_api, [f"--use-file-for-fake-audio-capture={speech_wav}"])
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture
def pages(
    request: pytest.FixtureRequest,
    chromium: Any,
    daphne: DaphneServer,
    localvoice_models_process: LocalVoiceProcess,
) -> Iterator[Pages]:
    """Browser pages on the live server; console, page logs and server logs printed on failure."""
    from tests.e2e.test_talk_page import Pages  # the test module imports this one's constants

    opened = Pages(chromium, daphne.base_url)
    try:
        yield opened
    finally:
        report = getattr(request.node, "report_call", None)
        if report is None or report.failed:
            opened.report(Path(daphne.log_path).parent)
            print("---- daphne log ----\n" + daphne.log_tail(60))
            print("---- localvoice log ----\n" + localvoice_models_process.log_tail(60))
        opened.close()


@pytest.fixture
def page(pages: Pages) -> Any:
    """One browser page on the live server."""
    return pages.open("page")
