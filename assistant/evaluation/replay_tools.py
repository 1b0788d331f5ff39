"""What a tool call gets during a replay: built-ins run as a dry run, other tools never run.

A built-in tool is a pure function: it returns its answer and, apart from it, what the call
should do next (end after the goodbye, switch profile), which only a live call acts on. So a
replay runs it for real — the clock reads the clock (in UTC: a replay has no user), the
knowledge base is searched — and records what it *would* have done to the call. HTTP tools
(an order placed, a mail sent) are never called: one that declares its *answer during
evaluations* (``Tool.evaluation_answer``, its dry run) gets that answer; any other is recorded
and the model told the tool was not run (:data:`TOOL_NOT_RUN`), so it answers without it.
"""

from __future__ import annotations

from assistant.evaluation.replay import NOT_RUN, TOOL_NOT_RUN, ToolAnswer, never_run
from assistant.models import AssistantProfile
from assistant.tools.context import ToolContext
from assistant.tools.models import Tool
from assistant.tools.runner import run_tool
from assistant.tools.specs import tools_for_profile
from assistant.voicelive.config import SessionConfig

#: How a built-in's call was answered, as the report shows it.
RAN = "ran"
RAN_WOULD_END = "ran; would end the conversation"
RAN_WOULD_HAND_OVER = "ran; would hand over"
#: An HTTP tool answered by what it declares for evaluations, not called.
DRY_RUN_DECLARED = "dry run declared by the tool"


def declared_answers(config: SessionConfig) -> dict[str, str]:
    """The offered HTTP tools' declared answers during evaluations, by name (ORM: off the loop)."""
    offered = {tool.name for tool in config.tools}
    return {
        name: answer
        for name, answer in Tool.objects.filter(
            profiles=config.profile_id, kind=Tool.Kind.HTTP, is_enabled=True, name__in=offered
        ).values_list("name", "evaluation_answer")
        if answer.strip()
    }


def replay_tool_answer(config: SessionConfig) -> ToolAnswer:
    """How the replay of ``config`` answers tool calls (synchronous ORM: call off the loop)."""
    offered = {tool.name for tool in config.tools}
    builtins = {
        spec.name: spec
        for spec in tools_for_profile(config.profile_id)
        if spec.kind == "builtin" and spec.name in offered
    }
    declared = declared_answers(config)
    if not builtins and not declared:
        return never_run
    context = ToolContext(
        user_id=0,
        profile_id=config.profile_id,
        handover_profiles=dict(
            AssistantProfile.objects.filter(is_enabled=True).values_list("pk", "name")
        ),
    )

    async def answer(name: str, raw_arguments: str) -> tuple[str, str]:
        if name in declared:
            return declared[name], DRY_RUN_DECLARED
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
