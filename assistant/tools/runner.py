"""Run one tool call: arguments checked against the schema, off the loop, bounded in time.

Whatever goes wrong — arguments that are not JSON or break the schema, a tool that raises or
times out, an HTTP service answering 500 or garbage — becomes a ``function_call_output`` the
model can explain to the user; it is logged and counted, and the session goes on.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping
from typing import Any

from channels.db import database_sync_to_async
from jsonschema import exceptions as schema_errors
from jsonschema.validators import Draft202012Validator
from prometheus_client import Histogram

from assistant import metrics
from assistant.tools.builtin import BUILTINS
from assistant.tools.context import ToolContext, ToolResult
from assistant.tools.http import http_call
from assistant.tools.specs import ToolSpec

logger = logging.getLogger(__name__)

MAX_ARGUMENT_CHARS = 16_384

TOOL_SECONDS = Histogram(
    "voice_tool_seconds",
    "Time a tool call took.",
    ["tool"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)


def parse_arguments(spec: ToolSpec, raw: str) -> Mapping[str, Any] | ToolResult:
    """The call's arguments, or the result telling the model what was wrong with them."""
    if len(raw) > MAX_ARGUMENT_CHARS:
        return _invalid("the arguments are too long")
    try:
        arguments = json.loads(raw or "{}")
    except ValueError:
        return _invalid("the arguments are not valid JSON")
    if not isinstance(arguments, dict):
        return _invalid("the arguments must be a JSON object")
    schema = dict(spec.parameters) or {"type": "object"}
    error = schema_errors.best_match(Draft202012Validator(schema).iter_errors(arguments))
    if error is not None:
        where = "/".join(str(part) for part in error.absolute_path) or "arguments"
        return _invalid(f"{where}: {error.message}"[:300])
    return arguments


def _invalid(reason: str) -> ToolResult:
    return ToolResult(json.dumps({"error": f"invalid arguments: {reason}"}), "invalid_arguments")


async def run_tool(
    spec: ToolSpec | None, name: str, raw_arguments: str, context: ToolContext
) -> ToolResult:
    """Run the call of ``name`` (``spec`` None: the profile has no such tool)."""
    started = time.perf_counter()
    label = spec.name if spec is not None else "unknown"
    if spec is None or spec.kind == "mcp":
        result = ToolResult(
            json.dumps({"error": f"there is no tool called {name!r}"}), "unknown_tool"
        )
    else:
        parsed = parse_arguments(spec, raw_arguments)
        if isinstance(parsed, ToolResult):
            result = parsed
        else:
            result = await _run_checked(spec, parsed, context)
    metrics.TOOL_CALLS.labels(tool=label, outcome=result.outcome).inc()
    TOOL_SECONDS.labels(tool=label).observe(time.perf_counter() - started)
    if result.outcome != "ok":
        logger.info("tool %s: %s", label, result.outcome)
    return result


async def _run_checked(
    spec: ToolSpec, arguments: Mapping[str, Any], context: ToolContext
) -> ToolResult:
    try:
        async with asyncio.timeout(spec.timeout_seconds):
            if spec.kind == "http":
                assert spec.http is not None
                return await http_call(spec.http, arguments)
            builtin = BUILTINS[spec.name]
            # Built-ins may use the ORM: a thread, with Django's connection handling.
            return await database_sync_to_async(builtin.run)(arguments, context)
    except TimeoutError:
        return ToolResult(
            json.dumps({"error": "the tool did not answer in time"}), outcome="timeout"
        )
    except Exception:
        logger.exception("tool %s raised", spec.name)
        return ToolResult(json.dumps({"error": "the tool failed"}), outcome="error")
