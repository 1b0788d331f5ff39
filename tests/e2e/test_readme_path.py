"""The README path, as a newcomer follows it: make run, log in with the printed login, talk.

Nothing here exists only for tests: ``make run`` itself writes the ``.env`` (from
``.env.example``, with ``python -m voiceproject.envfile``), starts the Procfile's processes under
honcho (localvoice with its real models, and Daphne) and prints the demo login. The only
differences from a user's run are the ones a user may choose through documented variables: the
ports (``PORT``, ``LOCALVOICE_PORT``), the file (``ENV_FILE``) and its ``DATABASE_URL`` (a
database of the test's own, so a developer's ``db.sqlite3`` is never touched).

On the main branch before issue 8 this failed: the page said "Connecting…" forever, because
``.env`` had no key for the local engine and the service fell back to Entra ID.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_talk_page import Pages, log_in, logged, states, wait_for_states
from tests.support.processes import REPO, free_port, wait_until
from voiceproject import envfile

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(480)]

# What a user's shell does not have: the test runner's own settings.
SCRUBBED_PREFIXES = (
    "DJANGO_",
    "VOICE_",
    "AZURE_",
    "REDIS_",
    "DATABASE_",
    "PYTEST",
    "LOCALVOICE_",
    "DEMO_",
    "MAKE",  # MAKEFLAGS/MAKELEVEL when the suite itself runs under make test
    "MFLAGS",
)
LOGIN_LINE = re.compile(r"Log in as\s+(\S+) / (\S+)")


@dataclass
class MakeRun:
    """A running ``make run`` (its own process group) and what it printed."""

    proc: subprocess.Popen[bytes]
    log_path: Path
    base_url: str
    localvoice_url: str

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def credentials(self) -> tuple[str, str]:
        match = LOGIN_LINE.search(self.output())
        assert match, self.output()
        return match.group(1), match.group(2)

    def answers(self, url: str) -> bool:
        if self.proc.poll() is not None:
            msg = f"make run exited with {self.proc.returncode}:\n{self.output()[-4000:]}"
            raise RuntimeError(msg)
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(url, timeout=1) as resp,
        ):
            return bool(resp.status == 200)
        return False

    def stop(self) -> None:
        """Ctrl-C, as the user stops it; then make sure the whole group is gone."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def make_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MakeRun]:
    tmp = tmp_path_factory.mktemp("readme-path")
    env_path = tmp / ".env"
    # What make run does first, by the same code; then the one documented line a user may add.
    envfile.write(env_path)
    text = env_path.read_text().replace(
        "\nDATABASE_URL=\n", f"\nDATABASE_URL=sqlite:///{tmp / 'db.sqlite3'}\n"
    )
    env_path.write_text(text)
    port, localvoice_port = free_port(), free_port()
    shell_env = {k: v for k, v in os.environ.items() if not k.startswith(SCRUBBED_PREFIXES)}
    log_path = tmp / "make-run.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                "make",
                "--no-print-directory",
                "run",
                f"ENV_FILE={env_path}",
                f"PORT={port}",
                f"LOCALVOICE_PORT={localvoice_port}",
            ],
            cwd=REPO,
            env=shell_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    run = MakeRun(proc, log_path, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{localvoice_port}")
    try:
        wait_until(lambda: run.answers(f"{run.base_url}/healthz"), timeout=120, what="Daphne")
        wait_until(
            lambda: run.answers(f"{run.localvoice_url}/healthz"), timeout=180, what="localvoice"
        )
        yield run
    finally:
        run.stop()
        print(f"---- make run output (tail) ----\n{run.output()[-3000:]}")


def test_make_run_then_log_in_with_the_printed_login_and_talk_two_turns(
    make_run: MakeRun, chromium: Any
) -> None:
    output = make_run.output()
    assert "==> Voice Live endpoint: http://127.0.0.1:" in output
    username, password = make_run.credentials()
    pages = Pages(chromium, make_run.base_url)
    try:
        page = pages.open("readme")
        page.goto("/")
        assert "/accounts/login/" in page.url
        log_in(page, username, password)
        page.wait_for_url(lambda url: "/accounts/" not in url)

        page.click("#start")
        # Asked, the user waits in silence, as people do: the fake microphone would ask again
        # 2.5 s later and, on a loaded machine, interrupt every reply that took longer.
        asked = wait_for_states(page, ["listening", "processing"], timeout=90)
        page.click("#mute")
        first = wait_for_states(page, ["assistant_speaking"], after=asked, timeout=60)
        page.wait_for_function(
            "() => document.querySelectorAll('#conversation .entry.assistant').length >= 1"
        )
        back = wait_for_states(page, ["ready"], after=first, timeout=60)
        page.click("#mute")  # the question comes round again: the second turn
        # Unmuted mid-loop, the first thing heard may be the tail of the question: wait for the
        # whole question to be heard a second time, then wait in silence for the reply to it.
        page.wait_for_function(
            """() => [...document.querySelectorAll('#conversation .entry.user .text')]
                .filter(e => /capital|france/i.test(e.textContent)).length >= 2""",
            timeout=90_000,
        )
        page.click("#mute")
        second = wait_for_states(page, ["assistant_speaking"], after=back, timeout=60)
        wait_for_states(page, ["ready"], after=second, timeout=60)
        page.wait_for_function(
            """() => [...document.querySelectorAll('#log-list .log-in code')]
                .filter(c => c.textContent.includes('"response.done"')).length >= 2""",
            timeout=30_000,
        )

        users = page.locator("#conversation .entry.user .text").all_inner_texts()
        replies = page.locator("#conversation .entry.assistant .text").all_inner_texts()
        heard = [u for u in users if re.search(r"capital|france", u, re.I)]
        assert len(heard) >= 2, users
        assert len([r for r in replies if len(r.strip()) > 3]) >= 2, replies
        assert len(logged(page, "audio.start")) >= 2
        assert "error" not in states(page), page.locator("#notice").inner_text()

        page.click("#stop")
        page.wait_for_selector("#state[data-state=stopped]", timeout=10_000)
        errors = [
            line for line in page.console_lines if line.startswith(("[error]", "[pageerror]"))
        ]
        assert not errors, errors
        print(f"readme path: states {states(page)}; turns heard {heard}")
    except BaseException:
        pages.report(make_run.log_path.parent)
        raise
    finally:
        pages.close()
