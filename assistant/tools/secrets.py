"""Secret headers of HTTP tools: encrypted at rest, or named environment variables.

A value ``env:NAME`` is read from the environment when the tool runs (nothing is stored);
any other value is encrypted with Fernet under a key derived from ``TOOLS_SECRET_KEY`` (or
``SECRET_KEY`` when unset — rotating it then makes the stored secrets unreadable: re-enter
them). Secrets are never rendered back, never sent to the browser and never logged.

``env:`` may name only the variables an operator allowed (``TOOLS_SECRET_ENV_NAMES``, names or
fnmatch patterns), and never one of the server's own secrets (:data:`NEVER_ALLOWED_ENV`),
whatever that setting says: whoever edits a tool must not be able to make the server send a
value they could not see.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import json
import os
import re

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings

ENV_PREFIX = "env:"
ENV_SETTING = "TOOLS_SECRET_ENV_NAMES"
#: What an environment variable's name may look like (POSIX shells' rule).
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: The server's own secrets and credentials, matched without regard to case: never sent by a
#: tool, whatever ``TOOLS_SECRET_ENV_NAMES`` allows.
NEVER_ALLOWED_ENV = (
    "DJANGO_*",  # DJANGO_SECRET_KEY and the rest of Django's configuration
    "SECRET_KEY",
    "TOOLS_SECRET_KEY",
    "AZURE_*",  # AZURE_VOICELIVE_API_KEY, AZURE_CLIENT_SECRET, AZURE_PASSWORD, ...
    "IDENTITY_*",  # managed identity's endpoint and header (DefaultAzureCredential)
    "MSI_*",
    "DATABASE_URL",
    "PG*",  # libpq's PGPASSWORD, PGPASSFILE, ...
    "REDIS_URL",
    "LOCALVOICE_*",  # LOCALVOICE_API_KEY
    "METRICS_*",  # METRICS_TOKEN, the scrapers' bearer token for /metrics
    "DEMO_*",  # the demo login's password
)


class SecretUnavailable(Exception):
    """A secret could not be read (wrong key, a name not allowed, or an unset variable)."""


def _fernet() -> Fernet:
    material = (settings.TOOLS_SECRET_KEY or settings.SECRET_KEY).encode()
    key = hashlib.sha256(b"voice-assistant tool secrets\0" + material).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def env_name_problem(variable: str) -> str | None:
    """Why ``env:variable`` may not be used (None: it may).

    Args:
        variable: the name after ``env:``.

    Returns:
        The reason, in words an admin acts on, or None.
    """
    if not ENV_NAME_RE.fullmatch(variable):
        return "which is not an environment variable's name"
    upper = variable.upper()
    if any(fnmatch.fnmatchcase(upper, pattern) for pattern in NEVER_ALLOWED_ENV):
        return "one of the server's own secrets, which tools may never send"
    allowed = settings.TOOLS_SECRET_ENV_NAMES
    if not any(fnmatch.fnmatchcase(variable, pattern) for pattern in allowed):
        return f"which is not allowed ({ENV_SETTING}: {', '.join(allowed) or 'none'})"
    return None


def env_references(headers: dict[str, str]) -> dict[str, str]:
    """Header name -> environment variable, for the ``env:`` values of ``headers``."""
    return {
        name: value.removeprefix(ENV_PREFIX)
        for name, value in headers.items()
        if value.startswith(ENV_PREFIX)
    }


def header_problems(headers: dict[str, str]) -> list[str]:
    """What keeps ``headers`` (as typed, ``env:`` unresolved) from being sent, one per header."""
    problems = []
    for name, variable in env_references(headers).items():
        reason = env_name_problem(variable)
        if reason is not None:
            problems.append(f"secret header {name} names {variable}, {reason}")
    return problems


def stored_problems(stored: str) -> list[str]:
    """What keeps the stored secret headers from being sent (the admin shows it)."""
    try:
        return header_problems(decrypt_headers(stored, resolve_env=False))
    except SecretUnavailable as exc:
        return [str(exc)]


def parse_header_lines(text: str) -> dict[str, str]:
    """``Name: value`` lines (blank lines skipped) as a dict.

    Raises:
        ValueError: a line without a colon, or an empty name.
    """
    headers: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        name, colon, value = line.partition(":")
        if not colon or not name.strip():
            msg = f"line {number} is not “Name: value”"
            raise ValueError(msg)
        headers[name.strip()] = value.strip()
    return headers


def encrypt_headers(headers: dict[str, str]) -> str:
    """The stored form of ``headers`` (empty string for none)."""
    if not headers:
        return ""
    return _fernet().encrypt(json.dumps(headers).encode()).decode()


def header_names(stored: str) -> list[str]:
    """The names of the stored secret headers (what the admin may see), or [] if unreadable."""
    try:
        return sorted(decrypt_headers(stored, resolve_env=False))
    except SecretUnavailable:
        return []


def decrypt_headers(stored: str, *, resolve_env: bool = True) -> dict[str, str]:
    """The secret headers to send, ``env:`` references resolved.

    Every reference is checked before any is read: a tool with one name that is not allowed
    sends nothing (never the other headers without it).

    Raises:
        SecretUnavailable: the key changed, a referenced name is not allowed, or a referenced
            variable is unset.
    """
    if not stored:
        return {}
    try:
        headers: dict[str, str] = json.loads(_fernet().decrypt(stored.encode()))
    except (InvalidToken, ValueError) as exc:
        msg = "the secret headers cannot be decrypted (was the secret key changed?)"
        raise SecretUnavailable(msg) from exc
    if not resolve_env:
        return headers
    problems = header_problems(headers)
    if problems:
        raise SecretUnavailable("; ".join(problems))
    resolved = {}
    for name, value in headers.items():
        if value.startswith(ENV_PREFIX):
            variable = value.removeprefix(ENV_PREFIX)
            if variable not in os.environ:
                msg = f"the environment variable {variable} of header {name} is not set"
                raise SecretUnavailable(msg)
            value = os.environ[variable]
        resolved[name] = value
    return resolved
