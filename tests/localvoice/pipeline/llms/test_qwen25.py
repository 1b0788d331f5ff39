"""Qwen2.5's adapter: tools in the system prompt, tool turns, the call forms it emits."""

from __future__ import annotations

import pytest

from localvoice.pipeline.llms import registry
from localvoice.pipeline.llms.base import TOOL_CALL_ROLE, TOOL_RESULT_ROLE, RawCall
from localvoice.turns.tool_calls import CallScanner
from tests.localvoice.fakes import WEATHER_TOOL


def test_qwen_format_describes_tools_and_renders_tool_turns():
    fmt = registry.get("qwen2.5-0.5b")
    history = [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": TOOL_CALL_ROLE, "content": '{"name": "get_weather"}'},
        {"role": TOOL_RESULT_ROLE, "content": '{"temp": 18}'},
    ]
    messages = fmt.messages("Be nice.", history, [WEATHER_TOOL])
    assert messages[0]["role"] == "system"
    assert '"name": "get_weather"' in messages[0]["content"]
    assert messages[2] == {
        "role": "assistant",
        "content": '<tool_call>\n{"name": "get_weather"}\n</tool_call>',
    }
    assert messages[3]["content"].startswith("<tool_response>")
    assert "<tools>" not in fmt.messages("Be nice.", history)[0]["content"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>',
            True,
        ),
        ('{"name": "get_weather", "arguments": {"city": "Paris"}}', True),
        ('{{"name": "get_weather", "arguments": {"city": "Paris"}}}', True),
        ('{"name": "get_weather", "arguments": "{\\"city\\": \\"Paris\\"}"}', True),
        ("Paris is sunny.", False),
        ('{"nom": 1}', False),
    ],
)
def test_qwen_parses_the_call_forms_it_emits(text, expected):
    fmt = registry.get("qwen2.5-0.5b")
    call = fmt.parse_call(text)
    assert (call == RawCall("get_weather", {"city": "Paris"})) is expected


def test_qwen_tool_prefix_decides_early():
    fmt = registry.get("qwen2.5-0.5b")
    assert fmt.tool_prefix("  ") is None
    assert fmt.tool_prefix("<tool") is None
    assert fmt.tool_prefix("<tool_call>") is True
    assert fmt.tool_prefix(' {"na') is True
    assert fmt.tool_prefix("The") is False
    assert registry.get("smollm2-135m").tool_prefix("{") is False  # SmolLM2 is never offered tools


def test_the_large_model_s_call_in_tools_tags_is_a_call():
    """The 1.5B sometimes wraps its call in the prompt's <tools> tags (issue 24)."""
    fmt = registry.get("qwen2.5-1.5b")
    text = '<tools>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tools>'
    assert fmt.tool_prefix("<to") is None
    assert fmt.tool_prefix("<tools>") is True
    assert fmt.tool_prefix("<b>") is False
    call = fmt.parse_call(text)
    assert call is not None
    assert (call.name, call.arguments) == ("get_weather", {"city": "Paris"})
    assert "never make up its result" in fmt.tools_prompt([{"name": "get_weather"}])


@pytest.mark.parametrize(
    "text",
    [
        '```json\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n```',
        '```\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n'
        "</tool_call>\n```",
        '```json{"name": "get_weather", "arguments": {"city": "Paris"}}```\nI will check.',
    ],
)
def test_a_call_in_a_markdown_code_fence_is_a_call(text):
    """The 0.5B sometimes wraps its call in a code fence; it was spoken as text before."""
    fmt = registry.get("qwen2.5-0.5b")
    assert fmt.tool_prefix(text) is True
    assert fmt.parse_call(text) == RawCall("get_weather", {"city": "Paris"})


def test_a_code_fence_is_undecided_until_its_first_character_after_the_language():
    fmt = registry.get("qwen2.5-0.5b")
    for partial in ("`", "``", "```", "```js", "```json", "```json\n"):
        assert fmt.tool_prefix(partial) is None, partial
    assert fmt.tool_prefix("```python\nprint(1)") is False
    assert fmt.tool_prefix("`quoted`") is False


def test_the_scanner_speaks_the_sentence_before_a_fenced_call():
    fmt = registry.get("qwen2.5-0.5b")
    scanner = CallScanner(fmt.tool_prefix)
    pieces = ["Sure. ", "``", "`json\n", '{"name": "get_weather", ']
    pieces += ['"arguments": {"city": "Paris"}}', "\n```"]
    speech = "".join(scanner.feed(piece) for piece in pieces) + scanner.finish()
    assert speech == "Sure."  # the space before a call goes with it, as before
    assert scanner.call_text is not None
    assert fmt.parse_call(scanner.call_text) == RawCall("get_weather", {"city": "Paris"})
