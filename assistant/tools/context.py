"""What a tool call gets (who asks, where) and what it gives back (no Django)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class ToolContext:
    """Who is asking: the tool runs for this user, in this profile, in this time zone."""

    user_id: int
    profile_id: int | None
    time_zone: str = "UTC"
    # Profiles the user may hand over to: id -> name.
    handover_profiles: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ToolResult:
    """A tool's answer for the model, and what the session should do after it.

    Attributes:
        output: the ``function_call_output`` text the model reads.
        outcome: ``ok``, ``invalid_arguments``, ``error``, ``timeout``, ``refused`` (metrics).
        end_session: the assistant says its goodbye, then the session ends.
        handover_profile_id: switch the session to this profile (context kept).
    """

    output: str
    outcome: str = "ok"
    end_session: bool = False
    handover_profile_id: int | None = None
