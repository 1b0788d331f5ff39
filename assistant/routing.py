from __future__ import annotations

from django.urls import path

from assistant.consumers.monitor import MonitorConsumer
from assistant.consumers.voice import VoiceConsumer
from assistant.protocol import MONITOR_PATH, VOICE_PATH

# The paths are the wire contract's (the pages' copy is generated from it); Django's have no
# leading slash.
websocket_urlpatterns = [
    # The stubs type django.urls.path for views only; Channels routes ASGI apps with it.
    path(VOICE_PATH.removeprefix("/"), VoiceConsumer.as_asgi()),  # type: ignore[arg-type]
    path(
        f"{MONITOR_PATH.removeprefix('/')}<str:session_id>/",
        MonitorConsumer.as_asgi(),  # type: ignore[arg-type]
    ),
]
