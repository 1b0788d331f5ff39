"""Settings for the voice assistant service.

Everything is configured from the environment (see .env.example); there is no separate production
module. With DJANGO_DEBUG off, the secret key and allowed hosts are required.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

import dj_database_url

from voiceproject.env import env, to_bool, to_list
from voiceproject.layers import redis_channel_layer

BASE_DIR = Path(__file__).resolve().parent.parent.parent

# GENERAL
# ------------------------------------------------------------------------------
DEBUG = env("DJANGO_DEBUG", cast=to_bool, default=False)
if DEBUG:
    SECRET_KEY = env(
        "DJANGO_SECRET_KEY", default="django-insecure-dev-only-key-never-in-production"
    )
    ALLOWED_HOSTS = env(
        "DJANGO_ALLOWED_HOSTS", cast=to_list, default=["localhost", "127.0.0.1", "[::1]"]
    )
else:
    # Production refuses to start without these (ImproperlyConfigured names the variable).
    SECRET_KEY = env("DJANGO_SECRET_KEY")
    ALLOWED_HOSTS = env("DJANGO_ALLOWED_HOSTS", cast=to_list)
CSRF_TRUSTED_ORIGINS: list[str] = env("DJANGO_CSRF_TRUSTED_ORIGINS", cast=to_list, default=[])

TIME_ZONE = "UTC"
LANGUAGE_CODE = "en-us"
USE_I18N = True
# The languages of the interface (LocaleMiddleware picks one from the browser, the picker sets it).
LANGUAGES = [("en", "English"), ("fr", "Français")]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# APPS
# ------------------------------------------------------------------------------
INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "assistant",
    "assistant.history",
    "assistant.tools",
    "assistant.evaluation",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Content-Security-Policy and Permissions-Policy (assistant/security_headers.py).
    "assistant.security_headers.security_headers_middleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "voiceproject.urls"
ASGI_APPLICATION = "voiceproject.asgi.application"
WSGI_APPLICATION = "voiceproject.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# DATABASE: SQLite unless DATABASE_URL is set (postgres://... is supported)
# ------------------------------------------------------------------------------
DATABASES = {
    "default": dj_database_url.parse(
        env("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=env("DJANGO_CONN_MAX_AGE", cast=int, default=0),
    )
}

# CHANNEL LAYER AND CACHE: Redis when REDIS_URL is set, in-memory otherwise
# ------------------------------------------------------------------------------
REDIS_URL = env("REDIS_URL", default="")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": redis_channel_layer(
            REDIS_URL,
            capacity=env("CHANNEL_LAYER_CAPACITY", cast=int, default=200),
            # Longer than channels-redis's 5 s blocking receive (voiceproject/layers.py); a
            # dead Redis is still noticed within this time.
            socket_timeout=env("REDIS_SOCKET_TIMEOUT", cast=float, default=15.0),
            connect_timeout=env("REDIS_CONNECT_TIMEOUT", cast=float, default=2.0),
        )
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# AUTH
# ------------------------------------------------------------------------------
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "assistant:talk"
LOGOUT_REDIRECT_URL = "login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Failed logins allowed per username and per client address in LOGIN_FAILURE_WINDOW seconds.
LOGIN_FAILURE_LIMIT = env("LOGIN_FAILURE_LIMIT", cast=int, default=5)
LOGIN_FAILURE_WINDOW = env("LOGIN_FAILURE_WINDOW", cast=int, default=300)

# STATIC FILES
# ------------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "voiceproject.storage.StaticFilesStorage"
            if not DEBUG
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

# SECURITY (behind TLS in production; see deploy/README.md, "Origins")
# ------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
# Content-Security-Policy (no inline script anywhere; inline styles only under /admin/) and
# Permissions-Policy (microphone on the talk page only): assistant/security_headers.py. Report-only
# to trial a stricter policy without breaking pages.
SECURITY_CSP_REPORT_ONLY = env("DJANGO_CSP_REPORT_ONLY", cast=to_bool, default=False)
if env("DJANGO_SECURE", cast=to_bool, default=not DEBUG):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env("DJANGO_SECURE_SSL_REDIRECT", cast=to_bool, default=True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SESSION_COOKIE_NAME = "__Secure-sessionid"
    CSRF_COOKIE_NAME = "__Secure-csrftoken"
    SECURE_HSTS_SECONDS = env("DJANGO_SECURE_HSTS_SECONDS", cast=int, default=60)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env("DJANGO_SECURE_HSTS_PRELOAD", cast=to_bool, default=False)

# AZURE AI VOICE LIVE (or the local engine, which speaks the same protocol)
# ------------------------------------------------------------------------------
AZURE_VOICELIVE_ENDPOINT = env("AZURE_VOICELIVE_ENDPOINT", default="http://127.0.0.1:8765")
AZURE_VOICELIVE_API_KEY = env("AZURE_VOICELIVE_API_KEY", default="")
AZURE_VOICELIVE_MODEL = env("AZURE_VOICELIVE_MODEL", default="gpt-realtime")
# Pinned: the SDK's default api-version changes between minor releases.
AZURE_VOICELIVE_API_VERSION = env("AZURE_VOICELIVE_API_VERSION", default="2026-07-15")

# VOICE SESSIONS
# ------------------------------------------------------------------------------
VOICE_CONNECT_TIMEOUT = env("VOICE_CONNECT_TIMEOUT", cast=float, default=5.0)
VOICE_SESSIONS_PER_USER = env("VOICE_SESSIONS_PER_USER", cast=int, default=1)
# "takeover": a new session replaces the oldest one; "refuse": the new one is refused.
VOICE_SESSION_POLICY = env("VOICE_SESSION_POLICY", default="takeover")
VOICE_HEARTBEAT_SECONDS = env("VOICE_HEARTBEAT_SECONDS", cast=float, default=5.0)
VOICE_MAX_SESSION_SECONDS = env("VOICE_MAX_SESSION_SECONDS", cast=float, default=3600.0)
VOICE_IDLE_TIMEOUT_SECONDS = env("VOICE_IDLE_TIMEOUT_SECONDS", cast=float, default=300.0)
# Voice Live sessions end after a maximum duration; roll over to a fresh connection before that.
VOICE_UPSTREAM_ROLLOVER_SECONDS = env("VOICE_UPSTREAM_ROLLOVER_SECONDS", cast=float, default=1680.0)
# A reply asked for or running with no upstream event for this long ends the session (4502).
VOICE_REPLY_STALL_SECONDS = env("VOICE_REPLY_STALL_SECONDS", cast=float, default=15.0)
# Assistant audio in flight to a browser, unacknowledged (10 s at 24 kHz PCM16), and held back
# beyond that (30 s); a browser further behind is closed with 4413 (docs/protocol.md).
VOICE_AUDIO_SEND_WINDOW_BYTES = env("VOICE_AUDIO_SEND_WINDOW_BYTES", cast=int, default=480_000)
VOICE_AUDIO_SEND_BACKLOG_BYTES = env("VOICE_AUDIO_SEND_BACKLOG_BYTES", cast=int, default=1_440_000)
VOICE_MAX_AUDIO_FRAME_BYTES = env("VOICE_MAX_AUDIO_FRAME_BYTES", cast=int, default=32768)
VOICE_MAX_CONTROL_BYTES = env("VOICE_MAX_CONTROL_BYTES", cast=int, default=16384)
VOICE_CONTROL_MESSAGES_PER_MINUTE = env("VOICE_CONTROL_MESSAGES_PER_MINUTE", cast=int, default=120)
# Audio faster than this multiple of real time (over a 2 s window) is dropped and counted.
VOICE_AUDIO_RATE_LIMIT = env("VOICE_AUDIO_RATE_LIMIT", cast=float, default=1.5)
# Audio frames per second (over a 2 s window): the relay's cost is per frame, so tiny frames
# must not slip through the byte budget. The talk page sends 10 (100 ms each).
VOICE_AUDIO_FRAMES_PER_SECOND = env("VOICE_AUDIO_FRAMES_PER_SECOND", cast=float, default=50.0)
VOICE_CONNECTIONS_PER_MINUTE_PER_USER = env(
    "VOICE_CONNECTIONS_PER_MINUTE_PER_USER", cast=int, default=20
)
VOICE_CONNECTIONS_PER_MINUTE_PER_IP = env(
    "VOICE_CONNECTIONS_PER_MINUTE_PER_IP", cast=int, default=60
)
# Admission control: a worker holding this many sessions refuses new ones (retryable close).
# Measured in docs/logbook/benchmarks.md with 40 ms frames: about 60-65 % of what one process relays
# without an underrun, leaving room for transcripts, TLS and bursts. The talk page now sends
# 100 ms frames, which cost a worker less, so the default errs on the safe side.
VOICE_MAX_SESSIONS_PER_WORKER = env("VOICE_MAX_SESSIONS_PER_WORKER", cast=int, default=130)
VOICE_WORKER_NAME = env("VOICE_WORKER_NAME", default="")
# The worker's garbage collector (assistant/live/collector.py): freeze start-up's objects, and
# gc.set_threshold's values ("700,10,10"; empty: Python's own).
VOICE_GC_FREEZE = env("VOICE_GC_FREEZE", cast=to_bool, default=False)
VOICE_GC_THRESHOLDS = env("VOICE_GC_THRESHOLDS", default="")
# On SIGTERM, how long live sessions get to close before the worker exits (keep it under the
# process manager's stop timeout).
VOICE_DRAIN_SECONDS = env("VOICE_DRAIN_SECONDS", cast=float, default=5.0)
# Re-check that the user's login session is still valid this often while talking.
VOICE_REVALIDATE_SECONDS = env("VOICE_REVALIDATE_SECONDS", cast=float, default=30.0)
# Let live monitors hear the session's audio (not only its transcripts).
VOICE_MONITOR_AUDIO = env("VOICE_MONITOR_AUDIO", cast=to_bool, default=False)
# Conversations older than this are deleted by `manage.py purge_history` (usage is kept).
HISTORY_RETENTION_DAYS = env("HISTORY_RETENTION_DAYS", cast=int, default=90)
# /metrics answers a request bearing this token, or from these client networks (the address
# Daphne's --proxy-headers takes from X-Forwarded-For: trust it only behind a proxy that
# overwrites that header, as deploy/nginx does). Empty: token only.
METRICS_TOKEN = env("METRICS_TOKEN", default="")
METRICS_ALLOWED_NETWORKS = [
    ipaddress.ip_network(network.strip())
    for network in env(
        "METRICS_ALLOWED_NETWORKS",
        default="127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7",
    ).split(",")
    if network.strip()
]
# Tools: the key that encrypts HTTP tools' secret headers (default: derived from SECRET_KEY),
# and, when set, the only hosts HTTP tools may call (comma separated).
TOOLS_SECRET_KEY = env("TOOLS_SECRET_KEY", default="")
TOOLS_HTTP_ALLOWED_HOSTS = [
    host.strip().lower()
    for host in env("TOOLS_HTTP_ALLOWED_HOSTS", default="").split(",")
    if host.strip()
]
# The environment variables HTTP tools' secret headers may name (env:NAME): names or fnmatch
# patterns, comma separated. The server's own secrets are never allowed, whatever this says
# (assistant/tools/secrets.py, NEVER_ALLOWED_ENV).
TOOLS_SECRET_ENV_NAMES = env("TOOLS_SECRET_ENV_NAMES", cast=to_list, default=["TOOL_SECRET_*"])
# Live sessions' history is written in batches this often (a crash loses at most this much).
HISTORY_FLUSH_SECONDS = env("HISTORY_FLUSH_SECONDS", cast=float, default=2.0)
# Off: live sessions record nothing (no history, no usage ledger: quotas then only see live
# sessions). For deployments that must keep nothing, and for benchmarks of what recording costs.
HISTORY_RECORDING = env("HISTORY_RECORDING", cast=to_bool, default=True)

# LOGGING: never log audio, keys or tokens
# ------------------------------------------------------------------------------
# VOICE_LOG_FORMAT=json: one JSON object per line for a log pipeline (docs/operating.md).
# Either way every record carries the call's session id, its user's pseudonym and the trace and
# span ids (assistant/telemetry/logs.py); the JSON lines show them.


def _log_format(value: str) -> str:
    if value.strip().lower() not in ("plain", "json"):
        msg = f"expected plain or json, got {value!r}"
        raise ValueError(msg)
    return value.strip().lower()


VOICE_LOG_FORMAT = env("VOICE_LOG_FORMAT", cast=_log_format, default="plain")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # One record, one line: control characters in messages are escaped (voiceproject/logsafe.py).
    "formatters": {
        "plain": {
            "()": "voiceproject.logsafe.SingleLineFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
        },
        "json": {"()": "assistant.telemetry.logs.JsonLinesFormatter"},
    },
    "filters": {"call_context": {"()": "assistant.telemetry.logs.LogContextFilter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": VOICE_LOG_FORMAT,
            "filters": ["call_context"],
        }
    },
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "assistant": {"level": env("ASSISTANT_LOG_LEVEL", default="INFO"), "propagate": True},
        "django": {"level": "INFO", "propagate": True},
    },
}

# In development, serve static files straight from the apps and static/ (no collectstatic).
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG
