"""One assertion submitted concurrently: exactly one verification succeeds.

Runs against the real app and database (SQLite by default, PostgreSQL with
TEST_DATABASE_URL): every thread has its own test client and database session, and the
only thing that decides is the single conditional UPDATE that consumes the nonce.
"""

from __future__ import annotations

import threading
from collections import Counter

from sqlalchemy import func, select

from verification.models import AccessRecord

THREADS = 8


def test_concurrent_submissions_of_one_assertion(
    app, verifier, challenge, audience, licensed_holder
):
    _, headers = verifier
    holder = licensed_holder()
    assertion = holder.sign(challenge(headers)["nonce"], audience)
    barrier = threading.Barrier(THREADS)
    results: list[tuple[int, str | None]] = []
    lock = threading.Lock()

    def submit() -> None:
        client = app.test_client()
        barrier.wait()
        response = client.post("/v1/verifications", json={"assertion": assertion}, headers=headers)
        body = response.get_json(force=True)
        with lock:
            results.append((response.status_code, body.get("code") or body.get("outcome")))

    threads = [threading.Thread(target=submit) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    counts = Counter(results)
    assert counts[(200, "licensed")] == 1, counts
    assert counts[(401, "invalid_nonce")] == THREADS - 1, counts

    from core.db import get_session

    with app.app_context():
        outcomes = dict(
            get_session()
            .execute(select(AccessRecord.outcome, func.count()).group_by(AccessRecord.outcome))
            .all()
        )
    # One access record for the success, one per rejected replay (made with a known card).
    assert outcomes == {"licensed": 1, "invalid_nonce": THREADS - 1}


def test_concurrent_distinct_challenges_all_succeed(
    app, verifier, challenge, audience, licensed_holder
):
    _, headers = verifier
    holder = licensed_holder()
    assertions = [holder.sign(challenge(headers)["nonce"], audience) for _ in range(4)]
    barrier = threading.Barrier(len(assertions))
    statuses: list[int] = []

    def submit(assertion: str) -> None:
        client = app.test_client()
        barrier.wait()
        response = client.post("/v1/verifications", json={"assertion": assertion}, headers=headers)
        statuses.append(response.status_code)

    threads = [threading.Thread(target=submit, args=(a,)) for a in assertions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert statuses == [200] * len(assertions)
