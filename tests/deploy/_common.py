"""Paths, tools and Daphne command-line checks shared by the deploy/ validation tests."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
AZURE = DEPLOY / "azure"
COMPOSE = DEPLOY / "compose.yaml"
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
SHELLCHECK = shutil.which("shellcheck")

COGNITIVE_SERVICES_USER = "a97b65f3-24c7-4388-baec-2e87135dc908"
ACR_PULL = "7f951dda-4ed3-4680-a7ca-43fe172d538d"
SENSITIVE = re.compile(r"SECRET|PASSWORD|PASSWD|API_KEY|TOKEN|CREDENTIAL", re.IGNORECASE)
# Values every production Daphne command line must carry.
DAPHNE_REQUIRED = {
    "proxy_headers": True,
    "websocket_timeout": 86400,
    "ping_interval": 20,
    "ping_timeout": 30,
    "websocket_max_message_size": 65536,
}


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    kwargs.setdefault("timeout", 120)
    return subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)


def daphne_args(argv: list[str]):
    """Parse a Daphne command line with Daphne's own parser (unknown flags fail the test)."""
    from daphne.cli import CommandLineInterface

    assert Path(argv[0]).name == "daphne", argv
    try:
        return CommandLineInterface().parser.parse_args(argv[1:])
    except SystemExit as exc:  # argparse exits on unknown or malformed flags
        pytest.fail(f"daphne rejects {shlex.join(argv)} (exit {exc.code})")


def assert_production_daphne(argv: list[str]) -> object:
    args = daphne_args(argv)
    for name, value in DAPHNE_REQUIRED.items():
        assert getattr(args, name) == value, f"{name} should be {value!r} in {shlex.join(argv)}"
    assert args.application == "voiceproject.asgi:application"
    return args
