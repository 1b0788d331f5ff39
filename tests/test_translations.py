"""The French catalogues are complete, consistent and compiled.

``make messages`` re-extracts the strings (templates, Python, static/js) and compiles them; the
``.mo`` files are committed, so a checkout serves French without gettext installed.
"""

from __future__ import annotations

import ast
import gettext
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

LOCALE = Path(__file__).resolve().parent.parent / "locale" / "fr" / "LC_MESSAGES"
DOMAINS = ["django", "djangojs"]
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]|%[sd]")


@dataclass
class Entry:
    """One message of a .po file."""

    msgid: str
    plural: str | None
    msgstr: list[str]
    fuzzy: bool


def po_entries(path: Path) -> list[Entry]:
    """The messages of a .po file (the header left out)."""
    entries = []
    for block in path.read_text(encoding="utf-8").split("\n\n"):
        fields: dict[str, list[str]] = {}
        fuzzy = False
        key = ""
        for line in block.splitlines():
            if line.startswith("#,"):
                fuzzy = "fuzzy" in line
            elif line.startswith("#") or not line.strip():
                continue
            elif line.startswith('"'):
                fields[key].append(ast.literal_eval(line))
            else:
                key, _, value = line.partition(" ")
                fields[key] = [ast.literal_eval(value)]
        text = {k: "".join(v) for k, v in fields.items()}
        if text.get("msgid"):
            strs = [v for k, v in sorted(text.items()) if k.startswith("msgstr")]
            entries.append(Entry(text["msgid"], text.get("msgid_plural"), strs, fuzzy))
    return entries


@pytest.mark.parametrize("domain", DOMAINS)
def test_every_string_is_translated_with_the_same_placeholders(domain: str) -> None:
    entries = po_entries(LOCALE / f"{domain}.po")
    assert len(entries) > 50
    for entry in entries:
        assert not entry.fuzzy, entry
        expected = sorted(PLACEHOLDER.findall(entry.msgid))
        for translated in entry.msgstr:
            assert translated, entry
            assert sorted(PLACEHOLDER.findall(translated)) == expected, entry


@pytest.mark.parametrize("domain", DOMAINS)
def test_the_compiled_catalogue_matches_the_po_file(domain: str) -> None:
    with (LOCALE / f"{domain}.mo").open("rb") as mo:
        compiled = gettext.GNUTranslations(mo)
    for entry in po_entries(LOCALE / f"{domain}.po"):
        if entry.plural is None:
            assert compiled.gettext(entry.msgid) == entry.msgstr[0], entry
        else:
            assert compiled.ngettext(entry.msgid, entry.plural, 1) == entry.msgstr[0], entry
            assert compiled.ngettext(entry.msgid, entry.plural, 5) == entry.msgstr[1], entry


@pytest.mark.parametrize("domain", DOMAINS)
def test_french_plurals_follow_french_rules(domain: str) -> None:
    """0 and 1 take the singular in French; without the header's Plural-Forms gettext would
    use English's rule ("0 tours") and msgfmt refuses the catalogue."""
    with (LOCALE / f"{domain}.mo").open("rb") as mo:
        compiled = gettext.GNUTranslations(mo)
    assert compiled.info()["plural-forms"] == "nplurals=2; plural=(n > 1);"
    assert compiled.info()["language"] == "fr"
    plural = next(e for e in po_entries(LOCALE / f"{domain}.po") if e.plural is not None)
    assert compiled.ngettext(plural.msgid, plural.plural, 0) == plural.msgstr[0]


def test_the_page_can_translate_every_error_text_of_the_server() -> None:
    """Every `error` text of the server is in the JavaScript catalogue, translated.

    protocol.js shows it through gettext, generated from assistant/codes.py
    (tests/protocol/test_javascript.py checks that).
    """
    from assistant.codes import ERROR_MESSAGES

    translated = {entry.msgid for entry in po_entries(LOCALE / "djangojs.po") if entry.msgstr[0]}
    assert set(ERROR_MESSAGES.values()) <= translated
