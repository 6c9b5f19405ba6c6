"""The identity-platform interface as the rest of the service sees it."""

from __future__ import annotations

import logging

import pytest
from apiflask import APIBlueprint

from app import create_app
from core.config import ConfigurationError
from core.errors import Conflict, ServiceError
from identity import (
    LICENSING_AGENCY,
    IdentityPlatform,
    get_identity_platform,
    verifier_agency,
)
from identity.errors import (
    CertificateAlreadyRegistered,
    IdentityPlatformConfigurationError,
    InvalidAgencyCode,
    InvalidMyNumber,
)
from seed.identity_platform import EmbeddedIdentityPlatform

PROBLEM = "application/problem+json"


def test_agencies():
    assert LICENSING_AGENCY == "licensing"
    assert verifier_agency("c0ffee") == "verifier:c0ffee"
    assert verifier_agency("a") != verifier_agency("b")
    with pytest.raises(ValueError):
        verifier_agency("")


def test_embedded_is_the_default_and_implements_the_protocol(app):
    assert app.config["IDENTITY_PLATFORM"] == "embedded"
    with app.app_context():
        platform = get_identity_platform()
    assert isinstance(platform, EmbeddedIdentityPlatform)
    assert isinstance(platform, IdentityPlatform)
    assert app.extensions["identity_platform"] is platform


def test_unknown_platform_is_a_clear_startup_error(tmp_path):
    with pytest.raises(IdentityPlatformConfigurationError, match="IDENTITY_PLATFORM='jlis'"):
        create_app({"INSTANCE_PATH": str(tmp_path), "IDENTITY_PLATFORM": "jlis"})


def test_building_the_app_touches_no_identity_file(app):
    instance = app.config["INSTANCE_PATH"]
    from pathlib import Path

    assert not any(p.name.startswith("identity_platform") for p in Path(instance).glob("*"))


def test_errors_are_service_errors_with_stable_codes():
    assert issubclass(InvalidMyNumber, ServiceError)
    assert (InvalidMyNumber.status, InvalidMyNumber.code) == (422, "invalid_my_number")
    assert issubclass(InvalidAgencyCode, ServiceError)
    assert (InvalidAgencyCode.status, InvalidAgencyCode.code) == (400, "invalid_agency_code")
    assert issubclass(CertificateAlreadyRegistered, Conflict)
    assert CertificateAlreadyRegistered.status == 409
    assert InvalidMyNumber(position=3).position == 3


def test_errors_leave_the_service_as_problem_details_without_the_input(app, my_number_factory):
    bp = APIBlueprint("identity_probe", __name__)
    invalid = my_number_factory()[:11] + "x"

    @bp.get("/probe/my-number")
    def my_number():
        get_identity_platform().code_for_my_number(LICENSING_AGENCY, invalid)

    @bp.get("/probe/code")
    def code():
        get_identity_platform().translate("v1.not-a-code", LICENSING_AGENCY, "verifier:x")

    app.register_blueprint(bp)
    http = app.test_client()
    response = http.get("/probe/my-number")
    assert response.status_code == 422 and response.mimetype == PROBLEM
    body = response.get_json(force=True)
    assert body["code"] == "invalid_my_number"
    assert invalid not in response.get_data(as_text=True)

    response = http.get("/probe/code")
    assert response.status_code == 400 and response.mimetype == PROBLEM
    assert response.get_json(force=True)["code"] == "invalid_agency_code"
    assert "not-a-code" not in response.get_data(as_text=True)


def test_readiness_includes_the_identity_platform(http):
    body = http.get("/readyz").get_json(force=True)
    assert "identity_platform" not in body.get("checks", {})


def test_readiness_reports_a_broken_identity_platform(tmp_path, database_url):
    application = create_app(
        {
            "INSTANCE_PATH": str(tmp_path),
            "DATABASE_URL": database_url,
            "IDENTITY_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
        }
    )
    response = application.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json(force=True)["checks"]["identity_platform"] == (
        "identity platform unavailable"
    )


def _install_nothing(_app) -> None:
    """An adapter that forgets to install its platform."""


def test_a_dotted_path_names_the_adapter(tmp_path):
    application = create_app(
        {"INSTANCE_PATH": str(tmp_path), "IDENTITY_PLATFORM": "seed.identity_platform:init_app"}
    )
    assert isinstance(application.extensions["identity_platform"], EmbeddedIdentityPlatform)


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("no.such.module:install", "names no adapter"),
        ("seed.identity_platform:no_such_attribute", "names no adapter"),
        ("seed.identity_platform:__doc__", "is not callable"),
        ("tests.identity.test_interface:_install_nothing", "installed no identity platform"),
    ],
)
def test_an_unusable_adapter_is_a_one_line_configuration_error(tmp_path, value, says):
    with pytest.raises(ConfigurationError, match=f"^IDENTITY_PLATFORM={value!r}.*{says}"):
        create_app({"INSTANCE_PATH": str(tmp_path), "IDENTITY_PLATFORM": value})


def test_the_embedded_stand_in_warns_once_at_start_up(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        create_app({"INSTANCE_PATH": str(tmp_path)})
    warnings = [
        r for r in caplog.records if r.levelno == logging.WARNING and "stand-in" in r.getMessage()
    ]
    assert len(warnings) == 1
    assert "not for production" in warnings[0].getMessage()
