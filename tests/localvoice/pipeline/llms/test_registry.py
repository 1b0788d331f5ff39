"""The bundled chat models by ``--llm`` name."""

from __future__ import annotations

import pytest

from localvoice.config import ServerConfig
from localvoice.pipeline.llms import registry


def test_registry_lists_the_three_models_and_rejects_others():
    assert ServerConfig().llm == "qwen2.5-0.5b"
    assert set(registry.MODELS) == {"qwen2.5-0.5b", "qwen2.5-1.5b", "smollm2-135m"}
    assert registry.get("qwen2.5-1.5b").weights.sha256.startswith("cc324af0")
    assert len(registry.get("qwen2.5-1.5b").weights.parts) == 22
    assert len(registry.get("qwen2.5-0.5b").weights.parts) == 6
    with pytest.raises(KeyError, match="choose one of"):
        registry.get("gpt-5")
