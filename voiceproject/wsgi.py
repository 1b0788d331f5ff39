"""WSGI entry point, kept for management tooling; the service is served over ASGI by Daphne."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voiceproject.settings.base")
application = get_wsgi_application()
