"""What a test's code logged at ERROR: the proof that nothing failed quietly."""

from __future__ import annotations

import logging


class ErrorLogCollector(logging.Handler):
    """Collects ERROR records (unhandled task exceptions, logger.exception) while installed."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
