"""Fault injection: the service fails closed and says so with the contract's codes.

- The licensing database is unreachable: every endpoint that needs it answers 503
  ``unavailable`` (never a 401 that would blame the caller's token, never a 500, never a
  2xx), ``/readyz`` fails and names the database, ``/healthz`` still answers.
- The CRL goes stale (past its nextUpdate): verifications answer 503
  ``revocation_unavailable`` without burning the nonce, ``/readyz`` fails; a fresh CRL
  brings the very same assertion back to ``licensed``.
- A crash between the steps of a verification (in the identity lookup, the licence
  lookup, the receipt signature after the nonce UPDATE, or inside the commit after both
  writes reached the database): no half-written verification. The nonce is not
  consumed and no access record exists, and once the fault is gone the same assertion
  verifies, exactly once.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import event, func, select

from app import create_app
from clients.service import TOKEN_PREFIX
from core.db import get_session
from tests.quality.helpers import spec_operations
from verification.models import AccessRecord, Challenge

# A syntactically valid token: the service has to ask the database about it.
SOME_TOKEN = TOKEN_PREFIX + "x" * 43


def _unreachable_url(is_postgres: bool, tmp_path) -> str:
    if is_postgres:
        # Nothing listens on port 1: connection refused at once.
        return "postgresql://postgres@127.0.0.1:1/unreachable"
    # The database file's path is a directory: SQLite cannot open it.
    path = tmp_path / "gone" / "licensing.sqlite3"
    path.mkdir(parents=True)
    return f"sqlite:///{path}"


@pytest.fixture
def unreachable(is_postgres, tmp_path):
    application = create_app(
        {
            "INSTANCE_PATH": str(tmp_path / "instance"),
            "DATABASE_URL": _unreachable_url(is_postgres, tmp_path),
            "TESTING": True,
        }
    )
    yield application.test_client()
    application.extensions["db"].engine.dispose()


def _problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json(force=True)
    assert body["status"] == status and body["code"] == code
    return body


def test_readyz_fails_and_names_the_database(unreachable):
    body = _problem(unreachable.get("/readyz"), 503, "unavailable")
    assert "database" in body["checks"]
    assert unreachable.get("/healthz").status_code == 200


AUTHENTICATED = [(m, p) for m, p, secured in spec_operations() if secured]


@pytest.mark.skipif(not AUTHENTICATED, reason="no authenticated endpoint in the spec yet")
@pytest.mark.parametrize(
    "method,path", AUTHENTICATED, ids=[f"{m} {p}" for m, p in AUTHENTICATED] or None
)
def test_database_down_is_503_unavailable_not_401(unreachable, method, path):
    concrete = re.sub(r"\{[^}]+\}", "0123456789abcdef", path)
    response = unreachable.open(
        concrete,
        method=method,
        json={} if method in ("POST", "PUT", "PATCH") else None,
        headers={"Authorization": f"Bearer {SOME_TOKEN}"},
    )
    if response.status_code == 400:
        # Input validated before authentication: the database was never asked.
        _problem(response, 400, "invalid_request")
        return
    body = _problem(response, 503, "unavailable")
    assert response.headers.get("Retry-After")
    assert SOME_TOKEN not in response.get_data(as_text=True)
    assert "Traceback" not in body["detail"]


# -- stale CRL -----------------------------------------------------------------------------


def _consumed(app) -> int:
    with app.app_context():
        return get_session().scalar(
            select(func.count()).select_from(Challenge).where(Challenge.consumed_at.is_not(None))
        )


def _licensed_records(app) -> int:
    with app.app_context():
        return get_session().scalar(
            select(func.count())
            .select_from(AccessRecord)
            .where(AccessRecord.verification_id.is_not(None))
        )


def test_stale_crl_is_503_revocation_unavailable_and_burns_nothing(
    app, http, verifier, challenge, verify, audience, licensed_holder, publish_crl
):
    _, headers = verifier
    holder = licensed_holder()  # CRL valid for 24 hours from now
    with time_machine.travel(datetime.now(UTC) + timedelta(hours=25), tick=True):
        assertion = holder.sign(challenge(headers)["nonce"], audience)
        body = _problem(verify(headers, assertion), 503, "revocation_unavailable")
        assert "holder" not in body and "outcome" not in body
        assert _consumed(app) == 0 and _licensed_records(app) == 0
        ready = _problem(http.get("/readyz"), 503, "unavailable")
        assert set(ready["checks"]) == {"card_revocation_lists"}

        publish_crl()  # the card authority catches up
        response = verify(headers, assertion)
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.get_json()["outcome"] == "licensed"
        assert http.get("/readyz").status_code == 200
    assert _consumed(app) == 1 and _licensed_records(app) == 1


# -- a crash between steps -----------------------------------------------------------------


class Crash(RuntimeError):
    """The injected fault."""


def _crash_in_identity(monkeypatch, _app):
    import identity

    real = identity.get_identity_platform

    class Failing:
        def __init__(self, platform) -> None:
            self._platform = platform

        def code_for_certificate(self, agency, certificate):
            if agency.startswith("verifier:"):  # after the licensing code was found
                raise Crash()
            return self._platform.code_for_certificate(agency, certificate)

        def codes_for_certificate(self, certificate, agencies):
            if any(agency.startswith("verifier:") for agency in agencies):
                raise Crash()
            return self._platform.codes_for_certificate(certificate, agencies)

        def __getattr__(self, name):
            return getattr(self._platform, name)

    monkeypatch.setattr(identity, "get_identity_platform", lambda: Failing(real()))


def _crash_in_licence_lookup(monkeypatch, _app):
    import licensing.service

    def crash(*args, **kwargs):
        raise Crash()

    monkeypatch.setattr(licensing.service, "licences_for_holder", crash)


def _crash_in_receipt(monkeypatch, _app):
    import verification.outcome

    class Keyring:
        def sign(self, claims, typ):
            raise Crash()

    monkeypatch.setattr(verification.outcome, "get_keyring", lambda app=None: Keyring())


def _crash_in_commit(_monkeypatch, app):
    """Both writes (nonce UPDATE, access record INSERT) have reached the database; the
    transaction dies at COMMIT. Injected at the connection level, so it does not depend on
    how the pipeline issues its statements (ORM or Core)."""
    engine = app.extensions["db"].engine
    wrote = {"access_record": False, "nonce": False}

    def before_execute(_conn, _cursor, statement, _params, _context, _executemany):
        text = statement.lstrip().upper()
        if text.startswith("INSERT INTO VERIFICATION_ACCESS_RECORDS"):
            wrote["access_record"] = True
        if text.startswith("UPDATE VERIFICATION_CHALLENGES"):
            wrote["nonce"] = True

    def on_commit(_conn):
        if wrote["access_record"] and wrote["nonce"]:
            raise Crash()

    event.listen(engine, "before_cursor_execute", before_execute)
    event.listen(engine, "commit", on_commit)

    def undo():
        event.remove(engine, "before_cursor_execute", before_execute)
        event.remove(engine, "commit", on_commit)
        assert wrote["access_record"] and wrote["nonce"], "the fault was never injected"

    return undo


FAULTS = {
    "identity platform (verifier code)": _crash_in_identity,
    "licence lookup": _crash_in_licence_lookup,
    "receipt signature": _crash_in_receipt,
    "commit, after both writes": _crash_in_commit,
}


@pytest.mark.parametrize("inject", FAULTS.values(), ids=FAULTS.keys())
def test_a_crash_between_steps_leaves_no_half_written_verification(
    app, verifier, challenge, verify, audience, licensed_holder, monkeypatch, inject
):
    _, headers = verifier
    holder = licensed_holder()
    assertion = holder.sign(challenge(headers)["nonce"], audience)

    with monkeypatch.context() as patch:
        undo = inject(patch, app)
        try:
            response = verify(headers, assertion)
        finally:
            if undo is not None:
                undo()
    assert response.status_code >= 500, response.get_data(as_text=True)
    body = response.get_json(force=True)
    assert body.get("code") in ("internal_error", "unavailable") and "holder" not in body
    # Neither half: the nonce is still unused and nothing says a verification happened.
    assert _consumed(app) == 0
    assert _licensed_records(app) == 0

    retried = verify(headers, assertion)
    assert retried.status_code == 200, retried.get_data(as_text=True)
    assert retried.get_json()["outcome"] == "licensed"
    assert _consumed(app) == 1 and _licensed_records(app) == 1
    replay = verify(headers, assertion)
    assert replay.status_code == 401 and replay.get_json()["code"] == "invalid_nonce"


def test_a_nonce_consumed_by_a_rival_during_the_lookups_is_invalid_nonce(
    app, verifier, challenge, verify, audience, licensed_holder, monkeypatch
):
    """The verifier flow consumes the nonce after the identity and licence lookups: the
    conditional UPDATE decides. A concurrent submission that consumed it meanwhile wins:
    this one is a 401 invalid_nonce with nothing written but the holder's
    rejected-attempt record."""
    import licensing.service

    _, headers = verifier
    holder = licensed_holder()
    assertion = holder.sign(challenge(headers)["nonce"], audience)
    real_lookup = licensing.service.licences_for_holder
    engine = app.extensions["db"].engine

    def lookup_after_a_rival_consumed(*args, **kwargs):
        with engine.begin() as conn:  # another connection: the rival's committed UPDATE
            conn.execute(Challenge.__table__.update().values(consumed_at=datetime.now(UTC)))
        return real_lookup(*args, **kwargs)

    monkeypatch.setattr(licensing.service, "licences_for_holder", lookup_after_a_rival_consumed)
    response = verify(headers, assertion)
    assert response.status_code == 401, response.get_data(as_text=True)
    assert response.get_json()["code"] == "invalid_nonce"
    assert _licensed_records(app) == 0
    with app.app_context():
        outcomes = get_session().scalars(select(AccessRecord.outcome)).all()
    assert outcomes == ["invalid_nonce"]
