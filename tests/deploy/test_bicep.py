"""Bicep, without the bicep CLI: structure, module wiring, parameters, role ids, secrets."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.deploy._common import (
    ACR_PULL,
    AZURE,
    COGNITIVE_SERVICES_USER,
)

# --------------------------------------------------------------------------------------------
# Bicep (no bicep CLI here: structural checks)
# --------------------------------------------------------------------------------------------


def bicep_files() -> list[Path]:
    return sorted(AZURE.rglob("*.bicep"))


def bicep_code(text: str) -> str:
    """Return the text with comments and string contents blanked; fails on unbalanced input."""
    out: list[str] = []
    stack: list[str] = []  # '{' '[' '(' for code, "'" for strings, '${' for interpolations
    i = 0
    pairs = {"}": "{", "]": "[", ")": "("}
    while i < len(text):
        c = text[i]
        in_string = bool(stack) and stack[-1] == "'"
        if in_string:
            if c == "\\":
                i += 2
                continue
            if c == "'":
                stack.pop()
                out.append("'")
            elif text.startswith("${", i):
                stack.append("${")
                out.append("${")
                i += 2
                continue
            i += 1
            continue
        if text.startswith("//", i):
            i = text.find("\n", i) if "\n" in text[i:] else len(text)
            continue
        if text.startswith("/*", i):
            end = text.find("*/", i)
            assert end != -1, "unterminated block comment"
            i = end + 2
            continue
        if c == "'":
            stack.append("'")
        elif c in "{[(":
            stack.append(c)
        elif c in "}])":
            expected = pairs[c]
            if c == "}" and stack and stack[-1] == "${":
                stack.pop()
            else:
                assert stack[-1:] == [expected], f"unbalanced {c!r} at offset {i}"
                stack.pop()
        out.append(c)
        i += 1
    assert not stack, f"unclosed {stack}"
    return "".join(out)


@pytest.mark.parametrize("path", bicep_files(), ids=lambda p: p.name)
def test_bicep_is_balanced(path):
    bicep_code(path.read_text())


def test_bicep_balance_checker_catches_errors():
    with pytest.raises(AssertionError):
        bicep_code("resource x 'a@1' = {\n  name: 'n'\n")
    with pytest.raises(AssertionError):
        bicep_code("var a = '${b'")
    bicep_code("var a = '${b}-}{' // } comment\nvar c = [ { d: 'e' } ]")


def params_of(path: Path) -> dict[str, bool]:
    """Map each `param` of a Bicep file to whether it has a default value."""
    code = bicep_code(path.read_text())
    return {
        m.group(1): "=" in m.group(2) for m in re.finditer(r"^param\s+(\w+)\s+([^\n]*)", code, re.M)
    }


def block_after(text: str, start: int) -> str:
    """The `{...}` block starting at the first brace at or after `start` (text is code only)."""
    open_at = text.index("{", start)
    depth = 0
    for i in range(open_at, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return text[open_at + 1 : i]
    raise AssertionError("unbalanced block")


def top_level_keys(block: str) -> set[str]:
    keys, depth = set(), 0
    for line in block.splitlines():
        if depth == 0 and (m := re.match(r"\s*(\w+)\s*:", line)):
            keys.add(m.group(1))
        depth += line.count("{") + line.count("[") - line.count("}") - line.count("]")
    return keys


def test_bicep_modules_exist_and_receive_their_parameters():
    checked = 0
    for path in bicep_files():
        raw = path.read_text()
        code = bicep_code(raw)
        for match in re.finditer(r"^module\s+(\w+)\s+'([^']+)'", raw, re.M):
            module = (path.parent / match.group(2)).resolve()
            assert module.is_file(), f"{path.name}: module {match.group(2)} missing"
            offset = code.index(f"module {match.group(1)} ")
            body = block_after(code, offset)
            passed = top_level_keys(block_after(body, body.index("params:")))
            declared = params_of(module)
            assert passed <= set(declared), (
                f"{module.name}: unknown params {passed - set(declared)}"
            )
            required = {name for name, has_default in declared.items() if not has_default}
            assert required <= passed, f"{module.name}: missing params {required - passed}"
            checked += 1
    assert checked >= 6


def test_parameters_file_matches_main_bicep():
    document = json.loads((AZURE / "main.parameters.json").read_text())
    assert document["$schema"].endswith("deploymentParameters.json#")
    declared = params_of(AZURE / "main.bicep")
    given = set(document["parameters"])
    assert given <= set(declared), f"unknown parameters {given - set(declared)}"
    required = {name for name, has_default in declared.items() if not has_default}
    assert required <= given, f"main.bicep parameters without a value: {required - given}"


def test_bicep_secrets_are_secure_and_not_hard_coded():
    for path in bicep_files():
        text = path.read_text()
        for match in re.finditer(r"^param\s+(\w+)\s+string", text, re.M):
            name = match.group(1)
            if re.search(r"password|secret|key$", name, re.IGNORECASE):
                preceding = text[: match.start()].rstrip().splitlines()[-3:]
                assert any("@secure()" in line for line in preceding), f"{path.name}: {name}"
                assert not re.search(rf"param\s+{name}\s+string\s*=", text), f"{name} default"
        assert not re.search(r"adminUserEnabled:\s*true", text)
        for match in re.finditer(r"(?i)\b(\w*(?:password|secret|key)\w*):\s*'[^'$]{6,}'", text):
            assert match.group(1) in {"secretRef", "passwordAuth"}, f"{path.name}: {match.group(0)}"
        assert "AZURE_VOICELIVE_API_KEY'" not in text, "no API key is given to the app"
    document = json.loads((AZURE / "main.parameters.json").read_text())
    for name, entry in document["parameters"].items():
        if re.search(r"password|secret|key$", name, re.IGNORECASE):
            assert re.fullmatch(r"\$\{\w+\}", entry["value"]), f"{name} must be a placeholder"


def test_bicep_role_assignments():
    ai = (AZURE / "modules" / "ai.bicep").read_text()
    registry = (AZURE / "modules" / "registry.bicep").read_text()
    assert COGNITIVE_SERVICES_USER in ai
    assert ACR_PULL in registry
    for text in (ai, registry):
        assert "Microsoft.Authorization/roleAssignments" in text
        assert "roleDefinitions'" in text
        assert "principalType: 'ServicePrincipal'" in text


def test_bicep_resources_match_the_design():
    main = (AZURE / "main.bicep").read_text()
    modules = {p.stem: p.read_text() for p in (AZURE / "modules").glob("*.bicep")}
    everything = main + "".join(modules.values())
    for resource_type in (
        "Microsoft.CognitiveServices/accounts@",
        "Microsoft.CognitiveServices/accounts/deployments@",
        "Microsoft.ContainerRegistry/registries@",
        "Microsoft.App/managedEnvironments@",
        "Microsoft.App/containerApps@",
        "Microsoft.App/jobs@",
        "Microsoft.Cache/redis@",
        "Microsoft.DBforPostgreSQL/flexibleServers@",
        "Microsoft.OperationalInsights/workspaces@",
        "Microsoft.ManagedIdentity/userAssignedIdentities@",
    ):
        assert resource_type in everything, resource_type
    assert "targetScope = 'subscription'" in main
    assert "kind: 'AIServices'" in modules["ai"]
    assert re.search(r"name: '(gpt-realtime|gpt-4o-realtime-preview)'|modelName", modules["ai"])
    assert re.search(
        r"param realtimeModelName string = '(gpt-realtime|gpt-4o-realtime-preview)'", main
    )
    app = modules["app"]
    assert "targetPort: 8000" in app
    assert "external: true" in app
    assert "path: '/healthz'" in app
    assert "path: '/readyz'" in app
    assert "'AZURE_CLIENT_ID'" in app
    assert "userAssignedIdentities" in app
    assert "rediss://" in app
    assert "sslmode=require" in app
    assert "secretRef: 'database-url'" in app
    assert "secretRef: 'redis-url'" in app
    assert re.search(r"rules:\s*\[", app)
    min_replicas = re.search(r"param minReplicas int = (\d+)", main)
    assert min_replicas
    assert int(min_replicas.group(1)) >= 2
    assert "enableNonSslPort: false" in modules["redis"]
    assert "minimumTlsVersion: '1.2'" in modules["redis"]
    script = (AZURE / "azdeploy.sh").read_text()
    assert "az acr build" in script or "acr build" in script


# --------------------------------------------------------------------------------------------
# Scaling: live sessions against capacity, CPU as a guard, drain on scale-in
# --------------------------------------------------------------------------------------------


def _bicep_var(text: str, name: str) -> str:
    """The value of ``var name = ...`` (a string literal unquoted, ``\\'`` unescaped)."""
    match = re.search(rf"^var {name} = (.*)$", text, re.M)
    assert match, f"no var {name}"
    value = match.group(1).strip()
    if value.startswith("'"):
        assert value.endswith("'"), value
        value = value[1:-1].replace("\\'", "'")
    return value


def _param_default(text: str, name: str) -> int:
    match = re.search(rf"^param {name} int = (\d+)", text, re.M)
    assert match, f"param {name} has no integer default"
    return int(match.group(1))


def _rule(app: str, name: str) -> str:
    offset = app.index(f"name: '{name}'")
    return app[offset : app.index("\n          }\n", offset)]


def test_the_app_scales_on_live_sessions_against_capacity():
    """KEDA's postgresql scaler counts the registry's fresh rows, with the app's own secret."""
    from django.conf import settings

    from assistant.live.registry import STALE_AFTER_HEARTBEATS
    from assistant.models import LiveSession

    app = (AZURE / "modules" / "app.bicep").read_text()
    rule = _rule(app, "live-sessions")
    assert "type: 'postgresql'" in rule
    assert "query: liveSessionsQuery" in rule
    assert "targetQueryValue: string(targetSessionsPerReplica)" in rule
    assert re.search(r"secretRef: 'database-url'\s+triggerParameter: 'connection'", rule)
    assert "{ name: 'database-url', value: databaseUrl }" in app  # the secret it names exists
    window = int(_bicep_var(app, "liveWindowSeconds"))
    query = _bicep_var(app, "liveSessionsQuery").replace("${liveWindowSeconds}", str(window))
    meta = LiveSession._meta
    assert f"FROM {meta.db_table} " in query
    for field in ("end_reason", "last_seen"):
        assert f" {meta.get_field(field).column} " in query
    assert "end_reason = ''" in query
    assert f"interval '{window} seconds'" in query
    # A row is live for three heartbeats (the registry's own rule), at the default period.
    assert window == STALE_AFTER_HEARTBEATS * settings.VOICE_HEARTBEAT_SECONDS
    # Scale out before the workers' admission control refuses anyone.
    main = (AZURE / "main.bicep").read_text()
    for text in (main, app):
        target = _param_default(text, "targetSessionsPerReplica")
        assert 0 < target < _param_default(text, "maxSessionsPerWorker")


def test_the_app_scales_on_cpu_and_drains_on_scale_in():
    app = (AZURE / "modules" / "app.bicep").read_text()
    rule = _rule(app, "cpu")
    assert "type: 'cpu'" in rule
    assert "type: 'Utilization'" in rule  # KEDA wants it capitalised
    assert "value: string(cpuUtilizationPercent)" in rule
    main = (AZURE / "main.bicep").read_text()
    for text in (main, app):
        assert 10 <= _param_default(text, "cpuUtilizationPercent") <= 95
    # No HTTP rule: its documented figure (requests of the last 15 s / 15) misses held sockets.
    assert "concurrentRequests" not in app
    # A replica removed by a scale-in drains like one replaced by a deploy: the drain, then
    # Daphne's application close, within the grace period.
    grace = re.search(r"terminationGracePeriodSeconds: (\d+)", app)
    assert grace
    dockerfile = (AZURE.parent / "Dockerfile").read_text()
    close = re.search(r'"--application-close-timeout", "(\d+)"', dockerfile)
    assert close
    from django.conf import settings

    assert int(grace.group(1)) >= settings.VOICE_DRAIN_SECONDS + int(close.group(1)) + 10
