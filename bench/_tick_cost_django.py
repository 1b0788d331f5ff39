"""Django as ``bench/tick_cost.py`` measures it: production settings on a scratch database.

Imported before anything that touches the ORM: importing it configures and sets up Django.
``DATABASE_URL`` from the environment wins (e.g. a PostgreSQL database to measure on).
"""

from __future__ import annotations

import os
import tempfile

import django

os.environ.setdefault(
    "DATABASE_URL", f"sqlite:///{tempfile.mkdtemp(prefix='tick-cost-')}/tick.sqlite3"
)
# Production settings: debug mode logs every query, which would be timed too.
os.environ.setdefault("DJANGO_DEBUG", "0")
os.environ.setdefault("DJANGO_SECRET_KEY", "tick-cost-" + "x" * 50)
os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "localhost")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voiceproject.settings.base")
django.setup()

#: Where the measured database lives (the user and password left out), for the report.
DATABASE = os.environ["DATABASE_URL"].split("@")[-1]
