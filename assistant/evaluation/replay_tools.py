"""What a tool call gets during a replay: built-ins run as a dry run, other tools never run.

A built-in tool is a pure function: it returns its answer and, apart from it, what the call
should do next (end after the goodbye, switch profile), which only a live call acts on. So a
replay runs it for real — the clock reads the clock (in UTC: a replay has no user), the
knowledge base is searched — and records what it *would* have done to the call. HTTP tools
(an order placed, a mail sent) and MCP servers are never called: the call is recorded and the
model told the tool was not run (:data:`TOOL_NOT_RUN`), so it answers without it.
"""

from __future__ import annotations

from assistant.evaluation.replay import NOT_RUN, TOOL_NOT_RUN, ToolAnswer, never_run
from assistant.models import AssistantProfile
from assistant.tools.context import ToolContext
from assistant.tools.runner import run_tool
from assistant.tools.specs import tools_for_profile
from assistant.voicelive.config import SessionConfig

#: How a built-in's call was answered, as the report shows it.
RAN = "ran"
RAN_WOULD_END = "ran; would end the conversation"
RAN_WOULD_HAND_OVER = "ran; would hand over"


def replay_tool_answer(config: SessionConfig) -> ToolAnswer:
    """How the replay of ``config`` answers tool calls (synchronous ORM: call off the loop)."""
    offered = {tool.name for tool in config.tools}
    builtins = {
        spec.name: spec
        for spec in tools_for_profile(config.profile_id)
        if spec.kind == "builtin" and spec.name in offered
    }
    if not builtins:
        return never_run
    context = ToolContext(
        user_id=0,
        profile_id=config.profile_id,
        handover_profiles=dict(
            AssistantProfile.objects.filter(is_enabled=True).values_list("pk", "name")
        ),
    )

    async def answer(name: str, raw_arguments: str) -> tuple[str, str]:
        spec = builtins.get(name)
        if spec is None:
            return TOOL_NOT_RUN, NOT_RUN
        result = await run_tool(spec, name, raw_arguments, context)
        if result.end_session:
            return result.output, RAN_WOULD_END
        if result.handover_profile_id is not None:
            return result.output, RAN_WOULD_HAND_OVER
        return result.output, RAN

    return answer


def replay_tool_answers(
    baseline: SessionConfig, candidate: SessionConfig
) -> tuple[ToolAnswer, ToolAnswer]:
    """Both sides' :func:`replay_tool_answer`, as ``replay_side_by_side`` takes them."""
    return replay_tool_answer(baseline), replay_tool_answer(candidate)
