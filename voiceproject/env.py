"""A small typed reader for configuration from the environment (after starlette's Config)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar, overload

from django.core.exceptions import ImproperlyConfigured

T = TypeVar("T")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_MISSING: Any = object()


def to_bool(value: str) -> bool:
    """Parse a boolean strictly: anything but the usual spellings is an error."""
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    msg = f"expected a boolean (1/0, true/false, yes/no, on/off), got {value!r}"
    raise ValueError(msg)


def to_list(value: str) -> list[str]:
    """Split a comma-separated list, dropping blanks."""
    return [item.strip() for item in value.split(",") if item.strip()]


@overload
def env(key: str, *, default: str = ...) -> str: ...
@overload
def env(key: str, *, cast: Callable[[str], T], default: T = ...) -> T: ...
def env(key: str, *, cast: Callable[[str], Any] | None = None, default: Any = _MISSING) -> Any:
    """Read ``key`` from the environment, cast it, or fall back to ``default``.

    Args:
        key: the variable's name.
        cast: a function turning the raw string into the wanted type.
        default: the value when the variable is unset or empty; without one it is required.

    Returns:
        The cast value, or the default.

    Raises:
        ImproperlyConfigured: the variable is required and unset, or cannot be cast.
    """
    raw = os.environ.get(key, "")
    if raw == "":
        if default is _MISSING:
            msg = f"Set the environment variable {key} (see .env.example)."
            raise ImproperlyConfigured(msg)
        return default
    if cast is None:
        return raw
    try:
        return cast(raw)
    except ValueError as exc:
        msg = f"Environment variable {key} is invalid: {exc}"
        raise ImproperlyConfigured(msg) from exc
