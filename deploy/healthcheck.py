"""Container liveness probe: GET /healthz on the local Daphne and exit 0 only on HTTP 200.

Django rejects requests whose Host header is not in ALLOWED_HOSTS (400), so the probe sends the
first entry of DJANGO_ALLOWED_HOSTS (a leading dot or a wildcard becomes a usable name) and
X-Forwarded-Proto: https, the way the proxy in front would. Standard library only.
"""

from __future__ import annotations

import http.client
import os
import sys


def probe_host() -> str:
    """Return a Host header value that the app's ALLOWED_HOSTS accepts."""
    hosts = [h.strip() for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "").split(",") if h.strip()]
    host = hosts[0] if hosts else "localhost"
    if host == "*":
        return "localhost"
    return "probe" + host if host.startswith(".") else host


def main() -> int:
    """Probe the endpoint; print the failure reason for `docker inspect`."""
    port = int(os.environ.get("HEALTHCHECK_PORT", "8000"))
    path = os.environ.get("HEALTHCHECK_PATH", "/healthz")
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=3)
        conn.request("GET", path, headers={"Host": probe_host(), "X-Forwarded-Proto": "https"})
        status = conn.getresponse().status
    except OSError as exc:
        print(f"healthcheck: {exc}")
        return 1
    if status != 200:
        print(f"healthcheck: {path} returned HTTP {status}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
