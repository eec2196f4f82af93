"""A loopback Azure Key Vault (secrets REST API over HTTPS) and an App Service identity endpoint.

* ``GET /secrets?api-version=...``: list secrets; ``GET /secrets/{name}/?api-version=...``: get one.
  A request without a bearer token gets Key Vault's 401 challenge, as the real service answers, so
  the SDK's challenge authentication runs for real.
* ``GET /msi/token?resource=...`` (plain HTTP, as App Service's local endpoint is): the managed
  identity token endpoint that ``DefaultAzureCredential`` calls when ``IDENTITY_ENDPOINT`` and
  ``IDENTITY_HEADER`` are set.

The TLS certificate is self-signed, made by the test, for ``localhost`` and ``kv.localhost``;
tests point ``REQUESTS_CA_BUNDLE`` at it.
"""

from __future__ import annotations

import datetime
import json
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["IdentityServer", "KeyVaultServer", "self_signed_certificate"]

TOKEN = "kv-test-access-token"


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for localhost and kv.localhost, and its key, written to ``directory``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    # OpenSSL does not match a wildcard directly under a one-label name: list the host itself.
    names = [x509.DNSName("localhost"), x509.DNSName("kv.localhost")]
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self.server.owner.handle(self)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: Any


class KeyVaultServer:
    """Secrets by name, served over HTTPS on 127.0.0.1; every request is recorded."""

    def __init__(self, cert: Path, key: Path, secrets: dict[str, str]) -> None:
        self.secrets = dict(secrets)
        self.requests: list[tuple[str, dict[str, str]]] = []
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def url(self, host: str = "kv.localhost") -> str:
        return f"https://{host}:{self.port}"

    def start(self) -> KeyVaultServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def handle(self, handler: _Handler) -> None:
        split = urlsplit(handler.path)
        headers = {k.lower(): v for k, v in handler.headers.items()}
        self.requests.append((split.path, headers))
        if headers.get("authorization") != f"Bearer {TOKEN}":
            challenge = (
                'Bearer authorization="https://login.microsoftonline.com/tenant", '
                f'resource="https://localhost:{self.port}"'
            )
            handler._send(401, {"error": {"code": "Unauthorized"}}, {"WWW-Authenticate": challenge})
            return
        parts = [p for p in split.path.split("/") if p]
        base = self.url()
        if parts == ["secrets"]:
            items = [
                {"id": f"{base}/secrets/{name}", "attributes": {"enabled": True}}
                for name in self.secrets
            ]
            handler._send(200, {"value": items, "nextLink": None})
        elif len(parts) >= 2 and parts[0] == "secrets" and parts[1] in self.secrets:
            name = parts[1]
            handler._send(
                200,
                {
                    "value": self.secrets[name],
                    "id": f"{base}/secrets/{name}/0123456789abcdef",
                    "attributes": {"enabled": True},
                },
            )
        else:
            handler._send(404, {"error": {"code": "SecretNotFound", "message": "not found"}})

    def gets(self, name: str) -> int:
        """How many authorised requests fetched the secret ``name``."""
        return sum(
            1
            for path, headers in self.requests
            if path.rstrip("/").split("/")[-1] == name and "authorization" in headers
        )


class IdentityServer:
    """App Service's managed identity endpoint on plain HTTP loopback."""

    def __init__(self) -> None:
        self.requests: list[dict[str, list[str]]] = []
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/msi/token"

    def start(self) -> IdentityServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def handle(self, handler: _Handler) -> None:
        query = parse_qs(urlsplit(handler.path).query)
        self.requests.append(query)
        handler._send(
            200,
            {
                "access_token": TOKEN,
                "expires_on": str(int(time.time()) + 3600),
                "resource": query.get("resource", [""])[0],
                "token_type": "Bearer",
            },
        )
