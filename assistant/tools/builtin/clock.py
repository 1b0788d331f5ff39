"""The current date and time, in the user's time zone."""

from __future__ import annotations

import datetime as dt
import json
import zoneinfo
from collections.abc import Mapping
from typing import Any

from assistant.tools.builtin.tool import BuiltinTool
from assistant.tools.builtin_names import BuiltinName
from assistant.tools.context import ToolContext, ToolResult


def run(arguments: Mapping[str, Any], context: ToolContext) -> ToolResult:
    """Now, as local date and time, with the zone's name and offset."""
    try:
        zone = zoneinfo.ZoneInfo(context.time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = zoneinfo.ZoneInfo("UTC")
    now = dt.datetime.now(zone)
    return ToolResult(
        json.dumps(
            {
                "date": now.strftime("%A %d %B %Y"),
                "time": now.strftime("%H:%M"),
                "time_zone": str(zone),
                "utc_offset": now.strftime("%z"),
                "iso": now.isoformat(timespec="seconds"),
            }
        )
    )


TOOL = BuiltinTool(
    name=BuiltinName.GET_CURRENT_TIME,
    description="Get the current date and time where the user is. Use it for any question "
    "about today's date, the day of the week or the time.",
    parameters={"type": "object", "properties": {}, "additionalProperties": False},
    run=run,
)
