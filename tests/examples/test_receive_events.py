"""examples/receive_events.py: a verifier's receiver verifies pushed SETs against the
JWKS with joserfc, acknowledges them and de-duplicates repeated deliveries by jti."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import update

from core import db, jws
from core.signing import SigningKey, get_keyring
from licensing.service import today
from monitoring.models import DeliveryState, MonitoringEvent
from tests.fixtures.monitoring import regulator_action

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "receive_events.py"
STATUS_CHANGED = "urn:licence-verification:event:status-changed"


def _load_example():
    spec = importlib.util.spec_from_file_location("receive_events", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


receive_events = _load_example()


@pytest.fixture
def jwks_file(app, tmp_path) -> Path:
    path = tmp_path / "jwks.json"
    with app.app_context():
        path.write_text(json.dumps(get_keyring(app).jwks()))
    return path


@pytest.fixture
def pushed(app, http, register_licence, regulator, verifier, monitor):
    """A pending status-changed event for ``verifier``."""
    _, regulator_headers = regulator
    licence = register_licence()
    _, subject = monitor(verifier, licence)
    until = (today() + timedelta(days=3)).isoformat()
    regulator_action(http, regulator_headers, licence.id, "suspend", until=until)
    return subject, until


def test_receiver_process_verifies_acknowledges_and_deduplicates(
    app, http, verifier, pushed, jwks_file, tmp_path, run_worker, monitoring_settings
):
    client, headers = verifier
    subject, until = pushed
    process = subprocess.Popen(
        [
            sys.executable,
            "-I",
            str(EXAMPLE),
            "--jwks",
            str(jwks_file),
            "--audience",
            client.id,
            "--issuer",
            app.config["SERVICE_AUDIENCE"],
            "--port",
            "0",
            "--seen",
            str(tmp_path / "seen.sqlite3"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = process.stderr.readline().split()[-1]
        response = http.put("/v1/monitoring/webhook", json={"url": url}, headers=headers)
        assert response.status_code == 200
        assert run_worker() == 1
        # Deliver the same event again, as after a worker crash: acknowledged, not repeated.
        with app.app_context():
            session = db.get_session()
            session.execute(update(MonitoringEvent).values(state=DeliveryState.PENDING))
            session.commit()
        assert run_worker() == 1
        log = http.get("/v1/monitoring/deliveries", headers=headers).get_json()["deliveries"]
        assert [(d["outcome"], d["http_status"]) for d in log] == [("accepted", 202)] * 2
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=10)
    lines = [json.loads(line) for line in output.splitlines()]
    assert len(lines) == 1
    assert lines[0]["sub"] == subject and lines[0]["event"] == STATUS_CHANGED
    assert lines[0]["status"] == "suspended" and lines[0]["suspended_until"] == until


@pytest.fixture
def receiver(app, verifier, jwks_file, tmp_path):
    client, _ = verifier
    return receive_events.Receiver(
        jwks_source=str(jwks_file),
        issuer=app.config["SERVICE_AUDIENCE"],
        audience=client.id,
        seen_path=str(tmp_path / "seen.sqlite3"),
    )


def _claims(app, client_id, **overrides):
    claims = {
        "iss": app.config["SERVICE_AUDIENCE"],
        "aud": client_id,
        "jti": "a" * 32,
        "iat": int(time.time()),
        "sub": "v1.subject",
        "events": {STATUS_CHANGED: {"profession": "nurse", "status": "revoked"}},
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _signed(app, claims, typ="secevent+jwt"):
    with app.app_context():
        return get_keyring(app).sign(claims, typ)


def test_receiver_accepts_once_then_acknowledges_repeats(app, verifier, receiver, capsys):
    client, _ = verifier
    token = _signed(app, _claims(app, client.id)).encode()
    assert receiver.receive("application/secevent+jwt", token) == (202, None)
    assert receiver.receive("application/secevent+jwt; charset=x", token) == (202, None)
    assert len(capsys.readouterr().out.splitlines()) == 1


@pytest.mark.parametrize(
    ("overrides", "err"),
    [
        ({"aud": "another-client"}, "invalid_audience"),
        ({"iss": "urn:someone-else"}, "invalid_issuer"),
        ({"iat": int(time.time()) + 3600}, "invalid_request"),
        ({"iat": "now"}, "invalid_request"),
        ({"jti": None}, "invalid_request"),
        ({"sub": None}, "invalid_request"),
        ({"events": {}}, "invalid_request"),
        ({"events": {"urn:other": {}}}, "invalid_request"),
    ],
)
def test_receiver_refuses_wrong_claims(app, verifier, receiver, overrides, err):
    client, _ = verifier
    token = _signed(app, _claims(app, client.id, **overrides)).encode()
    status, body = receiver.receive("application/secevent+jwt", token)
    assert status == 400 and body["err"] == err


def test_receiver_refuses_forgeries_and_other_media(app, verifier, receiver):
    client, _ = verifier
    claims = _claims(app, client.id)
    good = _signed(app, claims)
    forged_key = SigningKey.from_private_key(ec.generate_private_key(ec.SECP256R1()))
    with app.app_context():
        kid = get_keyring(app).active.kid
    forged = jws.sign(
        claims, forged_key.private_key, "ES256", {"alg": "ES256", "typ": "secevent+jwt", "kid": kid}
    )
    header, payload, signature = good.split(".")
    tampered = f"{header}.{jws.b64url_encode(b'{}')}.{signature}"
    cases = [
        ("application/secevent+jwt", forged.encode(), "invalid_key"),
        ("application/secevent+jwt", tampered.encode(), "invalid_key"),
        ("application/secevent+jwt", _signed(app, claims, typ="JWT").encode(), "invalid_request"),
        ("application/secevent+jwt", b"not a jws", "invalid_request"),
        ("application/secevent+jwt", "ü".encode(), "invalid_request"),
        ("application/json", good.encode(), "invalid_request"),
        (None, good.encode(), "invalid_request"),
    ]
    for content_type, body, err in cases:
        status, error = receiver.receive(content_type, body)
        assert (status, error["err"]) == (400, err), (content_type, body[:20])
