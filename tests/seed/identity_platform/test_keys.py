"""Master keys: file or environment variable, created once, checked against the store."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from app import create_app
from identity import LICENSING_AGENCY, get_identity_platform
from identity.errors import IdentityKeyError
from seed.identity_platform.keys import (
    ENV_VAR,
    MasterKeySource,
    fingerprint,
    new_master_key,
    parse_env_keys,
)


def _app(database_url, instance: Path, **config):
    return create_app(
        {"INSTANCE_PATH": str(instance), "DATABASE_URL": database_url, "TESTING": True, **config}
    )


def _code(application, my_number: str) -> str:
    with application.app_context():
        return get_identity_platform().code_for_my_number(LICENSING_AGENCY, my_number)


def test_key_file_is_created_on_first_use_private_and_kept(
    app, identity_platform, my_number_factory
):
    key_file = Path(app.config["IDENTITY_MASTER_KEY_FILE"])
    assert not key_file.exists()
    number = my_number_factory()
    code = identity_platform.code_for_my_number(LICENSING_AGENCY, number)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    body = json.loads(key_file.read_text())
    assert body["format"] == "identity-platform-master-keys/1"
    assert list(body["keys"]) == ["1"] and len(body["keys"]["1"]) == 43
    assert number not in key_file.read_text()
    # Another app on the same instance (a second worker) uses the same key and store.
    other = _app(app.config["DATABASE_URL"], Path(app.config["INSTANCE_PATH"]))
    assert _code(other, number) == code
    assert json.loads(key_file.read_text()) == body


def test_racing_creators_agree_on_one_key(tmp_path):
    first = MasterKeySource(tmp_path / "k" / "keys.json", None)
    second = MasterKeySource(tmp_path / "k" / "keys.json", None)
    first._create()
    second._create()  # loses the race: must not replace the winner's key
    assert first.load() == second.load()
    assert [p.name for p in (tmp_path / "k").iterdir()] == ["keys.json"]


def test_keys_from_the_environment(tmp_path, database_url, my_number_factory, monkeypatch):
    key = new_master_key()
    monkeypatch.setenv(ENV_VAR, f"1:{key}")
    application = _app(database_url, tmp_path / "instance")
    number = my_number_factory()
    code = _code(application, number)
    assert not Path(application.config["IDENTITY_MASTER_KEY_FILE"]).exists()
    # Same key, same store: same codes (a restarted process).
    assert _code(_app(database_url, tmp_path / "instance"), number) == code
    # The bare form is version 1.
    monkeypatch.setenv(ENV_VAR, key)
    assert _code(_app(database_url, tmp_path / "instance"), number) == code


def test_config_value_wins_over_environment(tmp_path, database_url, monkeypatch, my_number_factory):
    monkeypatch.setenv(ENV_VAR, "not a key")
    application = _app(database_url, tmp_path / "i", IDENTITY_MASTER_KEY=f"1:{new_master_key()}")
    assert _code(application, my_number_factory()).startswith("v1.")


def test_a_different_key_for_an_existing_store_is_refused(
    tmp_path, database_url, my_number_factory, monkeypatch
):
    instance = tmp_path / "instance"
    monkeypatch.setenv(ENV_VAR, f"1:{new_master_key()}")
    _code(_app(database_url, instance), my_number_factory())
    monkeypatch.setenv(ENV_VAR, f"1:{new_master_key()}")
    with pytest.raises(IdentityKeyError, match="does not match"):
        _code(_app(database_url, instance), my_number_factory())


def test_a_lost_key_file_is_detected_not_silently_replaced(
    app, identity_platform, my_number_factory
):
    identity_platform.enrol(my_number_factory())
    Path(app.config["IDENTITY_MASTER_KEY_FILE"]).unlink()
    fresh = _app(app.config["DATABASE_URL"], Path(app.config["INSTANCE_PATH"]))
    with pytest.raises(IdentityKeyError):
        _code(fresh, my_number_factory())
    with fresh.test_client() as http:
        assert http.get("/readyz").get_json(force=True)["checks"]["identity_platform"]


@pytest.mark.parametrize(
    "value",
    [
        "",
        "1:",
        "1:short",
        "0:" + "A" * 43,
        "x:" + "A" * 43,
        "1:" + "A" * 43 + ",1:" + "B" * 43,
        "1:" + "A" * 42 + "!",
        "1:" + "A" * 44,
    ],
)
def test_malformed_environment_keys_are_refused_without_echo(value):
    with pytest.raises(IdentityKeyError) as raised:
        parse_env_keys(value)
    if len(value) > 4:
        assert value not in raised.value.detail


def test_environment_keys_parse():
    a, b = new_master_key(), new_master_key()
    keys = parse_env_keys(f"1:{a}, 2:{b}")
    assert sorted(keys) == [1, 2] and all(len(k) == 32 for k in keys.values())
    assert keys[1] != keys[2]
    assert fingerprint(keys[1]) != fingerprint(keys[2])


@pytest.mark.parametrize(
    "content",
    [
        "",
        "{}",
        '{"format": "other", "keys": {"1": "x"}}',
        '{"format": "identity-platform-master-keys/1", "keys": {}}',
    ],
)
def test_damaged_key_files_are_refused(tmp_path, content):
    path = tmp_path / "keys.json"
    path.write_text(content)
    with pytest.raises(IdentityKeyError):
        MasterKeySource(path, None).load()


def test_environment_keys_cannot_be_extended_by_the_service(tmp_path):
    source = MasterKeySource(tmp_path / "keys.json", f"1:{new_master_key()}")
    assert not source.writable
    with pytest.raises(IdentityKeyError, match=ENV_VAR):
        source.add_version()
    assert not (tmp_path / "keys.json").exists()


def test_new_key_command_prints_a_usable_key(app):
    result = app.test_cli_runner().invoke(args=["identity-platform", "new-key"])
    assert result.exit_code == 0
    key = result.stdout.strip().splitlines()[-1]
    assert parse_env_keys(f"2:{key}")[2]
