"""With these settings, tests run faster and touch nothing outside the test run."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_DEBUG", "1")

from voiceproject.settings.base import *  # noqa: F403
from voiceproject.settings.base import BASE_DIR

(BASE_DIR / "var").mkdir(exist_ok=True)
SECRET_KEY = "test-secret-key-not-for-production"  # noqa: S105
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(BASE_DIR / "var" / "test.sqlite3"),
        # A file database, so a live Daphne server process sees the same data. Under
        # pytest-xdist (make test-fast) pytest-django gives each worker its own copy:
        # test-db.sqlite3_gw0, test-db.sqlite3_gw1...
        "TEST": {"NAME": str(BASE_DIR / "var" / "test-db.sqlite3")},
    }
}
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
ALLOWED_HOSTS = ["localhost", "127.0.0.1", "testserver"]
