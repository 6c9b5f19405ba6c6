"""The audit hash chain: every action is a link; any edit is caught by ``audit verify``."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import update

from core import db
from core.audit import console_operator
from licensing import audit, service
from licensing.models import AuditEntry
from tests.licensing.helpers import audit_entries, run_sql


def _cli(app, *args):
    return app.test_cli_runner().invoke(args=list(args))


def _verify(app) -> int | None:
    with app.app_context():
        return audit.verify_chain(db.get_session())


@pytest.fixture
def chain(app, http, regulator, register_licence):
    """Six links: the regulator client's creation, register, suspend, reinstate, revoke,
    and a card-authority action."""
    licence = register_licence()
    headers = regulator[1]
    until = (service.today() + timedelta(days=9)).isoformat()
    for action, body in (
        ("suspend", {"reason": "inquiry", "until": until}),
        ("reinstate", {"reason": "cleared"}),
        ("revoke", {"reason": "conviction"}),
    ):
        assert (
            http.post(f"/v1/licences/{licence.id}/{action}", json=body, headers=headers).status_code
            == 200
        )
    with app.app_context():
        session = db.get_session()
        audit.record(
            session,
            actor="ca-client",
            action="crl.import",
            target="issuer:abc",
            details={"crl_number": "7", "revoked": 3},
        )
        session.commit()
    return licence


def test_every_action_is_a_link_that_commits_to_the_previous(app, chain, regulator):
    entries = audit_entries(app)
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5, 6]
    assert [e.action for e in entries] == [
        "client.create",
        "licence.register",
        "licence.suspend",
        "licence.reinstate",
        "licence.revoke",
        "crl.import",
    ]
    assert entries[1].actor == console_operator() and entries[2].actor == regulator[0].name
    assert entries[0].prev_hash == audit.GENESIS_HASH
    for previous, current in zip(entries, entries[1:], strict=False):
        assert current.prev_hash == previous.hash
    assert entries[2].details == {
        "from": "active",
        "to": "suspended",
        "until": (service.today() + timedelta(days=9)).isoformat(),
    }
    assert entries[2].free_text["reason"] == "inquiry"
    assert _verify(app) is None
    result = _cli(app, "audit", "verify")
    assert result.exit_code == 0
    assert "intact: 6 entries" in result.output
    assert entries[-1].hash in result.output


def test_the_chain_holds_no_personal_data(app, chain):
    dump = repr([vars(e) for e in audit_entries(app)])
    assert chain.name not in dump
    assert chain.registration_number not in dump
    assert chain.holder_code not in dump


@pytest.mark.parametrize(
    "tamper,broken_at",
    [
        ('UPDATE audit_entries SET details = \'{"reason": "nothing"}\' WHERE seq = 4', 4),
        ("UPDATE audit_entries SET actor = 'someone-else' WHERE seq = 3", 3),
        ("UPDATE audit_entries SET action = 'licence.reinstate' WHERE seq = 5", 5),
        ("UPDATE audit_entries SET target = 'lic_other' WHERE seq = 2", 2),
        ("UPDATE audit_entries SET at = '2001-01-01 00:00:00' WHERE seq = 6", 6),
        ("DELETE FROM audit_entries WHERE seq = 4", 4),
        ("DELETE FROM audit_entries WHERE seq = 6", 6),
        ("UPDATE audit_entries SET prev_hash = :zeros WHERE seq = 5", 5),
        ("UPDATE audit_chain_head SET hash = :zeros", 6),
    ],
)
def test_audit_verify_reports_the_first_broken_link(app, chain, tamper, broken_at):
    assert _verify(app) is None
    run_sql(app, tamper, zeros="0" * 64)
    assert _verify(app) == broken_at
    result = _cli(app, "audit", "verify")
    assert result.exit_code == 1
    assert f"broken at entry {broken_at}" in result.output


def test_rewriting_a_hash_to_match_an_edit_breaks_the_next_link(app, chain):
    entries = audit_entries(app)
    target = entries[2]
    forged = audit.entry_hash(
        target.seq,
        target.prev_hash,
        target.at,
        target.actor,
        target.action,
        target.target,
        {**target.details, "to": "revoked"},
        target.free_text_digest,
    )
    with app.app_context():
        session = db.get_session()
        session.execute(
            update(AuditEntry)
            .where(AuditEntry.seq == 3)
            .values(details={**target.details, "to": "revoked"}, hash=forged)
        )
        session.commit()
    assert _verify(app) == 4


def test_a_record_is_part_of_the_callers_transaction(app):
    with app.app_context():
        session = db.get_session()
        audit.record(session, actor="x", action="test.rollback", target="t", details={})
        session.rollback()
    assert audit_entries(app) == []
    with app.app_context():
        session = db.get_session()
        entry = audit.record(session, actor=None, action="test.keep", target="t", details={"n": 1})
        assert entry.seq == 1
        session.commit()
    assert [e.action for e in audit_entries(app)] == ["test.keep"]
    assert _verify(app) is None


def test_an_empty_chain_is_intact(app):
    assert _verify(app) is None
    result = _cli(app, "audit", "verify")
    assert result.exit_code == 0 and "0 entries" in result.output


def test_concurrent_writers_never_fork_the_chain(app):
    writers, per_writer = 8, 5
    barrier = threading.Barrier(writers)
    failures: list[str] = []

    def writer(n: int) -> None:
        with app.app_context():
            session = db.get_session()
            barrier.wait()
            for i in range(per_writer):
                try:
                    audit.record(
                        session, actor=f"w{n}", action="test.concurrent", target=str(i), details={}
                    )
                    session.commit()
                except Exception as error:  # noqa: BLE001
                    session.rollback()
                    failures.append(type(error).__name__)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    entries = audit_entries(app)
    assert [e.seq for e in entries] == list(range(1, writers * per_writer + 1))
    assert _verify(app) is None
