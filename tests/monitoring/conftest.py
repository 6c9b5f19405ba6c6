"""Monitoring fixtures: monitored licences, a real local SET receiver, worker runs.

- ``monitor(verifier, licence)``: starts monitoring as a consented verification would
  (``start_monitoring`` in its own transaction); returns (subscription id, subject).
- ``receiver``: a real HTTP server on 127.0.0.1 that answers with scripted statuses and
  records every request; ``webhook(headers, receiver)`` registers it (the app allows
  http on loopback for these tests, as ``ALLOW_INSECURE_WEBHOOKS=1`` does).
- ``run_worker()``: one ``monitoring worker --once`` run in-process.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from joserfc import jws as rfc_jws
from joserfc.jwk import KeySet

from core import db
from core.signing import get_keyring
from identity import LICENSING_AGENCY, get_identity_platform, verifier_agency
from monitoring.service import start_monitoring
from monitoring.worker import run
from tests.holder.test_holder import bearer, sign_in  # noqa: F401 - shared fixture


@pytest.fixture(autouse=True)
def _monitoring_settings(app):
    app.config.update(
        ALLOW_INSECURE_WEBHOOKS="1",
        MONITORING_RETRY_BASE_SECONDS="0",
        MONITORING_IDLE_SECONDS="0",
    )


@pytest.fixture
def monitor(app):
    def _monitor(verifier, licence) -> tuple[str, str]:
        client, _headers = verifier
        with app.app_context():
            session = db.get_session()
            platform = get_identity_platform()
            holder_code = licence.holder_code
            subject = platform.translate(holder_code, LICENSING_AGENCY, verifier_agency(client.id))
            subscription = start_monitoring(
                session,
                verifier_client_id=client.id,
                verifier_name=client.name,
                subject=subject,
                holder_code=holder_code,
                licence_id=licence.id,
                profession=licence.profession,
                at=datetime.now(UTC),
            )
            session.commit()
            return subscription.id, subject

    return _monitor


@dataclass
class Receiver:
    """Records every POST; answers with ``script`` statuses in turn, then ``default``."""

    server: ThreadingHTTPServer
    script: list[int] = field(default_factory=list)
    default: int = 202
    requests: list[dict] = field(default_factory=list)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/events"

    def tokens(self) -> list[str]:
        return [r["body"] for r in self.requests]


def _handler(receiver_ref: list[Receiver]):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's naming
            receiver = receiver_ref[0]
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode()
            receiver.requests.append(
                {"path": self.path, "content_type": self.headers.get("Content-Type"), "body": body}
            )
            status = receiver.script.pop(0) if receiver.script else receiver.default
            self.send_response(status)
            if 300 <= status < 400:
                self.send_header("Location", "http://127.0.0.1:9/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    return Handler


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    ref: list[Receiver] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(ref))
    ref.append(Receiver(server))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield ref[0]
    server.shutdown()
    server.server_close()


@pytest.fixture
def webhook(http):
    def _register(headers, receiver: Receiver):
        response = http.put("/v1/monitoring/webhook", json={"url": receiver.url}, headers=headers)
        assert response.status_code == 200, response.get_data(as_text=True)

    return _register


@pytest.fixture
def run_worker(app):
    def _run() -> int:
        return run(app, threading.Event(), once=True)

    return _run


@pytest.fixture
def verify_set(app):
    """Verifies a SET against the JWKS with joserfc; returns (header, claims)."""

    def _verify(token: str) -> tuple[dict, dict]:
        with app.app_context():
            keys = KeySet.import_key_set(get_keyring(app).jwks())
        obj = rfc_jws.deserialize_compact(token, keys, algorithms=["ES256"])
        return obj.headers(), json.loads(obj.payload)

    return _verify


def regulator_action(http, headers, licence_id, action, **body):
    body.setdefault("reason", "test")
    response = http.post(f"/v1/licences/{licence_id}/{action}", json=body, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()
