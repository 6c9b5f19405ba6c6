"""Concurrency against the real app and database (SQLite, or PostgreSQL with
TEST_DATABASE_URL): every thread has its own test client and database session, commits
are real, and a barrier releases all threads at once.

- 50 parallel submissions of one assertion: exactly one success, 49 ``invalid_nonce``,
  one consumed challenge, and access records that match the responses one to one.
- 50 parallel submissions of 50 different assertions: all succeed (lock contention must
  not turn into 503s or 500s).
- One assertion raced by its own verifier and by another hospital: only the verifier
  the challenge was issued to can win, whoever comes first.
- Parallel regulator actions on one licence: every answer is a success or a 409, the
  event history is one consistent chain matching the successes, the licence's status
  is the last event's, and the audit chain verifies.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from core.db import get_session
from verification.models import AccessRecord, Challenge

PARALLEL = 50


def run_parallel(app, calls: list[Callable[[Any], Any]]) -> list[Any]:
    """Runs each call(client) in its own thread, all released together; keeps order."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def worker(index: int) -> None:
        client = app.test_client()
        barrier.wait()
        try:
            results[index] = calls[index](client)
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            results[index] = error

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a request hung"
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors[:3]
    return results


def _post_verification(assertion: str, headers: dict[str, str]):
    def call(client):
        response = client.post("/v1/verifications", json={"assertion": assertion}, headers=headers)
        body = response.get_json(force=True)
        return response.status_code, body.get("outcome") or body.get("code"), body

    return call


def _access_records(app) -> list[tuple[str, str | None, str | None]]:
    with app.app_context():
        rows = get_session().execute(
            select(
                AccessRecord.outcome, AccessRecord.verification_id, AccessRecord.verifier_client_id
            )
        )
        return [tuple(row) for row in rows]


def _consumed_challenges(app) -> int:
    with app.app_context():
        return get_session().scalar(
            select(func.count()).select_from(Challenge).where(Challenge.consumed_at.is_not(None))
        )


def test_fifty_parallel_submissions_of_one_assertion_exactly_one_succeeds(
    app, verifier, challenge, audience, licensed_holder
):
    client, headers = verifier
    holder = licensed_holder()
    assertion = holder.sign(challenge(headers)["nonce"], audience)

    results = run_parallel(app, [_post_verification(assertion, headers)] * PARALLEL)

    counts = Counter((status, outcome) for status, outcome, _ in results)
    assert counts == {(200, "licensed"): 1, (401, "invalid_nonce"): PARALLEL - 1}, counts
    winner = next(body for status, _, body in results if status == 200)
    assert winner["receipt"] and winner["holder"]["subject"]
    assert _consumed_challenges(app) == 1
    records = _access_records(app)
    assert Counter(outcome for outcome, _, _ in records) == {
        "licensed": 1,
        "invalid_nonce": PARALLEL - 1,
    }
    # The one success is recorded once, under the verification id the caller got.
    assert [vid for outcome, vid, _ in records if outcome == "licensed"] == [
        winner["verification_id"]
    ]
    assert all(verifier_id == client.id for _, _, verifier_id in records)


def test_fifty_parallel_distinct_assertions_all_succeed(
    app, verifier, challenge, audience, licensed_holder
):
    _, headers = verifier
    holder = licensed_holder()
    assertions = [holder.sign(challenge(headers)["nonce"], audience) for _ in range(PARALLEL)]

    results = run_parallel(app, [_post_verification(a, headers) for a in assertions])

    counts = Counter((status, outcome) for status, outcome, _ in results)
    assert counts == {(200, "licensed"): PARALLEL}, counts
    assert len({body["verification_id"] for _, _, body in results}) == PARALLEL
    assert _consumed_challenges(app) == PARALLEL
    assert Counter(outcome for outcome, _, _ in _access_records(app)) == {"licensed": PARALLEL}


def test_a_raced_nonce_is_only_ever_won_by_its_own_verifier(
    app, verifier, other_verifier, challenge, audience, licensed_holder
):
    owner, owner_headers = verifier
    _, thief_headers = other_verifier
    holder = licensed_holder()
    assertion = holder.sign(challenge(owner_headers)["nonce"], audience)
    half = PARALLEL // 2
    calls = [_post_verification(assertion, thief_headers)] * half + [
        _post_verification(assertion, owner_headers)
    ] * half

    results = run_parallel(app, calls)

    thieves, owners = results[:half], results[half:]
    assert Counter((s, o) for s, o, _ in thieves) == {(401, "invalid_nonce"): half}
    assert Counter((s, o) for s, o, _ in owners) == {
        (200, "licensed"): 1,
        (401, "invalid_nonce"): half - 1,
    }
    assert _consumed_challenges(app) == 1
    licensed = [(vid, who) for outcome, vid, who in _access_records(app) if outcome == "licensed"]
    assert len(licensed) == 1 and licensed[0][1] == owner.id


def test_parallel_regulator_actions_keep_the_history_consistent(app, make_client):
    from licensing.audit import verify_chain
    from licensing.service import today

    regulators = [make_client("regulator", f"Regulator {i}")[1] for i in range(3)]
    http = app.test_client()
    created = http.post(
        "/v1/licences",
        headers=regulators[0],
        json={
            "profession": "nurse",
            "my_number": "123456789018",
            "name": "佐藤 花子",
            "registration_number": "7654321",
            "registered_on": "2015-04-01",
        },
    )
    assert created.status_code == 201, created.get_data(as_text=True)
    licence_id = created.get_json()["licence_id"]
    until = (today() + timedelta(days=30)).isoformat()
    actions = [
        ("suspend", {"reason": "investigation", "until": until}),
        ("reinstate", {"reason": "cleared"}),
        ("suspend", {"reason": "second investigation", "until": until}),
        ("reinstate", {"reason": "cleared again"}),
        ("revoke", {"reason": "struck off"}),
    ] * 6

    def act(index: int, action: str, body: dict):
        headers = regulators[index % len(regulators)]

        def call(client):
            response = client.post(
                f"/v1/licences/{licence_id}/{action}", json=body, headers=headers
            )
            payload = response.get_json(force=True)
            return action, response.status_code, payload

        return call

    results = run_parallel(app, [act(i, a, b) for i, (a, b) in enumerate(actions)])

    outcomes = Counter((status, payload.get("code")) for _, status, payload in results)
    assert set(outcomes) <= {(200, None), (409, "invalid_transition"), (409, "conflict")}, outcomes
    successes = [(action, payload) for action, status, payload in results if status == 200]
    assert successes, outcomes

    events = http.get(f"/v1/licences/{licence_id}/events", headers=regulators[0])
    assert events.status_code == 200
    history = events.get_json()["events"]
    assert history[0]["from_status"] is None and history[0]["to_status"] == "active"
    for previous, event in zip(history, history[1:], strict=False):
        assert event["from_status"] == previous["to_status"], history
        assert event["at"] >= previous["at"], history
    changes = history[1:]
    # One event per successful action, nothing for the rejected ones.
    assert len(changes) == len(successes), (changes, outcomes)
    assert Counter(e["to_status"] for e in changes) == Counter(p["status"] for _, p in successes)
    revokes = [e for e in changes if e["to_status"] == "revoked"]
    assert len(revokes) <= 1 and (not revokes or changes[-1] is revokes[0])
    final = http.get(f"/v1/licences/{licence_id}", headers=regulators[0]).get_json()
    assert final["status"] == history[-1]["to_status"]

    with app.app_context():
        assert verify_chain(get_session()) is None
