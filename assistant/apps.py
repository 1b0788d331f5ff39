from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AssistantConfig(AppConfig):
    """The voice assistant app: profiles, the talk page and the voice websocket."""

    name = "assistant"
    verbose_name = _("Assistant")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Connect the auth signal receivers (logout ends live sessions)."""
        from assistant import receivers  # noqa: F401
