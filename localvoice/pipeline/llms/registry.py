"""The bundled chat models by ``--llm`` name: a new model is one module and one line here."""

from __future__ import annotations

from localvoice.pipeline.llms.base import ChatFormat
from localvoice.pipeline.llms.qwen25 import Qwen25, Qwen25Large
from localvoice.pipeline.llms.smollm2 import SmolLM2

MODELS: dict[str, type[ChatFormat]] = {
    "qwen2.5-0.5b": Qwen25,
    "qwen2.5-1.5b": Qwen25Large,
    "smollm2-135m": SmolLM2,
}


def get(key: str) -> ChatFormat:
    """The format of a bundled model.

    Raises:
        KeyError: unknown name (the message lists the known ones).
    """
    try:
        return MODELS[key]()
    except KeyError:
        msg = f"unknown --llm {key!r}; choose one of {', '.join(MODELS)}"
        raise KeyError(msg) from None
