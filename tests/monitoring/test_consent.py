"""Monitoring starts only from a verification whose card signed the consent the challenge
asked for, in the verification's own transaction (issue 18, item 1), end to end."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from core import db
from licensing.service import today
from monitoring.models import Subscription
from tests.fixtures.holder import bearer
from tests.fixtures.monitoring import regulator_action


def _ask(http, headers, *, monitoring: bool, profession: str = "doctor") -> dict:
    body = {"profession": profession, "monitoring": monitoring}
    response = http.post("/v1/challenges", json=body, headers=headers)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def _subscriptions(app) -> int:
    with app.app_context():
        return db.get_session().scalar(select(func.count()).select_from(Subscription))


def test_card_app_consent_starts_monitoring_and_events_follow(
    app,
    http,
    verifier,
    licensed_holder,
    audience,
    regulator,
    sign_in,
    run_worker,
    verify_set,
    receiver,
    webhook,
):
    client, headers = verifier
    _, regulator_headers = regulator
    holder = licensed_holder("doctor")
    issued = _ask(http, headers, monitoring=True)
    assertion = holder.sign(issued["nonce"], audience, verifier=client.id, consent=["monitoring"])
    response_uri = "/v1/challenges/" + issued["challenge_id"] + "/response"
    answer = http.post(response_uri, json={"assertion": assertion})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    status = http.get(f"/v1/challenges/{issued['challenge_id']}", headers=headers).get_json()
    subject = status["verification"]["holder"]["subject"]

    # The holder sees it (and when it started, in the access log).
    token = sign_in(holder)
    listing = http.get("/v1/holder/monitoring", headers=bearer(token)).get_json()["monitoring"]
    assert [(m["verifier"], m["profession"]) for m in listing] == [(client.name, "doctor")]
    log = http.get("/v1/holder/access-log", headers=bearer(token)).get_json()["entries"]
    assert "monitoring_started" in {entry["outcome"] for entry in log}

    # The verifier is told of the next change, keyed by the subject it got.
    webhook(headers, receiver)
    until = (today() + timedelta(days=7)).isoformat()
    regulator_action(http, regulator_headers, holder.licences[0].id, "suspend", until=until)
    assert run_worker() == 1
    _, claims = verify_set(receiver.tokens()[0])
    assert claims["sub"] == subject and claims["aud"] == client.id
    roster = http.get("/v1/monitoring/subjects", headers=headers).get_json()["subjects"]
    assert [(s["subject"], s["status"]) for s in roster] == [(subject, "suspended")]


@pytest.mark.parametrize(("asked", "signed"), [(False, ["monitoring"]), (True, ())])
def test_no_monitoring_without_both_the_request_and_the_signed_consent(
    app, http, verifier, licensed_holder, audience, asked, signed
):
    client, headers = verifier
    holder = licensed_holder()
    issued = _ask(http, headers, monitoring=asked)
    assertion = holder.sign(issued["nonce"], audience, verifier=client.id, consent=signed)
    response = http.post("/v1/verifications", json={"assertion": assertion}, headers=headers)
    assert response.status_code == 200 and response.get_json()["outcome"] == "licensed"
    assert _subscriptions(app) == 0


def test_direct_flow_with_consent_starts_monitoring_once(
    app, http, verifier, licensed_holder, audience
):
    client, headers = verifier
    holder = licensed_holder()
    for _ in range(2):
        issued = _ask(http, headers, monitoring=True)
        assertion = holder.sign(
            issued["nonce"], audience, verifier=client.id, consent=["monitoring"]
        )
        response = http.post("/v1/verifications", json={"assertion": assertion}, headers=headers)
        assert response.status_code == 200, response.get_data(as_text=True)
    assert _subscriptions(app) == 1


def test_a_rejected_verification_starts_nothing(
    app, http, verifier, other_verifier, licensed_holder, audience
):
    client, headers = verifier
    other, _ = other_verifier
    holder = licensed_holder()
    issued = _ask(http, headers, monitoring=True)
    # Signed for another verifier: refused, and the consent is not recorded.
    assertion = holder.sign(issued["nonce"], audience, verifier=other.id, consent=["monitoring"])
    response = http.post("/v1/verifications", json={"assertion": assertion}, headers=headers)
    assert response.status_code == 401
    assert _subscriptions(app) == 0


def test_consent_for_a_profession_the_holder_lacks_starts_nothing(
    app, http, verifier, licensed_holder, audience
):
    client, headers = verifier
    holder = licensed_holder("nurse")
    issued = _ask(http, headers, monitoring=True, profession="doctor")
    assertion = holder.sign(issued["nonce"], audience, verifier=client.id, consent=["monitoring"])
    response = http.post("/v1/verifications", json={"assertion": assertion}, headers=headers)
    assert response.get_json()["outcome"] == "not_licensed"
    assert _subscriptions(app) == 0
