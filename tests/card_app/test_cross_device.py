"""The cross-device flow end to end over HTTP: HR asks, ``licence-card sign`` answers
from the request URL (a virtual card or a SoftHSM2 token), HR reads the result."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from card_app.cli import main
from card_app.service import Service
from core import jws


@pytest.fixture
def pin_file(tmp_path):
    path = tmp_path / "pin"
    path.write_text("1234\n")
    return path


def _token(headers: dict) -> str:
    return headers["Authorization"].removeprefix("Bearer ")


def _ask(service_url: str, headers: dict, **body) -> dict:
    answer = Service(service_url).call(
        "POST", "/v1/challenges", {"profession": "doctor", **body}, token=_token(headers)
    )
    assert answer.status == 201, answer.body
    return answer.body


def _result(challenge: dict, headers: dict) -> dict:
    service = Service(challenge["status_uri"].split("/v1/")[0])
    answer = service.call("GET", challenge["status_uri"], token=_token(headers))
    assert answer.status == 200, answer.body
    return answer.body


def _card_app(*args: str):
    return CliRunner().invoke(main, list(args), env={"LANG": "C.UTF-8", "LC_ALL": ""})


def test_virtual_card_answers_and_hr_reads_the_result(
    live_service, licensed_holder, verifier, pin_file
):
    holder = licensed_holder("doctor", name="佐藤 花子")
    _, headers = verifier
    challenge = _ask(live_service, headers)
    assert challenge["request_uri"] == f"{live_service}/r/{challenge['challenge_id']}"
    assert _result(challenge, headers)["state"] == "pending"

    answered = _card_app(
        "sign", challenge["request_uri"], "--card", str(holder.card.path),
        "--pin-file", str(pin_file), "--yes", "--service-url", live_service,
    )  # fmt: skip

    assert answered.exit_code == 0, answered.output
    assert "St Luke's HR asks to verify your doctor licence." in answered.output
    assert "Sent. Result: licensed (St Luke's HR)" in answered.output
    assert "佐藤" not in answered.output  # the card app learns the outcome only
    result = _result(challenge, headers)
    assert result["state"] == "completed"
    assert result["verification"]["outcome"] == "licensed"
    assert result["verification"]["holder"]["name"] == "佐藤 花子"

    again = _card_app(
        "sign", challenge["request_uri"], "--card", str(holder.card.path),
        "--pin-file", str(pin_file), "--yes", "--service-url", live_service,
    )  # fmt: skip
    assert again.exit_code == 1
    assert "unknown, expired or already answered" in again.output


def test_softhsm_token_answers_through_pkcs11(
    live_service, licensed_holder, verifier, softhsm_token, tmp_path
):
    holder = licensed_holder("doctor")
    token = softhsm_token(holder.card)
    pin = tmp_path / "token-pin"
    pin.write_text(token.pin)
    _, headers = verifier
    challenge = _ask(live_service, headers, monitoring=True)

    answered = _card_app(
        "sign", challenge["request_uri"], "--pkcs11-module", token.module,
        "--token-label", token.label, "--pin-file", str(pin), "--yes",
        "--consent", "monitoring", "--service-url", live_service,
    )  # fmt: skip

    assert answered.exit_code == 0, answered.output
    assert "They also ask for your consent to:" in answered.output
    result = _result(challenge, headers)
    assert result["state"] == "completed", result
    assert result["verification"]["outcome"] == "licensed"


def test_a_request_from_another_issuer_or_service_is_refused(
    live_service, licensed_holder, verifier, pin_file, stub_service
):
    holder = licensed_holder("doctor")
    _, headers = verifier
    challenge = _ask(live_service, headers)
    card = ["--card", str(holder.card.path), "--pin-file", str(pin_file), "--yes"]

    # The card app is configured for another issuer: the real service is foreign to it.
    foreign_issuer = _card_app(
        "sign", challenge["request_uri"], *card, "--service-url", live_service,
        "--expect-iss", "urn:another-service",
    )  # fmt: skip
    assert foreign_issuer.exit_code == 1
    assert "signed by another service, not urn:another-service" in foreign_issuer.output

    # A look-alike service relays the real request, signed with its own key.
    service = Service(live_service)
    token = service.call("GET", challenge["request_uri"], accept="application/jwt").body
    claims = jws.parse_compact(token).payload
    relayed = stub_service.card_request(
        token=stub_service.sign({**claims, "challenge_id": "relay"})
    )
    refused = _card_app("sign", relayed, *card, "--service-url", live_service)
    assert refused.exit_code == 1
    assert "not from the service the card app trusts" in refused.output

    # The real request, tampered in transit (another verifier name).
    header, payload, signature = token.split(".")
    tampered = jws.parse_compact(token).payload
    tampered["verifier"]["name"] = "Trusted Hospital"
    forged = ".".join([header, jws.b64url_encode(json.dumps(tampered).encode()), signature])
    stub_service.serve_json(
        "/.well-known/jwks.json", service.call("GET", "/.well-known/jwks.json").body
    )
    tampered_url = stub_service.card_request(token=forged)
    refused = _card_app("sign", tampered_url, *card, "--service-url", stub_service.url)
    assert refused.exit_code == 1
    assert "not signed by the service" in refused.output
    assert stub_service.posted == []
    assert _result(challenge, headers)["state"] == "pending"
