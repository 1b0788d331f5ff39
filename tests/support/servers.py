"""Process and browser helpers for multi-process tests, in one import.

The helpers live in :mod:`tests.support.processes` (Redis, Daphne, nginx, databases) and
:mod:`tests.support.browser` (logged-in browsers and their websockets).
"""

from __future__ import annotations

from tests.support.browser import Browser, Socket, WsFrame, form_fields, login_sessions
from tests.support.processes import (
    DAPHNE,
    HOST,
    PYTHON,
    REPO,
    DaphneServer,
    Database,
    ManagedProcess,
    NginxProxy,
    RedisServer,
    daphne_env,
    django_shell,
    free_port,
    manage,
    port_open,
    throwaway_database,
    wait_until,
)

__all__ = [
    "DAPHNE",
    "HOST",
    "PYTHON",
    "REPO",
    "Browser",
    "DaphneServer",
    "Database",
    "ManagedProcess",
    "NginxProxy",
    "RedisServer",
    "Socket",
    "WsFrame",
    "daphne_env",
    "django_shell",
    "form_fields",
    "login_sessions",
    "free_port",
    "manage",
    "port_open",
    "throwaway_database",
    "wait_until",
]
