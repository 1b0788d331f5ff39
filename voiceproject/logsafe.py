"""Log lines that cannot be forged: control characters in messages are escaped.

Values from the browser or the upstream (error codes, event types) end up in log messages. A
newline in one of them would start a line of its own that looks like any other record
(``... CRITICAL assistant.consumers FORGED``), so the formatter escapes control characters in
the message; the call sites log such values with ``%r`` as well. Tracebacks, which the
formatter appends after the message, keep their lines but every one of them is indented, so an
exception message carrying such a value cannot start a line that looks like a record.
"""

from __future__ import annotations

import logging
from typing import Any

# C0 controls (tab included: it can pad a fake field), DEL, C1 controls, and the Unicode line
# and paragraph separators some log viewers break lines at.
_CONTROL = [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0), 0x2028, 0x2029]
_ESCAPES = {code: f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" for code in _CONTROL}
_ESCAPES |= {ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"}


def single_line(text: str) -> str:
    """``text`` with every control character escaped (a newline becomes backslash-n)."""
    return text.translate(_ESCAPES)


class SingleLineFormatter(logging.Formatter):
    """A formatter whose message part is always one line (see the module docstring)."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        """Format the record with its message escaped to one line."""
        record.message = single_line(record.message)
        return super().formatMessage(record)

    def formatException(self, ei: Any) -> str:
        """The traceback, every line indented (never mistaken for a record of its own)."""
        return _indented(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:
        """The stack, every line indented."""
        return _indented(super().formatStack(stack_info))


def _indented(text: str) -> str:
    return "\n".join(f"    {single_line(line)}" for line in text.splitlines())
