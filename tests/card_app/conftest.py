"""Fixtures for the card app: services over real HTTP and SoftHSM2 tokens.

- ``live_service``: the app served on a free loopback port (werkzeug, threaded), with
  ``PUBLIC_BASE_URL`` set to where it listens; yields the base URL.
- ``stub_service``: a small HTTP server that plays a service (or an attacker): it
  publishes a JWKS of its own ES256 key, serves card requests it signs (claims and
  header overridable) and records what the card app posts back.
- ``softhsm_token``: a SoftHSM2 token initialised in the test's own folder
  (``SOFTHSM2_CONF``) holding a card's key, certificate and issuing CA.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from werkzeug.serving import make_server

from core import jws
from core.config import DEFAULT_AUDIENCE
from core.signing import SigningKey

SOFTHSM_MODULE = next(
    (
        path
        for path in (
            "/usr/lib/softhsm/libsofthsm2.so",
            "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
            "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
        )
        if Path(path).exists()
    ),
    None,
)
SO_PIN = "56781234"
TOKEN_PIN = "1234"
#: SoftHSM2 keeps a token's flags in its store as this vendor attribute (unsigned long).
SOFTHSM_TOKEN_FLAGS_ATTRIBUTE = 0x8000534B
CKF_USER_PIN_LOCKED = 0x00040000


@pytest.fixture
def live_service(app) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    url = f"http://127.0.0.1:{server.server_port}"
    app.config["PUBLIC_BASE_URL"] = url
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield url
    server.shutdown()
    thread.join(timeout=5)


# --- the stub service -------------------------------------------------------------------


@dataclass
class StubService:
    url: str
    signing_key: SigningKey
    routes: dict[str, tuple[int, str, bytes]] = field(default_factory=dict)
    posted: list[tuple[str, Any]] = field(default_factory=list)
    issuer: str = DEFAULT_AUDIENCE

    def serve_json(self, path: str, body: Any, status: int = 200) -> None:
        self.routes[path] = (status, "application/json", json.dumps(body).encode())

    def serve_token(self, path: str, token: str, status: int = 200) -> None:
        self.routes[path] = (status, "application/jwt", token.encode())

    def claims(self, **overrides: Any) -> dict[str, Any]:
        challenge_id = secrets.token_hex(8)
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "challenge_id": challenge_id,
            "nonce": secrets.token_urlsafe(16),
            "aud": DEFAULT_AUDIENCE,
            "verifier": {"id": "c" + secrets.token_hex(8), "name": "St Luke's HR"},
            "profession": "doctor",
            "consent": [],
            "response_uri": f"{self.url}/v1/challenges/{challenge_id}/response",
            "iat": now,
            "exp": now + 300,
        }
        claims.update(overrides)
        return claims

    def sign(self, claims: dict[str, Any], **header: Any) -> str:
        headers = {"typ": "card-request+jwt", "kid": self.signing_key.kid, **header}
        return jws.sign(claims, self.signing_key.private_key, "ES256", headers=headers)

    def card_request(self, claims: dict[str, Any] | None = None, token: str | None = None) -> str:
        """Serves a card request (signed ``claims``, or ``token`` as given); returns its URL
        and answers its ``response_uri`` like the service does."""
        claims = claims or self.claims()
        challenge_id = str(claims.get("challenge_id") or secrets.token_hex(8))
        self.serve_token(f"/r/{challenge_id}", token or self.sign(claims))
        name = (claims.get("verifier") or {}).get("name")
        self.serve_json(
            f"/v1/challenges/{challenge_id}/response", {"outcome": "licensed", "verifier": name}
        )
        return f"{self.url}/r/{challenge_id}"


@pytest.fixture
def stub_service() -> Iterator[StubService]:
    key = SigningKey.from_private_key(ec.generate_private_key(ec.SECP256R1()))
    stub: StubService

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _answer(self) -> None:
            status, kind, body = stub.routes.get(
                self.path, (404, "application/problem+json", b'{"code": "not_found"}')
            )
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            self._answer()

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            stub.posted.append((self.path, json.loads(self.rfile.read(length) or b"null")))
            self._answer()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    stub = StubService(f"http://127.0.0.1:{server.server_port}", key)
    stub.serve_json("/.well-known/jwks.json", {"keys": [key.public_jwk()]})
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield stub
    server.shutdown()
    server.server_close()


# --- SoftHSM2 ---------------------------------------------------------------------------


@dataclass
class SoftHsmToken:
    module: str
    label: str
    pin: str
    directory: Path

    def lock(self) -> None:
        """Sets the token's "user PIN locked" flag, as a card's chip does after too many
        wrong PINs. SoftHSM2 counts wrong PINs but never locks by itself, so the test
        writes the flag into the token's store and reloads the module."""
        import pkcs11

        tag = struct.pack(">QQ", SOFTHSM_TOKEN_FLAGS_ATTRIBUTE, 2)
        for store in self.directory.glob("tokens/*/token.object"):
            data = bytearray(store.read_bytes())
            at = data.index(tag) + len(tag)
            (flags,) = struct.unpack(">Q", data[at : at + 8])
            data[at : at + 8] = struct.pack(">Q", flags | CKF_USER_PIN_LOCKED)
            store.write_bytes(bytes(data))
        pkcs11.lib(self.module).reinitialize()


@pytest.fixture
def softhsm_token(tmp_path, monkeypatch) -> Callable[..., SoftHsmToken]:
    """``softhsm_token(issued_card, *, label="card", key_label="auth", with_chain=True)``:
    a fresh token with the card's private key, certificate and (optionally) its issuing CA."""
    if SOFTHSM_MODULE is None or shutil.which("softhsm2-util") is None:
        pytest.fail("SoftHSM2 is not installed: apt-get install softhsm2 (.ci/run does)")
    import pkcs11
    from pkcs11 import Attribute, CertificateType, ObjectClass
    from pkcs11.util.rsa import decode_rsa_private_key

    directory = tmp_path / "softhsm"
    (directory / "tokens").mkdir(parents=True)
    conf = directory / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {directory / 'tokens'}\nobjectstore.backend = file\n"
        "log.level = ERROR\n"
    )
    monkeypatch.setenv("SOFTHSM2_CONF", str(conf))

    def _make(
        issued: Any, *, label: str = "card", key_label: str = "auth", with_chain: bool = True
    ) -> SoftHsmToken:
        subprocess.run(
            [
                "softhsm2-util",
                "--init-token",
                "--free",
                "--label",
                label,
                "--so-pin",
                SO_PIN,
                "--pin",
                TOKEN_PIN,
            ],
            check=True,
            capture_output=True,
            env={**os.environ, "SOFTHSM2_CONF": str(conf)},
        )
        library = pkcs11.lib(SOFTHSM_MODULE)
        library.reinitialize()  # the module reads SOFTHSM2_CONF when initialised
        key_id = b"\x01"
        pkcs1 = issued.private_key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        certificates = [(issued.certificate, key_label, key_id)]
        if with_chain:
            certificates += [
                (ca, f"ca-{n}", bytes([0x10 + n])) for n, ca in enumerate(issued.chain)
            ]
        with library.get_token(token_label=label).open(rw=True, user_pin=TOKEN_PIN) as session:
            session.create_object(
                {
                    **decode_rsa_private_key(pkcs1),
                    Attribute.TOKEN: True,
                    Attribute.PRIVATE: True,
                    Attribute.SENSITIVE: True,
                    Attribute.LABEL: key_label,
                    Attribute.ID: key_id,
                }
            )
            for certificate, cert_label, cert_id in certificates:
                session.create_object(
                    {
                        Attribute.CLASS: ObjectClass.CERTIFICATE,
                        Attribute.CERTIFICATE_TYPE: CertificateType.X_509,
                        Attribute.TOKEN: True,
                        Attribute.LABEL: cert_label,
                        Attribute.ID: cert_id,
                        Attribute.SUBJECT: certificate.subject.public_bytes(),
                        Attribute.VALUE: certificate.public_bytes(serialization.Encoding.DER),
                    }
                )
        return SoftHsmToken(SOFTHSM_MODULE, label, TOKEN_PIN, directory)

    return _make
