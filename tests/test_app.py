from __future__ import annotations

from app import create_app
from core.config import DEFAULT_AUDIENCE, settings_from_env


def test_defaults_are_the_embedded_setup(tmp_path, monkeypatch):
    for name in (
        "DATABASE_URL",
        "SERVICE_AUDIENCE",
        "CARD_TRUST_ANCHORS",
        "IDENTITY_PLATFORM",
        "SIGNING_KEY_FILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path))
    settings = settings_from_env()
    assert settings["DATABASE_URL"] == f"sqlite:///{tmp_path / 'licensing.sqlite3'}"
    assert settings["SERVICE_AUDIENCE"] == DEFAULT_AUDIENCE
    assert settings["IDENTITY_PLATFORM"] == "embedded"
    assert settings["SIGNING_KEY_FILE"].startswith(str(tmp_path))
    assert settings["CARD_TRUST_ANCHORS"].startswith(str(tmp_path))
    assert settings["MAX_CONTENT_LENGTH"] == 64 * 1024


def test_environment_switches_to_postgresql(tmp_path, monkeypatch):
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    monkeypatch.setenv("SERVICE_AUDIENCE", "urn:example:hospital")
    application = create_app()
    assert application.config["DATABASE_URL"].startswith("postgresql://")
    assert application.extensions["db"].engine.dialect.name == "postgresql"
    assert application.extensions["db"].engine.dialect.driver == "psycopg"
    assert application.config["SERVICE_AUDIENCE"] == "urn:example:hospital"


def test_explicit_config_overrides_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("SERVICE_AUDIENCE", "urn:from-env")
    application = create_app({"INSTANCE_PATH": str(tmp_path), "SERVICE_AUDIENCE": "urn:explicit"})
    assert application.config["SERVICE_AUDIENCE"] == "urn:explicit"


def test_factory_builds_independent_apps(tmp_path):
    first = create_app({"INSTANCE_PATH": str(tmp_path / "a")})
    second = create_app({"INSTANCE_PATH": str(tmp_path / "b")})
    assert first is not second
    assert first.config["DATABASE_URL"] != second.config["DATABASE_URL"]


def test_health_and_openapi(http):
    assert http.get("/healthz").get_json() == {"status": "ok"}
    spec = http.get("/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    assert "/healthz" in spec["paths"] and "/readyz" in spec["paths"]


def test_readyz_reports_database(http):
    response = http.get("/readyz")
    # Other readiness checks (CRL freshness) may fail in a bare app; the DB one must pass.
    body = response.get_json(force=True)
    assert "database" not in body.get("checks", {})


def test_readyz_fails_without_database(tmp_path):
    application = create_app(
        {"INSTANCE_PATH": str(tmp_path), "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"}
    )
    response = application.test_client().get("/readyz")
    assert response.status_code == 503
    body = response.get_json(force=True)
    assert body["code"] == "unavailable"
    assert body["checks"]["database"] == "database unreachable"


def test_trust_anchors_follow_the_card_authority_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("CARD_TRUST_ANCHORS", raising=False)
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("CARD_AUTHORITY_DIR", str(tmp_path / "ca"))
    settings = settings_from_env()
    assert settings["CARD_TRUST_ANCHORS"] == str(tmp_path / "ca" / "trust-anchors.pem")


def test_every_default_lives_in_the_config(tmp_path, monkeypatch):
    from core.config import DEFAULTS, UNSET_BY_DEFAULT

    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://licences.example")
    monkeypatch.delenv("STATUS_LIST_TTL", raising=False)
    settings = settings_from_env({"HOLDER_RATE_LIMIT_SESSIONS": "1 per minute"})
    assert set(DEFAULTS) | set(UNSET_BY_DEFAULT) <= set(settings)
    assert settings["PUBLIC_BASE_URL"] == "https://licences.example"
    assert settings["STATUS_LIST_TTL"] == 60
    assert settings["SIGNING_KEY_RETENTION"] == 25 * 3600
    assert settings["SIGNING_RETIRED_KEYS_DIR"] == str(tmp_path / "retired-signing-keys")
    assert settings["HOLDER_RATE_LIMIT_SESSIONS"] == "1 per minute"
