"""Signing key rotation: retired keys stay in the JWKS (and keep verifying our tokens)
until every token they signed has expired, then drop out; no private key is kept."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from core import jws
from core.signing import (
    SigningKeyError,
    get_keyring,
    load_retired_keys,
    prune_retired_keys,
    retired_keys_dir,
    rotate_signing_key,
)
from holder import sd_jwt


def _kids(http) -> list[str]:
    return [key["kid"] for key in http.get("/.well-known/jwks.json").get_json()["keys"]]


@pytest.fixture
def holder_with_credential(http, licensed_holder, holder_audience):
    holder = licensed_holder()
    nonce = http.post("/v1/holder/challenges").get_json()["nonce"]
    token = http.post(
        "/v1/holder/sessions", json={"assertion": holder.sign(nonce, holder_audience)}
    ).get_json()["session_token"]
    credential = http.post(
        "/v1/holder/credentials",
        json={"profession": "doctor"},
        headers={"Authorization": f"Bearer {token}"},
    ).get_json()["credential"]
    return holder, token, credential


def test_rotation_keeps_old_tokens_valid_until_they_expire(
    app, http, holder_with_credential, platform, online_check
):
    holder, session_token, credential = holder_with_credential
    old_kid = jws.parse_compact(sd_jwt.parse(credential).issuer_jwt).header["kid"]
    assert _kids(http) == [old_kid]

    result = app.test_cli_runner().invoke(args=["signing", "rotate"])
    assert result.exit_code == 0, result.output
    assert f"retired {old_kid}" in result.output

    with app.app_context():
        new_kid = get_keyring(app).active.kid
    assert new_kid != old_kid
    assert _kids(http) == [new_kid, old_kid]
    # Tokens signed before the rotation still work: the session and the credential.
    log = http.get("/v1/holder/access-log", headers={"Authorization": f"Bearer {session_token}"})
    assert log.status_code == 200
    response = online_check(platform, credential, holder, disclose=["name"])
    assert response.status_code == 200, response.get_data(as_text=True)
    # New tokens carry the new kid.
    assert jws.parse_compact(response.get_json()["receipt"]).header["kid"] == new_kid

    # Past the retention (longer than any token's life) the old key leaves the JWKS.
    with time_machine.travel(datetime.now(UTC) + timedelta(hours=25, minutes=1)):
        assert _kids(http) == [new_kid]
        with app.app_context():
            assert get_keyring(app).key(old_kid) is None
            assert prune_retired_keys(app.config) == [old_kid]
            assert load_retired_keys(app.config) == []


def test_retention_outlasts_the_longest_credential(app, holder_with_credential):
    _holder, _token, credential = holder_with_credential
    payload = jws.parse_compact(sd_jwt.parse(credential).issuer_jwt).payload
    with app.app_context():
        rotation = rotate_signing_key(app.config)
    assert rotation.publish_until.timestamp() > payload["exp"]


def test_retired_record_holds_no_private_key(app):
    with app.app_context():
        old = get_keyring(app).active.kid
        rotate_signing_key(app.config)
    record = json.loads((retired_keys_dir(app.config) / f"{old}.json").read_text())
    assert record["kid"] == old
    assert set(record["jwk"]) == {"kty", "crv", "x", "y"}
    assert set(record) == {"kid", "jwk", "retired_at", "publish_until"}
    pem_files = list(retired_keys_dir(app.config).iterdir())
    assert all(b"PRIVATE" not in path.read_bytes() for path in pem_files)


def test_rotation_by_another_process_is_picked_up(app, http):
    with app.app_context():
        before = get_keyring(app).active.kid
    # Another process (a CLI) rotates: only the files change.
    rotate_signing_key(dict(app.config))
    with app.app_context():
        after = get_keyring(app).active.kid
    assert after != before
    assert _kids(http) == [after, before]


def test_tampered_retired_record_is_refused(app):
    with app.app_context():
        old = get_keyring(app).active.kid
        rotate_signing_key(app.config)
    path = retired_keys_dir(app.config) / f"{old}.json"
    record = json.loads(path.read_text())
    record["kid"] = "someone-else"
    path.write_text(json.dumps(record))
    with pytest.raises(SigningKeyError):
        load_retired_keys(app.config)


def test_keys_command_lists_published_keys(app):
    runner = app.test_cli_runner()
    assert runner.invoke(args=["signing", "rotate"]).exit_code == 0
    output = runner.invoke(args=["signing", "keys"]).output
    assert "active" in output and "retired, published until" in output
