"""The framework-free floor: the least CPU one verification can cost, vs ``GET /healthz``.

A verification has essential work no implementation can skip: decoding the body and the
JWS, loading the x5c certificates, path validation (cryptography's verifier, called as
the pipeline calls it), the RS256 signature check, the SQL statements of a verification
(client, CRL state, card holder, licences, the consuming UPDATE, the access record, the
challenge's answer and the COMMIT), the two agency codes and the ES256 receipt. This does
exactly that work and nothing else: no Flask, no ORM session, no python-jose, no input
validation, no logging.
The SQL is captured from a real verification of the same app and replayed on raw DBAPI
connections with fresh values (each replay consumes a real challenge; that is checked).

``healthz / (healthz + essential work)`` is the in-process throughput ratio an
implementation would reach if everything but the essential work were free; the real
verification is measured alongside, in short alternating runs. On PostgreSQL the
essential work includes the CPU of the server's backend process (same machine).

    .venv/bin/python -m bench.floor [--requests 400] [--database-url URL] [--json PATH]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from sqlalchemy import event, select

from bench.hotpath import add_service_arguments, in_process_service, make_bodies, measure
from core.db import get_db
from core.jws import b64url_encode
from core.signing import get_keyring
from identity import LICENSING_AGENCY, get_identity_platform, verifier_agency
from verification.challenges import nonce_hash
from verification.models import AccessRecord
from verification.trust import get_trust_anchors


def _b64url(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


@dataclass
class Statement:
    licensing: bool  # else the identity platform's store
    sql: str
    params: Any  # a tuple (qmark) or a dict (pyformat), as the driver received it


def capture_verification(app, client, body: str, headers: dict) -> tuple[list[Statement], dict]:
    """The statements one real verification runs on both stores, in order, and its
    response body."""
    with app.app_context():
        engines = {get_db().engine: True, get_identity_platform().engine: False}
    statements: list[Statement] = []

    def record(conn, _cursor, sql, params, _context, _executemany) -> None:
        statements.append(Statement(engines[conn.engine], sql, params))

    for engine in engines:
        event.listen(engine, "before_cursor_execute", record)
    try:
        response = client.post("/v1/verifications", data=body, headers=headers)
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", record)
    if response.status_code != 200 or response.get_json()["outcome"] != "licensed":
        raise RuntimeError(f"the captured verification failed: {response.data[:300]!r}")
    return statements, response.get_json()


def _replace(params: Any, replacements: dict[str, str]) -> Any:
    if isinstance(params, dict):
        return {k: replacements.get(v, v) if isinstance(v, str) else v for k, v in params.items()}
    return tuple(replacements.get(v, v) if isinstance(v, str) else v for v in params)


def _claims(body: str) -> dict:
    return json.loads(_b64url(json.loads(body)["assertion"].split(".")[1]))


class Floor:
    """The essential work of one verification; the SQL is the captured statements."""

    def __init__(self, app, statements: list[Statement], body: str, response: dict) -> None:
        with app.app_context():
            self.anchors = get_trust_anchors(datetime.now(UTC), app)
            self.receipt_key = get_keyring(app).active.private_key
            platform = get_identity_platform()
            engine = get_db().engine
        with engine.connect() as conn:
            record = conn.execute(
                select(AccessRecord.id, AccessRecord.verifier_client_id).where(
                    AccessRecord.verification_id == response["verification_id"]
                )
            ).one()
        self.encoders = [
            platform.crypto.encoder(agency, platform.current_key_version())
            for agency in (LICENSING_AGENCY, verifier_agency(record.verifier_client_id))
        ]
        self.licensing = engine.raw_connection()
        self.identity = platform.engine.raw_connection()
        self.statements = statements
        self.backend_pid = None
        if engine.dialect.name == "postgresql":
            cursor = self.licensing.cursor()
            cursor.execute("SELECT pg_backend_pid()")
            self.backend_pid = cursor.fetchone()[0]
            cursor.close()
            self.licensing.rollback()
        self.captured = {
            "nonce_hash": nonce_hash(_claims(body)["nonce"]),
            "verification_id": response["verification_id"],
            "record_id": record.id,
        }

    def database_server_cpu_s(self) -> float | None:
        """CPU seconds the PostgreSQL backend serving the replays has used (same machine;
        None on SQLite, which runs in this process)."""
        if self.backend_pid is None:
            return None
        fields = Path(f"/proc/{self.backend_pid}/stat").read_text().rsplit(")", 1)[1].split()
        # utime and stime, fields 14 and 15 of proc(5), in clock ticks.
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def close(self) -> None:
        self.licensing.close()
        self.identity.close()

    def __call__(self, body: str) -> None:
        request = json.loads(body)
        header_b64, payload_b64, signature_b64 = request["assertion"].split(".")
        header = json.loads(_b64url(header_b64))
        claims = json.loads(_b64url(payload_b64))
        certificates = [
            x509.load_der_x509_certificate(base64.b64decode(entry)) for entry in header["x5c"]
        ]
        chain = self.anchors.validate_card_chain(
            certificates[0], certificates[1:], datetime.now(UTC)
        )
        chain[0].public_key().verify(
            _b64url(signature_b64),
            f"{header_b64}.{payload_b64}".encode("ascii"),
            padding.PKCS1v15(),
            hashes.SHA256(),
        )
        verification_id = secrets.token_hex(16)
        consumed = self._replay(
            {
                self.captured["nonce_hash"]: nonce_hash(claims["nonce"]),
                self.captured["verification_id"]: verification_id,
                self.captured["record_id"]: secrets.token_hex(16),
            }
        )
        if consumed != 1:
            raise RuntimeError("the replayed UPDATE did not consume the fresh challenge")
        person_id = secrets.token_bytes(16)
        codes = [encode(person_id) for encode in self.encoders]
        signing_input = (
            b64url_encode(json.dumps({"alg": "ES256", "typ": "receipt+jwt"}).encode())
            + "."
            + b64url_encode(
                json.dumps({"verification_id": verification_id, "sub": codes[1]}).encode()
            )
        )
        signature = self.receipt_key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        json.dumps(
            {
                "verification_id": verification_id,
                "receipt": f"{signing_input}.{b64url_encode(signature)}",
            }
        )

    def _replay(self, replacements: dict[str, str]) -> int:
        """Runs the statements with the fresh values; commits only if the UPDATE consumed
        exactly the fresh challenge."""
        consumed = 0
        for statement in self.statements:
            connection = self.licensing if statement.licensing else self.identity
            cursor = connection.cursor()
            cursor.execute(statement.sql, _replace(statement.params, replacements))
            if cursor.description is not None:
                rows = cursor.fetchall()
                if statement.sql.lstrip().upper().startswith("UPDATE"):
                    consumed = len(rows)
            cursor.close()
        self.identity.rollback()
        if consumed == 1:
            self.licensing.commit()
        else:
            self.licensing.rollback()
        return consumed


def cpu_ms(work: Callable[[str], None], bodies: list[str]) -> list[float]:
    costs = []
    for body in bodies:
        started = time.process_time()
        work(body)
        costs.append((time.process_time() - started) * 1000)
    return costs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.floor")
    add_service_arguments(parser, requests=400)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)

    service = in_process_service(args, Path(tempfile.mkdtemp(prefix="lv-floor-")))
    app, client, prepared, headers = service.app, service.client, service.prepared, service.headers
    n = args.requests

    # Warm every cache (CRL set, trust anchors, key versions) first: the capture is the
    # steady state, as under load.
    warm = make_bodies(client, prepared, headers, 30)
    measure(client, "POST", "/v1/verifications", warm, headers, len(warm))
    captured_body = make_bodies(client, prepared, headers, 1)[0]
    statements, response = capture_verification(app, client, captured_body, headers)
    floor = Floor(app, statements, captured_body, response)

    # Short runs of each in turn: long enough that each runs warm, as under load, short
    # enough that a drift in the shared machine's speed hits all three alike (runs of 100
    # were seen to disagree by half).
    cpu_ms(floor, make_bodies(client, prepared, headers, 30))
    run = 20
    healthz: list[float] = []
    full: list[float] = []
    essential: list[float] = []
    server_cpu_s = 0.0
    for _ in range(max(1, n // run)):
        verification_bodies = make_bodies(client, prepared, headers, run)
        floor_bodies = make_bodies(client, prepared, headers, run)
        healthz += measure(client, "GET", "/healthz", None, {}, run)
        full += measure(client, "POST", "/v1/verifications", verification_bodies, headers, run)
        before = floor.database_server_cpu_s()
        essential += cpu_ms(floor, floor_bodies)
        if before is not None:
            server_cpu_s += floor.database_server_cpu_s() - before
    floor.close()

    figures = {
        "database": "postgresql" if floor.backend_pid is not None else "sqlite",
        "statements": len(statements),
        "healthz_cpu_ms": round(statistics.median(healthz), 4),
        "verification_cpu_ms": round(statistics.median(full), 4),
        "floor_cpu_ms": round(statistics.median(essential), 4),
    }
    essential_ms = figures["floor_cpu_ms"]
    if floor.backend_pid is not None:
        server_ms = round(server_cpu_s * 1000 / len(essential), 4)
        figures["floor_database_server_cpu_ms"] = server_ms
        essential_ms += server_ms
    healthz_ms = figures["healthz_cpu_ms"]
    figures["ratio"] = round(healthz_ms / figures["verification_cpu_ms"], 4)
    figures["floor_ratio"] = round(healthz_ms / (healthz_ms + essential_ms), 4)
    server = (
        f" + {figures['floor_database_server_cpu_ms']:.3f} ms in the PostgreSQL server"
        if floor.backend_pid is not None
        else ""
    )
    print(
        f"GET /healthz {healthz_ms:.3f} ms CPU; POST /v1/verifications "
        f"{figures['verification_cpu_ms']:.3f} ms; its essential work alone "
        f"({len(statements)} statements) {figures['floor_cpu_ms']:.3f} ms{server}"
    )
    print(
        f"in-process ratio {figures['ratio']:.3f}; framework-free floor "
        f"healthz/(healthz + essential work) {figures['floor_ratio']:.3f}"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
