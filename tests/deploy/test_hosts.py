"""Bare hosts (supervisor, systemd), the Procfile of make run, and deploy/README coverage."""

from __future__ import annotations

import configparser
import os
import re
import shlex
import shutil
import sys
from pathlib import Path

import pytest

from tests.deploy._common import (
    DEPLOY,
    ROOT,
    assert_production_daphne,
    daphne_args,
    run,
)

# --------------------------------------------------------------------------------------------
# Bare hosts: supervisor and systemd
# --------------------------------------------------------------------------------------------


def test_supervisor_fcgi_program_shares_the_socket():
    parser = configparser.RawConfigParser(inline_comment_prefixes=(";",))
    parser.read(DEPLOY / "supervisor-daphne.conf")
    program = parser["fcgi-program:asgi"]
    assert re.fullmatch(r"tcp://(127\.0\.0\.1|localhost):8000", program["socket"])
    argv = shlex.split(program["command"])
    assert argv[0].endswith("deploy/bin/with-env")
    args = assert_production_daphne(argv[2:])
    assert args.file_descriptor == 0
    assert args.unix_socket
    assert "%(process_num)d" in args.unix_socket
    assert "%(process_num)" in program["process_name"]
    assert int(program["numprocs"]) >= 2
    assert program["stopsignal"] == "TERM"
    assert int(program["stopwaitsecs"]) > args.application_close_timeout
    assert (DEPLOY / "bin" / "with-env").is_file()


def test_with_env_exports_the_file_and_keeps_the_pid(tmp_path):
    env_file = tmp_path / "voice.env"
    env_file.write_text("# comment\n\nA=1\nB=x y=z\n")
    result = run([str(DEPLOY / "bin" / "with-env"), str(env_file), "sh", "-c", 'echo "$A|$B"'])
    assert result.returncode == 0
    assert result.stdout == "1|x y=z\n"
    env_file.write_text("not a pair\n")
    assert run([str(DEPLOY / "bin" / "with-env"), str(env_file), "true"]).returncode != 0


def unit(path: Path) -> dict[str, dict[str, str]]:
    sections: dict[str, dict[str, str]] = {}
    text = re.sub(r"\\\n\s*", " ", path.read_text())
    current = None
    for line in text.splitlines():
        if m := re.match(r"\[(\w+)\]", line):
            current = sections.setdefault(m.group(1), {})
        elif current is not None and "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            current[key.strip()] = value.strip()
    return sections


def test_systemd_worker_template_uses_socket_activation():
    systemd = DEPLOY / "systemd"
    service = unit(systemd / "voice-daphne@.service")["Service"]
    socket_name = service["Sockets"]
    assert (systemd / socket_name).is_file()
    assert unit(systemd / socket_name)["Socket"]["ListenStream"] == "127.0.0.1:8000"
    args = assert_production_daphne(shlex.split(service["ExecStart"]))
    assert args.file_descriptor == 3  # SD_LISTEN_FDS_START
    assert service["KillSignal"] == "SIGTERM"
    assert int(service["TimeoutStopSec"]) > args.application_close_timeout
    assert service["User"] != "root"
    assert service["EnvironmentFile"] == "/etc/voice-assistant/voice.env"
    local = unit(systemd / "localvoice.service")["Service"]
    assert "-m localvoice" in local["ExecStart"]
    assert (systemd / "voice.env.example").is_file()


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is absent")
def test_systemd_units_verify(tmp_path):
    for path in (DEPLOY / "systemd").iterdir():
        if path.suffix in {".service", ".socket", ".target"}:
            text = path.read_text().replace("/srv/voice-assistant/.venv/bin/", f"{sys.prefix}/bin/")
            text = re.sub(r"^(User|Group)=voice$", r"\1=root", text, flags=re.M)
            (tmp_path / path.name).write_text(text)
    units = [
        "voice-daphne.socket", "voice-daphne@1.service", "localvoice.service",
        "voice-migrate.service", "voice-evaluations.service", "voice-assistant.target",
    ]  # fmt: skip
    result = run(
        ["systemd-analyze", "verify", "--man=no", *[f"./{u}" for u in units]], cwd=tmp_path
    )
    problems = [ln for ln in result.stderr.splitlines() if "is not executable" not in ln]
    assert result.returncode == 0, result.stderr
    assert not problems, result.stderr


# --------------------------------------------------------------------------------------------
# Procfile (make run)
# --------------------------------------------------------------------------------------------


def test_procfile_ports_under_honcho(tmp_path):
    """honcho sets PORT itself; web must still land on 8000 and localvoice on 8765."""
    honcho = Path(sys.prefix) / "bin" / "honcho"
    if not honcho.exists():
        pytest.skip("honcho is not installed in this environment")
    lines = (ROOT / "Procfile").read_text().splitlines()
    processes = dict(ln.split(":", 1) for ln in lines if re.match(r"^[A-Za-z0-9_-]+:", ln))
    assert set(processes) == {"web", "localvoice", "evaluations"}
    # Same commands, printed instead of run (honcho runs them through a shell).
    (tmp_path / "Procfile").write_text(
        "".join(f"{name}: echo {name}= {cmd.strip()}\n" for name, cmd in processes.items())
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"PORT", "WEB_PORT", "WEB_HOST", "LOCALVOICE_PORT"}
    }
    result = run(
        [str(honcho), "--no-colour", "start", "-e", "/dev/null", "-f", "Procfile"],
        cwd=tmp_path,
        env=env,
        timeout=30,
    )
    out = {
        name: line.split(f"{name}= ", 1)[1]
        for line in result.stdout.splitlines()
        for name in processes
        if f"{name}= " in line
    }
    web = shlex.split(out["web"])
    args = daphne_args(web)
    assert (args.host, args.port, args.proxy_headers) == ("127.0.0.1", 8000, True)
    local = shlex.split(out["localvoice"])
    assert local[:3] == ["python", "-m", "localvoice"]
    assert local[local.index("--port") + 1] == "8765"
    assert local[local.index("--host") + 1] == "127.0.0.1"
    assert shlex.split(out["evaluations"]) == ["python", "manage.py", "run_evaluations"]


def test_readme_covers_every_setup():
    text = (DEPLOY / "README.md").read_text()
    for needle in (
        "--scale web=",
        "--profile local",
        "supervisor-daphne.conf",
        "voice-daphne@",
        "nginx -t",
        "azdeploy.sh 1",
        "azdeploy.sh 2",
        "az group delete",
        "AZURE_CLIENT_ID",
        "What was and was not run here",
    ):
        assert needle in text, needle
