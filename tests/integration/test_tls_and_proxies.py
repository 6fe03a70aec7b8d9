"""TLS with HTTP/2 from a certificate and key, and URLs behind a reverse proxy."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from deploy.processes import Nginx
from tests.support.accounts import auth_env, parse_challenge
from tests.support.clients import ClientSandbox, tool_available
from tests.support.images import build_image_layout
from tests.support.observe import wait_for_lines
from tests.support.protocol import push_blob, random_bytes
from tests.support.server import ServerProcess, free_port
from tests.support.tls import CertificateFiles, make_certificates

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> CertificateFiles:
    """A test CA and a server certificate for 127.0.0.1 with a password-protected key."""
    return make_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory, certificates: CertificateFiles) -> Iterator[ServerProcess]:
    """A two-worker server speaking only HTTPS."""
    env = {
        "PORTSIDE_TLS_CERT_FILE": str(certificates.server_cert),
        "PORTSIDE_TLS_KEY_FILE": str(certificates.server_key),
        "PORTSIDE_TLS_KEY_PASSWORD": certificates.key_password,
    }
    server = ServerProcess(
        tmp_path_factory.mktemp("tls-server") / "data", workers=2, env=env, tls_ca=certificates.ca_cert
    ).start()
    try:
        yield server
    finally:
        server.stop()


def test_serve_announces_the_https_url(tls_server: ServerProcess) -> None:
    assert f"Portside serving https://127.0.0.1:{tls_server.port}" in tls_server.log()


def test_http2_is_negotiated_and_a_blob_comes_back(tls_server: ServerProcess, certificates: CertificateFiles) -> None:
    trust = ssl.create_default_context(cafile=certificates.ca_cert)
    data = random_bytes(300_000)
    with httpx.Client(base_url=tls_server.url, verify=trust, http2=True, timeout=30.0) as client:
        digest = push_blob(client, "tls/blobs", data)
        response = client.get(f"/v2/tls/blobs/blobs/{digest}")
    assert response.http_version == "HTTP/2"
    assert response.status_code == 200
    assert response.content == data
    assert response.headers["X-Request-Id"]


def test_plain_http_and_untrusted_certificates_are_refused(tls_server: ServerProcess) -> None:
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://{tls_server.host}/v2/", timeout=5.0)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{tls_server.url}/v2/", timeout=5.0)


needs_skopeo = pytest.mark.skipif(
    not tool_available("skopeo"), reason="skopeo is not installed (apt-get install skopeo)"
)


@needs_skopeo
def test_skopeo_copies_an_image_over_tls_trusting_the_test_ca(
    tls_server: ServerProcess, certificates: CertificateFiles, tmp_path: Path
) -> None:
    cert_dir = tmp_path / "certs"
    cert_dir.mkdir()
    (cert_dir / "ca.crt").write_bytes(certificates.ca_cert.read_bytes())
    image = build_image_layout(tmp_path / "layout", layers=2, layer_size=64 * 1024, seed=8)
    # A sandbox whose registries.conf names another host: TLS to ours is verified as usual.
    with ClientSandbox.create(tmp_path / "clients", "127.0.0.1:9") as sandbox:
        target = f"docker://{tls_server.host}/tls/app:v1"
        source = f"oci:{image.layout}:{image.tag}"
        untrusted = sandbox.skopeo("copy", "--retry-times=0", source, target, check=False)
        assert untrusted.returncode != 0
        assert "certificate" in untrusted.stderr_text
        sandbox.skopeo("copy", "--retry-times=0", "--dest-cert-dir", str(cert_dir), source, target)
        out = tmp_path / "copied"
        sandbox.skopeo("copy", "--retry-times=0", "--src-cert-dir", str(cert_dir), target, f"oci:{out}:v1")
    trust = ssl.create_default_context(cafile=certificates.ca_cert)
    response = httpx.get(
        f"{tls_server.url}/v2/tls/app/manifests/v1",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
        verify=trust,
    )
    assert response.headers["Docker-Content-Digest"] == image.manifest_digest
    assert (out / "blobs" / "sha256" / image.manifest_digest.removeprefix("sha256:")).exists()


# Reverse proxy

NGINX_TEMPLATE = """
worker_processes 1;
pid @PREFIX@/nginx.pid;
error_log @PREFIX@/error.log warn;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path @PREFIX@/client_body;
    proxy_temp_path @PREFIX@/proxy;
    fastcgi_temp_path @PREFIX@/fastcgi;
    uwsgi_temp_path @PREFIX@/uwsgi;
    scgi_temp_path @PREFIX@/scgi;
    upstream portside {
@BACKENDS@
    }
    server {
        listen 127.0.0.1:@PORT@;
        location / {
            proxy_pass http://portside;
            proxy_http_version 1.1;
            # As a TLS-terminating proxy for registry.example.test would send them.
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-Proto https;
            proxy_set_header X-Forwarded-Host registry.example.test;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        }
    }
}
"""


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, Nginx]]:
    """A token-auth server trusting only 127.0.0.1 as a proxy, and nginx on 127.0.0.1 in front of it."""
    root = tmp_path_factory.mktemp("proxied")
    env = auth_env("token", trusted_proxies='["127.0.0.1"]')
    server = ServerProcess(root / "data", workers=1, env=env).start()
    template = root / "nginx.conf.template"
    template.write_text(NGINX_TEMPLATE)
    nginx = None
    try:
        nginx = Nginx(template, root / "nginx", [server.host]).start()
        yield server, nginx
    finally:
        if nginx is not None:
            nginx.stop()
        server.stop()


def _from(address: str, base_url: str) -> httpx.Client:
    return httpx.Client(base_url=base_url, transport=httpx.HTTPTransport(local_address=address), timeout=30.0)


def _realm(response: httpx.Response) -> str:
    assert response.status_code == 401
    return parse_challenge(response.headers["WWW-Authenticate"])[1]["realm"]


def test_token_realm_uses_the_scheme_and_host_the_proxy_reports(proxied: tuple[ServerProcess, Nginx]) -> None:
    server, nginx = proxied
    with _from("127.0.0.3", nginx.url) as client:
        response = client.get("/v2/", headers={"X-Request-Id": "through-proxy"})
    assert _realm(response) == "https://registry.example.test/token"
    # The client address is the one the proxy saw, not the proxy's.
    assert server.log_path is not None
    [line] = wait_for_lines(server.log_path, "through-proxy")
    assert line["client"] == "127.0.0.3"


def test_forwarded_headers_from_an_untrusted_address_are_ignored(proxied: tuple[ServerProcess, Nginx]) -> None:
    server, _ = proxied
    forged = {
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "evil.example",
        "X-Forwarded-For": "203.0.113.9",
        "Forwarded": 'for=203.0.113.9;proto=https;host="evil.example"',
        "X-Request-Id": "forged-direct",
    }
    with _from("127.0.0.2", server.url) as client:
        response = client.get("/v2/", headers=forged)
    assert _realm(response) == f"http://{server.host}/token"
    assert server.log_path is not None
    [line] = wait_for_lines(server.log_path, "forged-direct")
    assert line["client"] == "127.0.0.2"


def test_rfc7239_forwarded_header_from_a_trusted_proxy_is_honoured(proxied: tuple[ServerProcess, Nginx]) -> None:
    server, _ = proxied
    with _from("127.0.0.1", server.url) as client:
        forwarded = 'for="[2001:db8::7]:4711";proto=https;host=hub.example:8443'
        response = client.get("/v2/", headers={"Forwarded": forwarded})
    assert _realm(response) == "https://hub.example:8443/token"


def test_token_endpoint_through_the_proxy_serves_tokens(proxied: tuple[ServerProcess, Nginx]) -> None:
    _, nginx = proxied
    with _from("127.0.0.4", nginx.url) as client:
        realm = _realm(client.get("/v2/"))
        # The realm is the public URL; behind the proxy the same path reaches the token server.
        token = client.get(realm.replace("https://registry.example.test", ""), params={"service": "portside"})
    assert token.status_code == 200
    assert token.json()["token"]


def test_a_wrong_key_password_stops_serve_with_a_clear_error(certificates: CertificateFiles, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PORTSIDE_TLS_CERT_FILE": str(certificates.server_cert),
        "PORTSIDE_TLS_KEY_FILE": str(certificates.server_key),
        "PORTSIDE_TLS_KEY_PASSWORD": "not-the-password",
    }
    done = subprocess.run(
        [sys.executable, "-m", "portside", "serve", "--port", str(free_port()), "--data-dir", str(tmp_path / "data")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert "cannot decrypt tls_key_file" in done.stderr
