"""Auth signal receivers: logging out ends the user's live voice sessions on every worker."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_out
from django.dispatch import receiver

from assistant.codes import Ending
from assistant.live import registry


@receiver(user_logged_out, dispatch_uid="assistant_end_sessions_on_logout")
def end_sessions_on_logout(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    """The handshake is the only check Channels makes, so logout must close live sockets."""
    if user is not None and user.pk is not None:
        registry.user_sessions_end(user_id=user.pk, reason=Ending.LOGOUT)
