"""nginx: `nginx -t` on the real configs (upstreams made resolvable); the websocket location."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.deploy._common import (
    DEPLOY,
    NGINX,
    run,
)

# --------------------------------------------------------------------------------------------
# nginx
# --------------------------------------------------------------------------------------------

needs_nginx = pytest.mark.skipif(NGINX is None, reason="nginx is not installed (nginx-light)")


def nginx_test(conf: Path, prefix: Path) -> None:
    result = run(
        [NGINX, "-t", "-q", "-p", str(prefix), "-e", str(prefix / "error.log"), "-c", str(conf)]
    )
    assert result.returncode == 0, result.stderr


@needs_nginx
def test_nginx_compose_config_passes_nginx_t(tmp_path):
    text = (DEPLOY / "nginx.conf").read_text()
    assert "server web:8000" in text
    text = text.replace("server web:8000", "server 127.0.0.1:18000")
    text = text.replace(
        "/etc/nginx/voice-locations.conf", str(DEPLOY / "nginx" / "voice-locations.conf")
    )
    text = text.replace("pid /tmp/nginx.pid;", f"pid {tmp_path / 'nginx.pid'};")
    conf = tmp_path / "nginx.conf"
    conf.write_text(text)
    nginx_test(conf, tmp_path)


@needs_nginx
@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is needed for a test cert")
def test_nginx_bare_host_site_passes_nginx_t(tmp_path):
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    made = run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=voice.example.com", "-keyout", str(key), "-out", str(cert)]
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    site = (DEPLOY / "nginx-host.conf").read_text()
    site = site.replace("/etc/letsencrypt/live/voice.example.com/fullchain.pem", str(cert))
    site = site.replace("/etc/letsencrypt/live/voice.example.com/privkey.pem", str(key))
    (tmp_path / "snippets").mkdir()
    shutil.copy(DEPLOY / "nginx" / "voice-locations.conf", tmp_path / "snippets")
    (tmp_path / "site.conf").write_text(site)
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        f"pid {tmp_path / 'nginx.pid'};\nevents {{}}\n"
        "http {\n  include /etc/nginx/mime.types;\n  include site.conf;\n}\n"
    )
    nginx_test(conf, tmp_path)


def _location(text: str, name: str) -> str:
    match = re.search(r"location\s+" + re.escape(name) + r"\s*\{(.*?)\n\}", text, re.S)
    assert match, f"no location {name}"
    return match.group(1)


def test_nginx_websocket_location_upgrades_and_forwards():
    text = (DEPLOY / "nginx" / "voice-locations.conf").read_text()
    ws = _location(text, "/ws/")
    for directive in (
        "proxy_pass http://daphne;",
        "proxy_http_version 1.1;",
        "proxy_set_header Upgrade $http_upgrade;",
        "proxy_set_header Connection $connection_upgrade;",
        "proxy_set_header X-Forwarded-Proto $scheme;",
        "proxy_set_header Host $http_host;",  # with its port: same-origin checks
    ):
        assert directive in ws, directive
    assert re.search(r"proxy_set_header X-Forwarded-For \$\S+;", ws)
    timeout = re.search(r"proxy_read_timeout (\d+)s;", ws)
    assert timeout
    assert int(timeout.group(1)) >= 3600
    size = re.search(r"client_max_body_size (\d+)m;", text)
    assert size
    assert 1 <= int(size.group(1)) <= 20
    for conf in ("nginx.conf", "nginx-host.conf"):
        body = (DEPLOY / conf).read_text()
        assert re.search(r"map \$http_upgrade \$connection_upgrade", body), conf
        assert re.search(r"location /static/ \{\s*alias \S+/;", body), conf
        assert "upstream daphne" in body, conf
        assert "voice-locations.conf" in body, conf
