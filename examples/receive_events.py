#!/usr/bin/env python3
"""Receive licence monitoring events (Security Event Tokens, RFC 8417) pushed by the
service (RFC 8935 style), the way a verifier's HR system would.

Needs only the service's JWKS and a maintained JOSE library (joserfc,
https://jose.authlib.org) -- none of the service's own code. For each POST it:

1. Takes only ``Content-Type: application/secevent+jwt`` bodies of at most 64 KiB.
2. Verifies the SET: ES256 with a key of the JWKS picked by ``kid`` (the JWKS is
   fetched again, at most once a minute, when a new ``kid`` appears: key rotation),
   ``typ`` ``secevent+jwt``, your ``iss`` and ``aud`` (your client id), an integer
   ``iat`` not in the future, a ``jti``, a ``sub`` and exactly one known event.
3. De-duplicates by ``jti``: the service delivers at least once and repeats the same
   ``jti`` on every attempt, so the seen ``jti`` values are kept in a SQLite file.
4. Acknowledges: ``202 Accepted`` for a new or an already seen event (the service then
   stops retrying); ``400`` with ``{"err", "description"}`` for a SET it must not accept.

New events are printed as JSON lines (``{"jti", "sub", "event", ...}``) on stdout:
that is where your own processing would go.

Usage::

    python examples/receive_events.py --jwks http://127.0.0.1:8000/.well-known/jwks.json \\
        --audience YOUR_CLIENT_ID [--issuer urn:licence-verification:local] \\
        [--host 127.0.0.1] [--port 8081] [--seen seen-events.sqlite3]

Then register it: ``PUT /v1/monitoring/webhook {"url": "https://your-host/..."}``
(``http://127.0.0.1:PORT/`` only when the service runs with ALLOW_INSECURE_WEBHOOKS=1).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

DEFAULT_ISSUER = "urn:licence-verification:local"
SET_MEDIA_TYPE = "application/secevent+jwt"
SET_TYPE = "secevent+jwt"
EVENT_PREFIX = "urn:licence-verification:event:"
KNOWN_EVENTS = {EVENT_PREFIX + "status-changed", EVENT_PREFIX + "monitoring-ended"}
MAX_BODY = 64 * 1024
LEEWAY = 60  # seconds of clock skew tolerated
JWKS_REFRESH_SECONDS = 60
MAX_JWKS_BYTES = 1024 * 1024


class Rejected(Exception):
    """The SET must not be accepted; ``err`` is the RFC 8935 error code."""

    def __init__(self, err: str, description: str) -> None:
        super().__init__(description)
        self.err = err
        self.description = description


def load_jwks(source: str) -> dict[str, Any]:
    if source.startswith(("https://", "http://")):
        with urllib.request.urlopen(source, timeout=10) as response:  # noqa: S310 - http(s) only
            return json.loads(response.read(MAX_JWKS_BYTES))
    return json.loads(Path(source).read_text())


class Receiver:
    """Verifies, de-duplicates and acknowledges SETs; thread-safe."""

    def __init__(self, *, jwks_source: str, issuer: str, audience: str, seen_path: str) -> None:
        self.jwks_source = jwks_source
        self.issuer = issuer
        self.audience = audience
        self._lock = threading.Lock()
        self._keys = KeySet.import_key_set(load_jwks(jwks_source))
        self._kids = {key.kid for key in self._keys.keys}
        self._fetched_at = time.monotonic()
        self._seen = sqlite3.connect(seen_path, check_same_thread=False)
        self._seen.execute("CREATE TABLE IF NOT EXISTS seen (jti TEXT PRIMARY KEY, at REAL)")
        self._seen.commit()

    def _key_set(self, kid: Any) -> KeySet:
        with self._lock:
            stale = time.monotonic() - self._fetched_at >= JWKS_REFRESH_SECONDS
            if kid not in self._kids and stale:
                self._keys = KeySet.import_key_set(load_jwks(self.jwks_source))
                self._kids = {key.kid for key in self._keys.keys}
                self._fetched_at = time.monotonic()
            return self._keys

    def verify(self, token: str, now: float | None = None) -> dict[str, Any]:
        """The SET's claims, or Rejected."""
        try:
            header = jws.extract_compact(token.encode("ascii")).headers()
        except (JoseError, ValueError, UnicodeError):
            header = None
        if not isinstance(header, dict) or header.get("typ") != SET_TYPE:
            raise Rejected("invalid_request", "not a secevent+jwt JWS")
        try:
            signed = jws.deserialize_compact(
                token, self._key_set(header.get("kid")), algorithms=["ES256"]
            )
        except (JoseError, ValueError) as error:
            raise Rejected(
                "invalid_key", f"signature does not verify ({type(error).__name__})"
            ) from None
        if set(signed.headers()) - {"alg", "typ", "kid"}:
            raise Rejected("invalid_request", "header members that are not allowed")
        claims = json.loads(signed.payload)
        if not isinstance(claims, dict):
            raise Rejected("invalid_request", "payload is not a JSON object")
        if claims.get("iss") != self.issuer:
            raise Rejected("invalid_issuer", "unexpected iss")
        if claims.get("aud") != self.audience:
            raise Rejected("invalid_audience", "unexpected aud")
        issued = claims.get("iat")
        if not isinstance(issued, int) or isinstance(issued, bool):
            raise Rejected("invalid_request", "iat is not an integer")
        if issued > (now or time.time()) + LEEWAY:
            raise Rejected("invalid_request", "iat is in the future")
        if not isinstance(claims.get("jti"), str) or not isinstance(claims.get("sub"), str):
            raise Rejected("invalid_request", "jti and sub are required")
        events = claims.get("events")
        if not isinstance(events, dict) or len(events) != 1 or not set(events) <= KNOWN_EVENTS:
            raise Rejected("invalid_request", "exactly one known event expected")
        return claims

    def first_time(self, jti: str) -> bool:
        """Records ``jti``; False when it was seen before (a repeated delivery)."""
        with self._lock:
            cursor = self._seen.execute(
                "INSERT OR IGNORE INTO seen (jti, at) VALUES (?, ?)", (jti, time.time())
            )
            self._seen.commit()
            return cursor.rowcount == 1

    def receive(self, content_type: str | None, body: bytes) -> tuple[int, dict[str, Any] | None]:
        """(HTTP status, error body or None) for one POST; prints each new event."""
        if (content_type or "").split(";")[0].strip().lower() != SET_MEDIA_TYPE:
            return 400, {"err": "invalid_request", "description": f"expected {SET_MEDIA_TYPE}"}
        try:
            claims = self.verify(body.decode("ascii"))
        except UnicodeDecodeError:
            return 400, {"err": "invalid_request", "description": "not a compact JWS"}
        except Rejected as rejected:
            return 400, {"err": rejected.err, "description": rejected.description}
        if self.first_time(claims["jti"]):
            [(event, details)] = claims["events"].items()
            line = {"jti": claims["jti"], "sub": claims["sub"], "event": event, **details}
            print(json.dumps(line, ensure_ascii=False), flush=True)
        return 202, None


def make_server(receiver: Receiver, host: str, port: int) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            try:
                length = int(self.headers.get("Content-Length") or "")
            except ValueError:
                length = -1
            if not 0 <= length <= MAX_BODY:
                self._answer(413, {"err": "invalid_request", "description": "body too large"})
                return
            status, error = receiver.receive(
                self.headers.get("Content-Type"), self.rfile.read(length)
            )
            self._answer(status, error)

        def _answer(self, status: int, error: dict[str, Any] | None) -> None:
            body = json.dumps(error).encode() if error else b""
            self.send_response(status)
            if error:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: Any) -> None:
            pass  # new events go to stdout; nothing else

    return ThreadingHTTPServer((host, port), Handler)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jwks", required=True, help="JWKS file or http(s) URL")
    parser.add_argument("--audience", required=True, help="your API client id (the SET aud)")
    parser.add_argument("--issuer", default=DEFAULT_ISSUER)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--seen", default="seen-events.sqlite3", help="SQLite file of seen jti")
    args = parser.parse_args(argv)
    receiver = Receiver(
        jwks_source=args.jwks, issuer=args.issuer, audience=args.audience, seen_path=args.seen
    )
    server = make_server(receiver, args.host, args.port)
    print(
        f"listening on http://{args.host}:{server.server_address[1]}/", file=sys.stderr, flush=True
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
