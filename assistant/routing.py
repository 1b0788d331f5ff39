from __future__ import annotations

from django.urls import path

from assistant.consumers.monitor import MonitorConsumer
from assistant.consumers.voice import VoiceConsumer

websocket_urlpatterns = [
    # The stubs type django.urls.path for views only; Channels routes ASGI apps with it.
    path("ws/voice/", VoiceConsumer.as_asgi()),  # type: ignore[arg-type]
    path("ws/monitor/<str:session_id>/", MonitorConsumer.as_asgi()),  # type: ignore[arg-type]
]
