"""Secret headers of HTTP tools: encrypted at rest, or named environment variables.

A value ``env:NAME`` is read from the environment when the tool runs (nothing is stored);
any other value is encrypted with Fernet under a key derived from ``TOOLS_SECRET_KEY`` (or
``SECRET_KEY`` when unset — rotating it then makes the stored secrets unreadable: re-enter
them). Secrets are never rendered back, never sent to the browser and never logged.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings

ENV_PREFIX = "env:"


class SecretUnavailable(Exception):
    """A secret could not be read (wrong key, or its environment variable is unset)."""


def _fernet() -> Fernet:
    material = (settings.TOOLS_SECRET_KEY or settings.SECRET_KEY).encode()
    key = hashlib.sha256(b"voice-assistant tool secrets\0" + material).digest()
    return Fernet(base64.urlsafe_b64encode(key))


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

    Raises:
        SecretUnavailable: the key changed, or a referenced variable is unset.
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
