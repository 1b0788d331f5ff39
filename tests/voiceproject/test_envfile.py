"""The .env that make run writes: fresh secrets, a local engine key, nothing overwritten."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

from voiceproject.envfile import EXAMPLE, REPO, complete, is_local_endpoint, parse, write


def test_a_new_file_gets_debug_a_secret_key_and_one_key_for_both_sides(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    done = write(path)
    values = parse(path.read_text())
    assert values["DJANGO_DEBUG"] == "1"
    assert len(values["DJANGO_SECRET_KEY"]) >= 50
    assert len(values["LOCALVOICE_API_KEY"]) >= 32
    assert values["AZURE_VOICELIVE_API_KEY"] == values["LOCALVOICE_API_KEY"]
    assert len(done) == 4
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # it holds secrets
    # Every other line of the example is kept, comments included.
    assert set(parse(EXAMPLE.read_text())) <= set(values)
    assert path.read_text().count("\n#") == EXAMPLE.read_text().count("\n#")


def test_an_old_env_without_a_key_is_completed_and_nothing_set_is_touched(tmp_path: Path) -> None:
    """The .env of an earlier make run (the Connecting… forever bug) gets its key."""
    path = tmp_path / ".env"
    path.write_text("DJANGO_DEBUG=1\nDJANGO_SECRET_KEY=keep-me\nAZURE_VOICELIVE_API_KEY=\n")
    write(path)
    values = parse(path.read_text())
    assert values["DJANGO_SECRET_KEY"] == "keep-me"
    assert values["AZURE_VOICELIVE_API_KEY"] == values["LOCALVOICE_API_KEY"] != ""
    assert write(path) == []  # complete now: a second run changes nothing
    assert parse(path.read_text()) == values


def test_with_azure_an_empty_key_stays_empty_for_entra_id() -> None:
    text = "AZURE_VOICELIVE_ENDPOINT=https://res.services.ai.azure.com\nAZURE_VOICELIVE_API_KEY=\n"
    completed, _ = complete(text, new=False)
    values = parse(completed)
    assert values["AZURE_VOICELIVE_API_KEY"] == ""
    assert values["LOCALVOICE_API_KEY"]  # the local engine still gets one, unused


def test_local_endpoints() -> None:
    assert is_local_endpoint("")
    assert is_local_endpoint("http://127.0.0.1:8765")
    assert is_local_endpoint("http://localhost:9000/")
    assert not is_local_endpoint("https://res.services.ai.azure.com")


def test_command_line_says_what_it_did(tmp_path: Path) -> None:
    path = tmp_path / "custom.env"
    cmd = [sys.executable, "-m", "voiceproject.envfile", str(path)]
    first = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=REPO)
    assert "Wrote" in first.stdout
    assert "LOCALVOICE_API_KEY" in first.stdout
    again = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=REPO)
    assert again.stdout == ""
