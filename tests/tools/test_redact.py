"""The redaction of secret values from what a service answered, in the spellings echoes take."""

from __future__ import annotations

import html
import json
from urllib.parse import quote, quote_plus

import pytest

from assistant.tools.redact import MARKER, Redactor

TOKEN = "sk-live/7f3a+9Qz=Rr81&<é>"
redact = Redactor([f"Bearer {TOKEN}", "tsk_4e1f9c2b8a7d"])


@pytest.mark.parametrize(
    "echoed",
    [
        f"Bearer {TOKEN}",
        TOKEN,
        json.dumps(TOKEN),
        json.dumps(TOKEN, ensure_ascii=False),
        json.dumps(TOKEN).replace("/", "\\/"),
        json.dumps(json.dumps({"Authorization": f"Bearer {TOKEN}"})),
        quote(TOKEN, safe=""),
        quote(TOKEN, safe="").lower(),
        quote_plus(f"Bearer {TOKEN}"),
        html.escape(TOKEN),
        "TSK_4E1F9C2B8A7D",
    ],
)
def test_every_usual_spelling_of_a_secret_is_redacted(echoed: str) -> None:
    text = redact(f"before {echoed} after")
    assert MARKER in text
    assert text.startswith("before ")
    assert text.endswith(" after")
    for part in ["7f3a", "9Qz", "4e1f9c2b"]:
        assert part not in text.lower().replace("%", ""), text


def test_short_parts_and_other_text_are_left_alone() -> None:
    assert redact("Bearer tokens are sent as Bearer <token>.") == (
        "Bearer tokens are sent as Bearer <token>."
    )
    assert Redactor(["abc"])("abc abc") == "abc abc"  # too short to be a secret worth hiding
    assert Redactor([])("anything") == "anything"
