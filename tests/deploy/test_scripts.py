"""Shell scripts: shellcheck, bash -n, and dry runs of azdeploy.sh against a fake `az`."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from tests.deploy._common import (
    AZURE,
    DEPLOY,
    SHELLCHECK,
    run,
)

# --------------------------------------------------------------------------------------------
# shell scripts
# --------------------------------------------------------------------------------------------


def shell_scripts() -> list[Path]:
    found = []
    for path in sorted(DEPLOY.rglob("*")):
        if not path.is_file():
            continue
        first = path.read_bytes()[:64]
        if path.suffix == ".sh" or re.match(rb"#!.*\b(ba)?sh\b", first):
            found.append(path)
    return found


def test_scripts_are_found_and_executable():
    scripts = shell_scripts()
    names = {p.relative_to(DEPLOY).as_posix() for p in scripts}
    assert {"azure/azdeploy.sh", "bin/with-env"} <= names
    for path in scripts:
        assert path.stat().st_mode & stat.S_IXUSR, f"{path} is not executable"
        assert "set -euo pipefail" in path.read_text(), f"{path} lacks set -euo pipefail"


@pytest.mark.parametrize("script", shell_scripts(), ids=lambda p: p.name)
def test_bash_syntax(script):
    result = run(["bash", "-n", str(script)])
    assert result.returncode == 0, result.stderr


@pytest.mark.skipif(SHELLCHECK is None, reason="shellcheck is not installed")
@pytest.mark.parametrize("script", shell_scripts(), ids=lambda p: p.name)
def test_shellcheck(script):
    result = run([SHELLCHECK, "-x", str(script)])
    assert result.returncode == 0, result.stdout


def test_azdeploy_help_lists_both_options():
    result = run(["bash", str(AZURE / "azdeploy.sh"), "--help"])
    assert result.returncode == 0
    assert re.search(r"^\s*1, --full\s+Full deploy", result.stdout, re.M)
    assert re.search(r"^\s*2, --image-only\s+Update image only", result.stdout, re.M)
    assert "az group delete" in result.stdout
    bad = run(["bash", str(AZURE / "azdeploy.sh"), "--bogus"], stdin=subprocess.DEVNULL)
    assert bad.returncode != 0


FAKE_AZ = r"""#!/usr/bin/env bash
# Records every call; answers the few queries azdeploy.sh makes.
printf '%s\n' "$*" >>"$FAKE_AZ_LOG"
args=" $* "
case $args in
  *" deployment sub create "*)
    for a in "$@"; do
      [[ $a == @* ]] && cp "${a#@}" "$FAKE_AZ_DIR/params-$(date +%s%N).json"
    done ;;
  *" deployment sub show "*"--query properties.outputs."*)
    name=${args#*properties.outputs.}; name=${name%%.value*}
    case $name in
      AZURE_CONTAINER_REGISTRY_ENDPOINT) echo crtoken.azurecr.io ;;
      SERVICE_WEB_URI) echo https://ca-web.example.azurecontainerapps.io ;;
      *) echo "fake-$name" ;;
    esac ;;
  *" containerapp job start "*) echo exec-1 ;;
  *" containerapp job execution show "*) echo Succeeded ;;
  *" account show "*"--query name"*) echo fake-subscription ;;
  *" ad signed-in-user show "*) echo 00000000-0000-0000-0000-000000000001 ;;
esac
exit 0
"""


@pytest.fixture
def fake_az(tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    az = bindir / "az"
    az.write_text(FAKE_AZ)
    az.chmod(0o755)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "IMAGE_TAG"))},
        "PATH": f"{bindir}:{os.environ['PATH']}",
        "FAKE_AZ_LOG": str(tmp_path / "az.log"),
        "FAKE_AZ_DIR": str(tmp_path),
        "VOICE_DEPLOY_STATE_DIR": str(tmp_path / "state"),
    }
    return tmp_path, env


@pytest.mark.skipif(shutil.which("openssl") is None, reason="azdeploy.sh needs openssl")
def test_azdeploy_full_deploy_dry_run(fake_az):
    tmp_path, env = fake_az
    result = run(
        ["bash", str(AZURE / "azdeploy.sh"), "1", "-e", "ci", "-l", "swedencentral", "-t", "t1"],
        env=env,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    calls = (tmp_path / "az.log").read_text().splitlines()
    creates = [c for c in calls if c.startswith("deployment sub create")]
    assert len(creates) == 3
    assert "deployWebApp=false" in creates[0]
    assert "deployWebApp=true" in creates[2]
    order = [
        next(i for i, c in enumerate(calls) if c.startswith(prefix))
        for prefix in ("acr build", "containerapp job start")
    ]
    assert order == sorted(order)
    assert any(c.startswith("acr build") and "voice-assistant:t1" in c for c in calls)
    assert calls.index(creates[2]) > order[1], "the app is deployed after the migrations"
    # Secrets travel in the rendered parameter file, never on a command line.
    state = (tmp_path / "state" / "azure-ci.env").read_text()
    secret = re.search(r"DJANGO_SECRET_KEY=(\w+)", state).group(1)
    assert stat.S_IMODE((tmp_path / "state" / "azure-ci.env").stat().st_mode) == 0o600
    assert secret not in "\n".join(calls)
    rendered = sorted(tmp_path.glob("params-*.json"))
    assert len(rendered) == 3
    params = [json.loads(p.read_text())["parameters"] for p in rendered]
    assert "${" not in json.dumps(params)
    assert params[0]["appImage"]["value"] == ""
    assert params[2]["appImage"]["value"] == "crtoken.azurecr.io/voice-assistant:t1"
    assert params[2]["djangoSecretKey"]["value"] == secret
    assert params[0]["environmentName"]["value"] == "ci"


def test_azdeploy_update_image_only_dry_run(fake_az):
    tmp_path, env = fake_az
    result = run(
        ["bash", str(AZURE / "azdeploy.sh"), "2", "-e", "ci", "-t", "t2"],
        env=env,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    calls = (tmp_path / "az.log").read_text().splitlines()
    assert not any(c.startswith("deployment sub create") for c in calls)
    image = "crtoken.azurecr.io/voice-assistant:t2"
    sequence = [
        "acr build",
        "containerapp job update",
        "containerapp job start",
        "containerapp update",
    ]
    positions = [next(i for i, c in enumerate(calls) if c.startswith(s)) for s in sequence]
    assert positions == sorted(positions)
    assert image in calls[positions[1]]
    assert image in calls[positions[3]]
