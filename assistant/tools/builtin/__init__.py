"""The built-in tools, one module each, by name.

Adding one = a module with a ``TOOL``, a line below and its name in
``assistant.tools.builtin_names``. A built-in tool is a name, a description and a JSON schema
the model sees, and a synchronous ``run(arguments, context)`` the runner calls in a thread (so
it may use the ORM).
"""

from __future__ import annotations

from assistant.tools.builtin import clock, goodbye, handover, knowledge
from assistant.tools.builtin.tool import BuiltinTool

BUILTINS: dict[str, BuiltinTool] = {
    tool.name: tool for tool in (clock.TOOL, knowledge.TOOL, goodbye.TOOL, handover.TOOL)
}
