"""Log lines a client cannot forge: one record, one line (issue 9).

The real-server version (a hostile upstream's error events) is tests/hardening/test_redteam.py.
"""

from __future__ import annotations

import logging

from voiceproject.logsafe import SingleLineFormatter


def test_a_message_with_newlines_is_one_line() -> None:
    formatter = SingleLineFormatter("%(levelname)s %(name)s %(message)s")
    record = logging.LogRecord(
        "assistant.voicelive.events",
        logging.WARNING,
        __file__,
        1,
        "code=%s",
        ("x\n2026 CRITICAL assistant.consumers FORGED\r\x1b[2J\u2028",),
        None,
    )
    line = formatter.format(record)
    assert "\n" not in line
    assert "\r" not in line
    assert "\x1b" not in line
    assert "\u2028" not in line
    assert line.endswith("code=x\\n2026 CRITICAL assistant.consumers FORGED\\r\\x1b[2J\\u2028")


def test_a_traceback_keeps_its_lines_each_indented() -> None:
    """An exception message carrying a forged record cannot start a line of its own."""
    formatter = SingleLineFormatter("%(asctime)s %(levelname)s %(message)s")
    try:
        raise ValueError("boom\n2026-01-01 00:00:00,000 CRITICAL forged")
    except ValueError:
        import sys

        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    lines = formatter.format(record).splitlines()
    assert lines[0].endswith("ERROR failed")
    assert lines[1] == "    Traceback (most recent call last):"
    assert lines[-1] == "    2026-01-01 00:00:00,000 CRITICAL forged"
    assert all(line.startswith("    ") for line in lines[1:])
