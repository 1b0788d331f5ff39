from __future__ import annotations

from django.apps import AppConfig
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _


class ToolsConfig(AppConfig):
    """Tools and knowledge bases, chosen per assistant profile by admins."""

    name = "assistant.tools"
    label = "tools"
    verbose_name = capfirst(_("tools"))  # the catalogue's "tools", capitalised
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Sessions get their profile's tools, and tool changes reach live sessions."""
        from assistant import services
        from assistant.tools import session_tools  # its receivers connect on import

        services.session_tools_register(session_tools.session_tools)
