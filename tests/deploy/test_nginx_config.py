"""deploy/nginx/siliconhealth.conf: `nginx -t` accepts it (with a certificate made the installer's way),
and it says what the Django production settings rely on. nginx comes from Debian (.ci/run installs it);
without it a user's run skips, CI fails."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "deploy" / "nginx" / "siliconhealth.conf"


@pytest.fixture
def nginx_t(tmp_path):
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if nginx is None:
        if os.environ.get("CI") == "true":
            pytest.fail("nginx is expected in CI (.ci/run installs Debian's nginx)")
        pytest.skip("nginx is not installed (apt-get install nginx)")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        + ["-days", "2", "-subj", "/CN=clinic.local", "-addext", "subjectAltName=DNS:clinic.local"]
        + ["-keyout", str(tmp_path / "key.pem"), "-out", str(tmp_path / "cert.pem")],
        check=True,
        capture_output=True,
    )

    def check(site_text: str) -> subprocess.CompletedProcess:
        site = site_text.replace("/etc/siliconhealth/tls/", f"{tmp_path}/")
        (tmp_path / "site.conf").write_text(site)
        (tmp_path / "nginx.conf").write_text(
            f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
            f"http {{\n access_log off;\n include {tmp_path}/site.conf;\n}}\n"
        )
        return subprocess.run(
            [
                nginx,
                "-t",
                "-p",
                str(tmp_path),
                "-e",
                str(tmp_path / "error.log"),
                "-c",
                str(tmp_path / "nginx.conf"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )

    return check


def test_nginx_accepts_the_site(nginx_t):
    result = nginx_t(SITE.read_text())
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


def test_nginx_t_would_catch_a_broken_site(nginx_t):
    result = nginx_t(SITE.read_text().replace("proxy_read_timeout 120s;", "proxy_read_timeout 120s"))
    assert result.returncode != 0
    assert "test failed" in result.stderr


def test_the_site_redirects_to_tls_and_tells_django_the_scheme():
    text = SITE.read_text()
    assert re.search(r"listen 80 default_server;\s+listen \[::\]:80 default_server;", text)
    assert "return 301 https://$host$request_uri;" in text
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in text and "TLSv1.1" not in text
    # settings.SECURE_PROXY_SSL_HEADER trusts X-Forwarded-Proto; nginx must set it, never pass it on.
    assert "proxy_set_header X-Forwarded-Proto $scheme;" in text
    assert "proxy_pass http://siliconhealth_web;" in text and "server 127.0.0.1:8000;" in text
    body_limit = int(re.search(r"client_max_body_size (\d+)m;", text).group(1)) * 1024 * 1024
    assert body_limit > 20 * 1024 * 1024  # settings.MAX_UPLOAD_BYTES' default: its message must get through
