from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class HistoryConfig(AppConfig):
    """Conversations, their turns, the usage ledger, model prices and quotas."""

    name = "assistant.history"
    label = "history"
    verbose_name = _("History")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """A draining worker waits for the history's last write before the server stops."""
        from assistant.history.writer import history
        from assistant.live.worker import worker

        worker.drain_hook_add(history.close)
