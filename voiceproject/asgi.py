"""ASGI entry point: HTTP through Django, websockets through Channels."""

from __future__ import annotations

from voiceproject.django_http import django_asgi_app

# isort: split
# Everything below may import ORM models: Django is set up by the import above.
from channels.auth import AuthMiddlewareStack
from channels.routing import ProtocolTypeRouter, URLRouter
from django.conf import settings

from assistant.live.collector import collector_setup, thresholds_parse
from assistant.live.registry import worker_name
from assistant.routing import websocket_urlpatterns
from assistant.telemetry.tracing import tracing_setup
from voiceproject.origins import SameOriginValidator

# Traces are exported only when OTEL_EXPORTER_OTLP_ENDPOINT (or ..._TRACES_ENDPOINT) is set:
# otherwise no provider exists and calls trace nothing (assistant/telemetry/tracing.py).
tracing_setup(worker=worker_name())

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # The Origin must be the page's own (scheme, host and port) or a trusted origin: the
        # rules of Django's CSRF check (voiceproject/origins.py). Channels' validators, given
        # bare host names, would accept any port and scheme of an allowed host.
        "websocket": SameOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns)),  # type: ignore[arg-type]
        ),
    }
)

# Last: everything start-up builds exists now (see assistant/live/collector.py).
collector_setup(
    freeze=settings.VOICE_GC_FREEZE, thresholds=thresholds_parse(settings.VOICE_GC_THRESHOLDS)
)
