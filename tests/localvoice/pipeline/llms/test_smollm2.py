"""SmolLM2's adapter owns its prompt policy; nothing of it leaks into the other models."""

from __future__ import annotations

from localvoice.pipeline.llms import registry
from localvoice.pipeline.llms.smollm2 import FEW_SHOT
from localvoice.turns.conversation import Conversation, message_item


def test_smollm2_rule_example_and_temperature_cap():
    smol, qwen = registry.get("smollm2-135m"), registry.get("qwen2.5-0.5b")
    messages = smol.messages("Be nice.", [{"role": "user", "content": "Hi"}])
    assert messages[0]["content"].startswith("Be nice. Always reply in English")
    assert messages[1:3] == FEW_SHOT
    assert messages[3] == {"role": "user", "content": "Hi"}
    assert smol.temperature(0.8) == 0.2
    assert smol.temperature(0.1) == 0.1
    plain = qwen.messages("Be nice.", [{"role": "user", "content": "Hi"}])
    assert "English" not in plain[0]["content"]
    assert len(plain) == 2
    assert qwen.temperature(0.8) == 0.3


def test_history_window_comes_from_the_adapter():
    """The window grows to the model's limit, then jumps to its last ``keep`` messages."""
    smol = registry.get("smollm2-135m")
    conv = Conversation()
    for index in range(smol.window.max_messages + 1):
        role = "user" if index % 2 == 0 else "assistant"
        conv.add(message_item(role, [{"type": "input_text", "text": f"message {index}"}]))
    history = conv.history(smol.window)
    assert [m["content"] for m in history] == ["message 7", "message 8"]
    conv.add(message_item("assistant", [{"type": "text", "text": "x" * 500}]))
    assert conv.history(smol.window)[-1]["content"] == "x" * smol.window.message_chars
