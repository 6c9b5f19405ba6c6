"""A verifier reads back its own verifications (verification/history.py): the list, one
verification as JSON, and as an HL7 FHIR R5 VerificationResult validated by fhir.resources."""

from __future__ import annotations

import base64
from datetime import date, timedelta

import pytest
from fhir.resources.verificationresult import VerificationResult

from core.signing import get_keyring
from tests.fixtures.monitoring import regulator_action
from tests.fixtures.verification import problem

RECEIPT = "verification-receipt+jwt"
FHIR = {"Accept": "application/fhir+json"}


@pytest.fixture
def two_verifications(http, verifier, regulator, licensed_holder, challenge, verify):
    """A licensed verification, then one of a suspended licence, and a rejected attempt."""
    _, headers = verifier
    _, regulator_headers = regulator
    holder = licensed_holder("doctor")
    answers = []
    for step in ("licensed", "suspended"):
        if step == "suspended":
            until = (date.today() + timedelta(days=5)).isoformat()
            regulator_action(http, regulator_headers, holder.licences[0].id, "suspend", until=until)
        issued = challenge(headers)
        response = verify(headers, holder.sign(issued["nonce"], issued["audience"]))
        assert response.status_code == 200
        answers.append(response.get_json())
    replay = verify(headers, holder.sign(issued["nonce"], issued["audience"]))
    problem(replay, 401, "invalid_nonce")
    return answers


def _claims(app, receipt: str) -> dict:
    with app.app_context():
        return get_keyring().verify(receipt, RECEIPT)


def test_the_list_holds_the_verifiers_own_verifications_oldest_first_with_a_cursor(
    http, verifier, other_verifier, two_verifications
):
    _, headers = verifier
    first = http.get("/v1/verifications?limit=1", headers=headers).get_json()
    assert [v["verification_id"] for v in first["verifications"]] == [
        two_verifications[0]["verification_id"]
    ]
    rest = http.get(
        f"/v1/verifications?limit=1&after={first['next_cursor']}", headers=headers
    ).get_json()
    assert [v["outcome"] for v in rest["verifications"]] == ["suspended"]
    assert rest["verifications"][0]["subject"] == two_verifications[1]["holder"]["subject"]
    last = http.get(f"/v1/verifications?limit=1&after={rest['next_cursor']}", headers=headers)
    assert last.get_json() == {"verifications": [], "next_cursor": None}

    _, other_headers = other_verifier
    assert http.get("/v1/verifications", headers=other_headers).get_json()["verifications"] == []


@pytest.mark.parametrize(
    "query",
    [
        "after=%00",
        "after=not-a-cursor",
        "after=" + "A" * 201,
        "limit=0",
        "limit=10001",
        "limit=99999999999999999999999",
    ],
)
def test_hostile_list_queries_are_refused(http, verifier, query):
    _, headers = verifier
    problem(http.get(f"/v1/verifications?{query}", headers=headers), 400, "invalid_request")


def test_one_verification_reads_back_with_a_receipt_over_the_same_facts(
    app, http, verifier, two_verifications
):
    _, headers = verifier
    original = two_verifications[0]

    again = http.get(f"/v1/verifications/{original['verification_id']}", headers=headers)

    assert again.status_code == 200
    body = again.get_json()
    assert body["subject"] == original["holder"]["subject"]
    assert (body["outcome"], body["profession"], body["checked_at"]) == (
        "licensed",
        "doctor",
        original["checked_at"],
    )
    assert _claims(app, body["receipt"]) == _claims(app, original["receipt"])


def test_the_fhir_form_is_a_valid_r5_verification_result_signed_by_the_receipt(
    app, http, verifier, two_verifications
):
    _, headers = verifier
    licensed, suspended = two_verifications

    response = http.get(
        f"/v1/verifications/{licensed['verification_id']}", headers={**headers, **FHIR}
    )

    assert response.status_code == 200 and response.mimetype == "application/fhir+json"
    resource = VerificationResult.model_validate(response.get_json())
    assert resource.status == "validated"
    assert resource.target[0].identifier.value == licensed["holder"]["subject"]
    assert resource.validationType.coding[0].code == "primary"
    assert resource.primarySource[0].canPushUpdates.coding[0].code == "yes"
    raw = response.get_json()["validator"][0]["attestationSignature"]["data"]
    assert base64.b64decode(raw).decode().count(".") == 2  # the receipt JWS, base64
    signature = resource.validator[0].attestationSignature
    assert signature.sigFormat == "application/jose"
    receipt = signature.data.decode()  # base64Binary, decoded by the model
    assert _claims(app, receipt)["verification_id"] == licensed["verification_id"]

    failed = http.get(
        f"/v1/verifications/{suspended['verification_id']}", headers={**headers, **FHIR}
    ).get_json()
    assert VerificationResult.model_validate(failed).status == "val-fail"


@pytest.mark.parametrize("verification_id", ["0" * 32, "%00" * 32, "../" * 10 + "ab", "A" * 32])
def test_unknown_or_hostile_ids_are_not_found(http, verifier, verification_id):
    _, headers = verifier
    response = http.get(f"/v1/verifications/{verification_id}", headers=headers)
    assert response.status_code in (400, 404)
    assert response.mimetype == "application/problem+json"


def test_another_verifiers_verification_is_not_found(http, other_verifier, two_verifications):
    _, headers = other_verifier
    response = http.get(
        f"/v1/verifications/{two_verifications[0]['verification_id']}", headers={**headers, **FHIR}
    )
    problem(response, 404, "not_found")
