"""Write or complete the ``.env`` file that ``make run`` serves the app with (no Django).

``python -m voiceproject.envfile [PATH]`` creates ``PATH`` (default ``.env``) from
``.env.example`` for local development, or fills in what an existing one lacks. It generates
the secrets a first run needs and never overwrites a value that is already set:

- ``DJANGO_SECRET_KEY``: a fresh random key (``DJANGO_DEBUG=1`` in a new file);
- ``LOCALVOICE_API_KEY``: the key the local voice engine requires at its handshake;
- ``AZURE_VOICELIVE_API_KEY``: the same key, while the endpoint is the local engine (empty or
  on this machine). With an Azure endpoint it is left alone: empty means Microsoft Entra ID.

The end-to-end test of the README path (tests/e2e/test_readme_path.py) runs this same code.
"""

from __future__ import annotations

import argparse
import re
import secrets
import sys
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / ".env.example"
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_ASSIGNMENT = re.compile(r"^(?P<key>[A-Z][A-Z0-9_]*)=(?P<value>.*)$")


def parse(text: str) -> dict[str, str]:
    """The ``KEY=value`` assignments of an env file (comments and blank lines skipped)."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        match = _ASSIGNMENT.match(line.strip())
        if match:
            values[match["key"]] = match["value"].strip().strip("'\"")
    return values


def is_local_endpoint(endpoint: str) -> bool:
    """True for the local engine: no endpoint configured, or one on this machine."""
    if not endpoint:
        return True
    return (urlsplit(endpoint).hostname or "") in LOCAL_HOSTS


def _set(text: str, key: str, value: str) -> str:
    """``text`` with ``key`` set to ``value`` (the existing line replaced, or one appended)."""
    pattern = re.compile(rf"^{key}=.*$", re.MULTILINE)
    if pattern.search(text):
        return pattern.sub(lambda _: f"{key}={value}", text, count=1)
    return text.rstrip("\n") + f"\n{key}={value}\n"


def complete(text: str, *, new: bool) -> tuple[str, list[str]]:
    """Fill in what a local run needs; returns the new text and what was done.

    Args:
        text: the env file's content (``.env.example``'s for a new file).
        new: True when the file is being created (development defaults are applied too).
    """
    values = parse(text)
    done: list[str] = []
    if new:
        text = _set(text, "DJANGO_DEBUG", "1")
        done.append("DJANGO_DEBUG=1 (local development)")
    if not values.get("DJANGO_SECRET_KEY"):
        text = _set(text, "DJANGO_SECRET_KEY", secrets.token_urlsafe(50))
        done.append("a fresh DJANGO_SECRET_KEY")
    local_key = values.get("LOCALVOICE_API_KEY", "")
    if not local_key:
        local_key = secrets.token_urlsafe(32)
        text = _set(text, "LOCALVOICE_API_KEY", local_key)
        done.append("a fresh LOCALVOICE_API_KEY for the local voice engine")
    endpoint = values.get("AZURE_VOICELIVE_ENDPOINT", "")
    if is_local_endpoint(endpoint) and not values.get("AZURE_VOICELIVE_API_KEY"):
        text = _set(text, "AZURE_VOICELIVE_API_KEY", local_key)
        done.append("AZURE_VOICELIVE_API_KEY = the local engine's key")
    return text, done


def write(path: Path, *, example: Path = EXAMPLE) -> list[str]:
    """Create or complete ``path``; returns what was done (empty: nothing was missing).

    The file is written atomically and readable by its owner only: it holds secrets.
    """
    new = not path.exists()
    text = example.read_text() if new else path.read_text()
    text, done = complete(text, new=new)
    if new or done:
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text)
        tmp.chmod(0o600)
        tmp.replace(path)
    return done


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: create or complete the env file and say what changed."""
    parser = argparse.ArgumentParser(prog="python -m voiceproject.envfile", description=__doc__)
    parser.add_argument("path", nargs="?", default=".env", type=Path)
    parser.add_argument("--example", default=EXAMPLE, type=Path)
    args = parser.parse_args(argv)
    existed = args.path.exists()
    done = write(args.path, example=args.example)
    if done:
        what = f"Completed {args.path}" if existed else f"Wrote {args.path} from .env.example"
        print(f"==> {what}: " + "; ".join(done))
    return 0


if __name__ == "__main__":
    sys.exit(main())
