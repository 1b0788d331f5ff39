"""Every built-in name the Tool model offers has its implementation, and no other exists."""

from __future__ import annotations

from assistant.tools.builtin import BUILTINS
from assistant.tools.builtin_names import BuiltinName


def test_the_models_choices_and_the_implementations_name_the_same_tools() -> None:
    assert set(BUILTINS) == set(BuiltinName.values)
    assert all(tool.name == name for name, tool in BUILTINS.items())
