"""Local test servers for the egress tests: HTTPS with a self-signed certificate, and plain HTTP.

Both listen on 127.0.0.1 only. The certificate is made in the test (the
`cryptography` package) for the names the proxy's test hosts file maps to
127.0.0.1; sandboxed code trusts it with `ssl.create_default_context(cadata=PEM)`.
Every request is recorded, so a test can tell that a refused one never arrived.
"""

from __future__ import annotations

import datetime
import http.server
import json
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

BIG_BYTES = 1_000_000


@dataclass
class Servers:
    """The running servers, their certificate, and what they received."""

    https_port: int
    http_port: int
    pem: str
    requests: list[str] = field(default_factory=list)


def certificate(names: list[str], directory: Path) -> tuple[Path, Path, str]:
    """A self-signed certificate for `names`: (cert file, key file, PEM text)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM).decode("ascii")
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_text(pem, encoding="utf-8")
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file, pem


def _handler(record: list[str]) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            record.append(f"{self.headers.get('Host')}{self.path}")
            if self.path == "/big":
                body = b"z" * BIG_BYTES
            elif self.path.startswith("/bytes/") and self.path[7:].isdigit():
                body = b"z" * min(int(self.path[7:]), 100_000_000)
            else:
                body = json.dumps({"path": self.path, "host": self.headers.get("Host")}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@contextmanager
def serving(names: list[str], directory: Path) -> Iterator[Servers]:
    """An HTTPS server (certificate for `names`) and a plain HTTP one, on 127.0.0.1."""
    cert_file, key_file, pem = certificate(names, directory)
    requests: list[str] = []
    secure = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(requests))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    secure.socket = context.wrap_socket(secure.socket, server_side=True)
    plain = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(requests))
    threads = [
        threading.Thread(target=server.serve_forever, daemon=True) for server in (secure, plain)
    ]
    for thread in threads:
        thread.start()
    try:
        yield Servers(secure.server_address[1], plain.server_address[1], pem, requests)
    finally:
        for server in (secure, plain):
            server.shutdown()
            server.server_close()
