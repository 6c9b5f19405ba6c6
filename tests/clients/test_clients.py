from __future__ import annotations

import pytest
from apiflask import APIBlueprint

from clients.auth import client_auth
from clients.models import ApiClient
from clients.service import hash_token


@pytest.fixture
def protected_app(app):
    bp = APIBlueprint("probe", __name__)

    @bp.get("/probe/regulator")
    @bp.auth_required(client_auth, roles=["regulator"])
    def regulator_only():
        return {"client": client_auth.current_user.id}

    app.register_blueprint(bp)
    return app


def _cli(app, *args):
    return app.test_cli_runner().invoke(args=list(args), catch_exceptions=False)


def test_cli_create_prints_token_on_last_line_and_stores_only_its_hash(protected_app, db_session):
    result = _cli(protected_app, "clients", "create", "--name", "Ministry", "--role", "regulator")
    assert result.exit_code == 0
    token = result.output.strip().splitlines()[-1]
    assert token.startswith("lvs_") and len(token) > 40
    stored = db_session.query(ApiClient).one()
    assert stored.token_hash == hash_token(token)
    assert token not in repr(vars(stored))

    http = protected_app.test_client()
    ok = http.get("/probe/regulator", headers={"Authorization": f"Bearer {token}"})
    assert ok.status_code == 200
    assert ok.get_json() == {"client": stored.id}


def test_revoked_token_is_unauthenticated(protected_app):
    created = _cli(protected_app, "clients", "create", "--name", "HR", "--role", "regulator")
    token = created.output.strip().splitlines()[-1]
    client_id = created.output.split()[1]
    listed = _cli(protected_app, "clients", "list")
    assert client_id in listed.output and "active" in listed.output

    revoke = _cli(protected_app, "clients", "revoke", client_id)
    assert revoke.exit_code == 0
    response = protected_app.test_client().get(
        "/probe/regulator", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 401
    assert response.get_json()["code"] == "unauthenticated"
    assert "revoked" in _cli(protected_app, "clients", "list").output


@pytest.mark.parametrize("header", [None, "Bearer ", "Bearer lvs_unknown", "Basic abc", "lvs_x"])
def test_missing_or_unknown_token_is_401(protected_app, header):
    headers = {"Authorization": header} if header is not None else {}
    response = protected_app.test_client().get("/probe/regulator", headers=headers)
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["code"] == "unauthenticated"


def test_wrong_role_is_403(protected_app, make_client):
    _, headers = make_client("verifier")
    response = protected_app.test_client().get("/probe/regulator", headers=headers)
    assert response.status_code == 403
    assert response.get_json()["code"] == "forbidden"


def test_unknown_role_is_rejected_by_cli(app):
    result = app.test_cli_runner().invoke(
        args=["clients", "create", "--name", "x", "--role", "admin"]
    )
    assert result.exit_code != 0


def test_revoking_unknown_client_is_a_clear_cli_error(app):
    result = app.test_cli_runner().invoke(args=["clients", "revoke", "nope"])
    assert result.exit_code != 0
    assert "No such client" in result.output


def test_verifier_audiences_are_registered_at_creation(app, db_session):
    from clients.service import client_audiences

    result = _cli(
        app,
        "clients",
        "create",
        "--name",
        "Telemed",
        "--role",
        "verifier",
        "--audience",
        "https://telemed.example",
        "--audience",
        "urn:telemed:app",
        "--audience",
        "https://telemed.example",
    )
    assert result.exit_code == 0
    assert "presentation audience: urn:telemed:app" in result.output
    client_id = result.output.split()[1]
    assert client_audiences(db_session, client_id) == ["https://telemed.example", "urn:telemed:app"]


@pytest.mark.parametrize(
    "audience",
    [
        "telemed.example",  # not absolute
        "https://tele med.example",
        "https://telemed.example/\x00",
        "https://telemed.example/\x1b[31m",
        "https://telemed.example/\u202e",
        "https://ｔｅｌｅｍｅｄ.example",
        "https://telemed.example/" + "a" * 500,
        "",
    ],
)
def test_hostile_audiences_are_refused(app, db_session, audience):
    result = app.test_cli_runner().invoke(
        args=["clients", "create", "--name", "X", "--role", "verifier", "--audience", audience]
    )
    assert result.exit_code != 0
    assert "invalid_request" in result.output and "absolute URI" in result.output
    assert db_session.query(ApiClient).count() == 0


def test_audiences_belong_to_verifiers_and_to_one_client_only(app, db_session):
    runner = app.test_cli_runner()
    regulator = runner.invoke(
        args=["clients", "create", "--name", "R", "--role", "regulator", "--audience", "urn:r"]
    )
    assert regulator.exit_code != 0 and "Only verifier clients" in regulator.output
    first = runner.invoke(
        args=["clients", "create", "--name", "A", "--role", "verifier", "--audience", "urn:a"]
    )
    assert first.exit_code == 0
    taken = runner.invoke(
        args=["clients", "create", "--name", "B", "--role", "verifier", "--audience", "urn:a"]
    )
    assert taken.exit_code != 0 and "conflict" in taken.output
    assert db_session.query(ApiClient).count() == 1
