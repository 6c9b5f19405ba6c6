"""The audit chain anchored outside the database, free text erasable, and the licence
table reconciled with its events (14.7, 14.8, 15.8 audit show)."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from sqlalchemy import text

from core import db
from licensing import audit, service
from tests.licensing.helpers import audit_entries, run_sql, stored_events


def _cli(app, *args):
    return app.test_cli_runner().invoke(args=list(args))


@pytest.fixture
def history(app, http, regulator, register_licence):
    licence = register_licence()
    until = (service.today() + timedelta(days=5)).isoformat()
    for action, body in (
        ("suspend", {"reason": "inquiry into Dr. Sato's conduct", "until": until}),
        ("reinstate", {"reason": "cleared"}),
    ):
        response = http.post(f"/v1/licences/{licence.id}/{action}", json=body, headers=regulator[1])
        assert response.status_code == 200
    return licence


def _checkpoint(app, tmp_path):
    path = tmp_path / "checkpoint.json"
    result = _cli(app, "audit", "checkpoint", "--out", str(path))
    assert result.exit_code == 0, result.output
    return path


def test_a_checkpoint_verifies_and_its_key_is_outside_the_database(app, history, tmp_path):
    path = _checkpoint(app, tmp_path)
    document = json.loads(path.read_text())
    assert document["seq"] == len(audit_entries(app))
    result = _cli(app, "audit", "verify", "--checkpoint", str(path))
    assert result.exit_code == 0, result.output
    assert f"contains the anchor's entry {document['seq']}" in result.output
    key_file = app.config["AUDIT_CHECKPOINT_KEY_FILE"]
    assert (int(__import__("os").stat(key_file).st_mode) & 0o777) == 0o600
    # New entries after the checkpoint are fine.
    _cli(app, "licences", "revoke", history.id, "--reason", "later")
    assert _cli(app, "audit", "verify", "--checkpoint", str(path)).exit_code == 0


def test_truncation_with_the_head_moved_back_is_detected(app, history, tmp_path):
    path = _checkpoint(app, tmp_path)
    entries = audit_entries(app)
    last, previous = entries[-1], entries[-2]
    run_sql(
        app,
        "DELETE FROM licence_events WHERE licence_id = :id AND reason = 'cleared'",
        id=history.id,
    )
    run_sql(app, "DELETE FROM audit_entries WHERE seq = :seq", seq=last.seq)
    run_sql(
        app,
        "UPDATE audit_chain_head SET seq = :seq, hash = :hash",
        seq=previous.seq,
        hash=previous.hash,
    )
    with app.app_context():
        assert audit.verify_chain(db.get_session()) is None  # consistent with itself...
    result = _cli(app, "audit", "verify", "--checkpoint", str(path))
    assert result.exit_code == 1  # ...but not with the anchor
    assert "newer entries were removed" in result.output
    expect = _cli(app, "audit", "verify", "--expect-head", f"{last.seq}:{last.hash}")
    assert expect.exit_code == 1 and "newer entries were removed" in expect.output


def test_a_rewritten_chain_is_detected(app, history, tmp_path):
    path = _checkpoint(app, tmp_path)
    entries = audit_entries(app)
    # Rebuild every link from entry 2 on with forged details: a self-consistent chain.
    with app.app_context():
        session = db.get_session()
        prev = entries[0].hash
        for entry in entries[1:]:
            details = {**entry.details, "forged": True}
            digest = audit.entry_hash(
                entry.seq,
                prev,
                entry.at,
                entry.actor,
                entry.action,
                entry.target,
                details,
                entry.free_text_digest,
            )
            session.execute(
                text(
                    "UPDATE audit_entries SET details = :d, prev_hash = :p, hash = :h "
                    "WHERE seq = :s"
                ),
                {"d": json.dumps(details), "p": prev, "h": digest, "s": entry.seq},
            )
            prev = digest
        session.execute(text("UPDATE audit_chain_head SET hash = :h"), {"h": prev})
        session.commit()
        assert audit.verify_chain(session) is None
    result = _cli(app, "audit", "verify", "--checkpoint", str(path))
    assert result.exit_code == 1 and "rewritten" in result.output


def test_a_forged_or_foreign_checkpoint_is_refused(app, history, tmp_path):
    path = _checkpoint(app, tmp_path)
    document = json.loads(path.read_text())
    document["seq"] -= 1
    path.write_text(json.dumps(document))
    result = _cli(app, "audit", "verify", "--checkpoint", str(path))
    assert result.exit_code != 0 and "signature does not verify" in result.output
    path.write_text("not json at all")
    assert _cli(app, "audit", "verify", "--checkpoint", str(path)).exit_code != 0
    bad = _cli(app, "audit", "verify", "--expect-head", "12:zz")
    assert bad.exit_code != 0 and "SEQ:HASH" in bad.output


@pytest.mark.parametrize(
    "tamper",
    [
        "UPDATE licences SET status = 'active', suspended_until = NULL, current_slot = 1 "
        "WHERE id = :id",
        "UPDATE licences SET name = 'Someone Else' WHERE id = :id",
        "UPDATE licences SET registration_number = '999999' WHERE id = :id",
        "UPDATE licences SET registered_on = '1999-01-01' WHERE id = :id",
    ],
)
def test_a_licence_row_changed_without_an_event_is_reported(app, http, regulator, tamper):
    from tests.licensing.helpers import register_via_api

    licence = register_via_api(http, regulator[1])
    until = (service.today() + timedelta(days=5)).isoformat()
    http.post(
        f"/v1/licences/{licence['licence_id']}/suspend",
        json={"reason": "inquiry", "until": until},
        headers=regulator[1],
    )
    assert _cli(app, "audit", "verify").exit_code == 0
    run_sql(app, tamper, id=licence["licence_id"])
    result = _cli(app, "audit", "verify")
    assert result.exit_code == 1
    assert f"licence changed without an event: {licence['licence_id']}" in result.output


def test_free_text_is_erased_without_breaking_the_chain(app, history):
    assert any("Dr. Sato" in repr(e.free_text) for e in audit_entries(app))
    result = _cli(app, "audit", "erase-text", "--licence", history.id, "--actor", "dpo")
    assert result.exit_code == 0, result.output
    entries = audit_entries(app)
    assert "Dr. Sato" not in repr([vars(e) for e in entries])
    assert "Dr. Sato" not in repr([vars(e) for e in stored_events(app, history.id)])
    assert entries[-1].action == "licence.erase_text" and entries[-1].actor == "dpo"
    verified = _cli(app, "audit", "verify")
    assert verified.exit_code == 0, verified.output
    shown = _cli(app, "audit", "show", "--licence", history.id)
    assert "(free text erased)" in shown.output


def test_editing_free_text_breaks_the_chain(app, history):
    seq = next(e.seq for e in audit_entries(app) if e.free_text)
    with app.app_context():
        session = db.get_session()
        entry = session.get(audit.AuditEntry, seq)
        entry.free_text = {**entry.free_text, "reason": "something kinder"}
        session.commit()
        assert audit.verify_chain(session) == seq


def test_audit_show_prints_the_trail_filtered(app, history, register_licence):
    other = register_licence()
    shown = _cli(app, "audit", "show", "--licence", history.id)
    assert shown.exit_code == 0
    lines = shown.output.splitlines()
    assert [line.split("\t")[3] for line in lines] == [
        "licence.register",
        "licence.suspend",
        "licence.reinstate",
    ]
    assert other.id not in shown.output and "Dr. Sato" in shown.output
    everything = _cli(app, "audit", "show", "--since", "2000-01-01")
    assert other.id in everything.output
    assert _cli(app, "audit", "show", "--since", "2999-01-01").output == ""


def test_audit_show_as_csv_neutralises_formulas(app, register_licence):
    licence = register_licence()
    _cli(app, "licences", "revoke", licence.id, "--reason", '=HYPERLINK("http://x")')
    result = _cli(app, "audit", "show", "--csv")
    assert result.exit_code == 0
    rows = list(csv.reader(io.StringIO(result.output)))
    assert rows[0][:4] == ["seq", "at", "actor", "action"]
    cells = [cell for row in rows[1:] for cell in row]
    assert not any(cell.startswith(("=", "+", "-", "@")) for cell in cells)
    assert '\'=HYPERLINK("http://x")' in cells


def test_a_wrong_checkpoint_key_is_one_clear_error(app, tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key_file = tmp_path / "wrong.pem"
    app.config["AUDIT_CHECKPOINT_KEY_FILE"] = str(key_file)
    key_file.write_text("garbage")
    result = _cli(app, "audit", "checkpoint")
    assert result.exit_code == 1 and "not a PEM private key" in result.output
    key_file.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    result = _cli(app, "audit", "checkpoint")
    assert result.exit_code == 1 and "must be an Ed25519" in result.output
    assert "Traceback" not in result.output
