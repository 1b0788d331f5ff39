"""Django's own ASGI application (HTTP); importing this module sets Django up.

``voiceproject/asgi.py`` imports it before anything that may import ORM models (the
websocket routing, Channels' auth middleware): the app registry is populated by then.
"""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voiceproject.settings.base")
django_asgi_app = get_asgi_application()
