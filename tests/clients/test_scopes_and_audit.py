"""Regulator clients scoped to professions (14.21); client creation and revocation and
key rotations are audited through the core hook (14.19)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core import db
from licensing import audit, service
from tests.licensing.helpers import audit_entries, licence_body, register_via_api


def _cli(app, *args):
    return app.test_cli_runner().invoke(args=list(args))


def _create(app, *args) -> tuple[str, dict]:
    result = _cli(app, "clients", "create", *args)
    assert result.exit_code == 0, result.output
    client_id = result.output.split()[1]
    token = result.output.strip().splitlines()[-1]
    return client_id, {"Authorization": f"Bearer {token}"}


@pytest.fixture
def nurse_regulator(app):
    return _create(
        app, "--name", "Nursing board", "--role", "regulator", "--profession", "nurse",
        "--profession", "midwife",
    )  # fmt: skip


def test_a_scoped_regulator_acts_only_on_its_professions(app, http, nurse_regulator, regulator):
    _, headers = nurse_regulator
    mine = register_via_api(http, headers, profession="nurse")
    doctor = register_via_api(http, regulator[1], profession="doctor")

    refused = http.post("/v1/licences", json=licence_body(profession="doctor"), headers=headers)
    assert refused.status_code == 403 and refused.get_json()["code"] == "forbidden"
    assert "midwife, nurse" in refused.get_json()["detail"]

    other = f"/v1/licences/{doctor['licence_id']}"
    until = (service.today() + timedelta(days=2)).isoformat()
    for method, path, body in (
        ("get", other, None),
        ("get", f"{other}/events", None),
        ("post", f"{other}/suspend", {"reason": "x", "until": until}),
        ("post", f"{other}/revoke", {"reason": "x"}),
        ("post", f"{other}/erase", {"reason": "x"}),
        ("get", "/v1/licences?profession=doctor", None),
    ):
        response = getattr(http, method)(path, json=body, headers=headers)
        assert response.status_code == 403, (path, response.get_json())
    assert http.get(other, headers=regulator[1]).get_json()["status"] == "active"

    listed = http.get("/v1/licences", headers=headers).get_json()["licences"]
    assert [lic["licence_id"] for lic in listed] == [mine["licence_id"]]
    revoked = http.post(
        f"/v1/licences/{mine['licence_id']}/revoke", json={"reason": "x"}, headers=headers
    )
    assert revoked.status_code == 200


def test_an_unscoped_regulator_acts_on_every_profession(http, regulator):
    for profession in ("doctor", "nurse", "pharmacist"):
        register_via_api(http, regulator[1], profession=profession)


def test_scopes_are_for_regulators_and_known_professions_only(app):
    unknown = _cli(
        app, "clients", "create", "--name", "x", "--role", "regulator", "--profession", "pilot"
    )
    assert unknown.exit_code != 0 and "the professions are doctor" in unknown.output
    verifier = _cli(
        app, "clients", "create", "--name", "x", "--role", "verifier", "--profession", "nurse"
    )
    assert verifier.exit_code != 0 and "Only regulator clients" in verifier.output
    listed = _cli(app, "clients", "list")
    assert listed.output == ""


def test_client_names_are_checked_like_any_free_text(app):
    result = _cli(app, "clients", "create", "--name", "HR\u202e", "--role", "verifier")
    assert result.exit_code != 0 and "unprocessable" in result.output


def test_client_creation_and_revocation_are_audited(app, nurse_regulator):
    client_id, _ = nurse_regulator
    assert _cli(app, "clients", "revoke", client_id, "--actor", "ops lead").exit_code == 0
    entries = audit_entries(app)
    assert [(e.action, e.target) for e in entries] == [
        ("client.create", client_id),
        ("client.revoke", client_id),
    ]
    assert entries[0].details == {"role": "regulator", "professions": ["midwife", "nurse"]}
    assert entries[1].actor == "ops lead"
    # Revoking again changes nothing and records nothing.
    assert _cli(app, "clients", "revoke", client_id).exit_code == 0
    assert len(audit_entries(app)) == 2
    with app.app_context():
        assert audit.verify_chain(db.get_session()) is None


def test_signing_key_rotation_is_audited(app):
    result = _cli(app, "signing", "rotate", "--actor", "key custodian")
    assert result.exit_code == 0, result.output
    (entry,) = audit_entries(app)
    assert entry.action == "signing_key.rotate" and entry.actor == "key custodian"
    assert entry.details["active"] in result.output and entry.details["retired"] in result.output


def test_identity_key_rotation_is_audited(app, identity_platform):
    result = _cli(app, "identity-platform", "rotate-keys", "--actor", "key custodian")
    assert result.exit_code == 0, result.output
    (entry,) = audit_entries(app)
    assert entry.action == "identity_key.rotate" and entry.actor == "key custodian"
    assert entry.details["to_version"] == entry.details["from_version"] + 1


def test_an_audited_action_without_a_recorder_is_refused(app):
    from core import audit as hook

    with app.app_context():
        recorder = app.extensions.pop("audit_recorder")
        try:
            with pytest.raises(RuntimeError):
                hook.record(db.get_session(), actor="x", action="a", target="t", details={})
        finally:
            app.extensions["audit_recorder"] = recorder
