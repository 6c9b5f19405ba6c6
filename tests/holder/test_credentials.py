"""holder.credentials: card status parity with the pipeline's revocation check,
status list allocation, URIs, pruning."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import select

from core.db import get_session, utcnow
from holder import credentials as creds
from holder import status_list as sl
from holder.models import HolderCredential, HolderStatusList
from verification.errors import CardRevoked, CardSuspended, RevocationUnavailable
from verification.revocation import check_chain


def _expected(session, chain, now, app) -> int:
    try:
        check_chain(session, chain, now, app)
    except CardRevoked:
        return sl.STATUS_INVALID
    except (CardSuspended, RevocationUnavailable):
        return sl.STATUS_SUSPENDED
    return sl.STATUS_VALID


def test_bulk_card_status_agrees_with_the_pipeline(
    app, issue_card, card_authority, publish_crl, foreign_card_authority
):
    valid, held, revoked, resumed = (issue_card() for _ in range(4))
    card_authority.report_lost(held.serial)
    card_authority.report_lost(resumed.serial)
    card_authority.revoke(revoked.serial)
    publish_crl(validity=timedelta(hours=1))
    card_authority.resume(resumed.serial)
    publish_crl(validity=timedelta(hours=1))
    foreign = issue_card(authority=foreign_card_authority)  # its issuer has no CRL here
    cards = [valid, held, revoked, resumed, foreign]
    chains = [[c.certificate, *c.chain] for c in cards]
    stored = [creds.encode_chain(chain) for chain in chains]
    with app.app_context():
        session = get_session()
        for moment in (utcnow(), utcnow() + timedelta(hours=2)):  # fresh, then stale CRL
            got = creds.card_statuses(session, stored, moment, app)
            assert got == [_expected(session, chain, moment, app) for chain in chains]
        # Back before the stale moment: not the cached answer of a later time.
        assert creds.card_statuses(session, stored, utcnow(), app) == [
            sl.STATUS_VALID,
            sl.STATUS_SUSPENDED,
            sl.STATUS_INVALID,
            sl.STATUS_VALID,
            sl.STATUS_SUSPENDED,
        ]


@pytest.mark.parametrize(
    "licence, card, expected",
    [
        ("active", sl.STATUS_VALID, sl.STATUS_VALID),
        ("suspended", sl.STATUS_VALID, sl.STATUS_SUSPENDED),
        ("revoked", sl.STATUS_VALID, sl.STATUS_INVALID),
        ("erased", sl.STATUS_VALID, sl.STATUS_INVALID),
        ("deceased", sl.STATUS_VALID, sl.STATUS_INVALID),
        (None, sl.STATUS_VALID, sl.STATUS_INVALID),
        ("active", sl.STATUS_SUSPENDED, sl.STATUS_SUSPENDED),
        ("suspended", sl.STATUS_INVALID, sl.STATUS_INVALID),
        ("revoked", sl.STATUS_SUSPENDED, sl.STATUS_INVALID),
    ],
)
def test_combine(licence, card, expected):
    state = creds.LicenceState("lic_x", licence, None, datetime.now(UTC)) if licence else None
    assert creds.combine(state, card) == expected


def test_status_list_uris_round_trip(app):
    app.config["PUBLIC_BASE_URL"] = "https://licences.example/"
    with app.app_context():
        uri = creds.status_list_uri("0123abcd")
    assert uri == "https://licences.example/v1/status-lists/0123abcd"
    # Matched by list id, whatever base URL the credential was issued under.
    assert creds.list_id_from_uri(uri) == "0123abcd"
    assert creds.list_id_from_uri("http://127.0.0.1:8000/v1/status-lists/0123abcd") == "0123abcd"
    for junk in (
        uri + "/../x",
        "https://licences.example/v1/status-lists/",
        "https://licences.example/v1/other/0123abcd",
        "https://licences.example/v1/status-lists/" + "a" * 33,
        "https://licences.example/v1/status-lists/０１２３",
        "https://licences.example/v1/status-lists/01%00",
        "http://[::1/v1/status-lists/0123abcd",
        None,
        42,
    ):
        assert creds.list_id_from_uri(junk) is None, junk


def test_credentials_survive_a_change_of_public_base_url(
    app, http, licensed_holder, get_credential, platform, online_check
):
    holder = licensed_holder()
    credential = get_credential(holder)
    app.config["PUBLIC_BASE_URL"] = "https://licences.example"
    response = online_check(platform, credential, holder)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["outcome"] == "licensed"


def test_start_up_warns_when_public_base_url_is_unset(database_url, tmp_path, caplog, monkeypatch):
    from app import create_app

    monkeypatch.delenv("PUBLIC_BASE_URL", raising=False)
    overrides = {"INSTANCE_PATH": str(tmp_path), "DATABASE_URL": database_url}
    with caplog.at_level("WARNING", logger="licence_service.holder"):
        create_app(overrides).extensions["db"].engine.dispose()
    assert "PUBLIC_BASE_URL is not set" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="licence_service.holder"):
        for config in ({"TESTING": True}, {"PUBLIC_BASE_URL": "https://licences.example"}):
            create_app(overrides | config).extensions["db"].engine.dispose()
    assert "PUBLIC_BASE_URL" not in caplog.text


def test_credential_lifetime_is_capped_at_24_hours(app):
    app.config["HOLDER_CREDENTIAL_LIFETIME"] = 7 * 24 * 3600
    with app.app_context():
        assert creds.credential_lifetime() == timedelta(hours=24)
    app.config["HOLDER_CREDENTIAL_LIFETIME"] = 3600
    with app.app_context():
        assert creds.credential_lifetime() == timedelta(hours=1)


def _issue(app, holder, now=None):
    from holder.credentials import encode_chain

    with app.app_context():
        return creds.issue_credential(
            get_session(),
            holder_code=_holder_code(app, holder),
            card_chain=encode_chain([holder.card.certificate, *holder.card.chain]),
            profession="doctor",
            now=now,
        )


def _holder_code(app, holder) -> str:
    from identity import LICENSING_AGENCY, get_identity_platform

    with app.app_context():
        return get_identity_platform().code_for_certificate(
            LICENSING_AGENCY, holder.card.certificate
        )


def test_entries_are_random_and_a_new_list_opens_when_half_full(app, licensed_holder, monkeypatch):
    monkeypatch.setattr(creds, "STATUS_LIST_SIZE", 8)
    app.config["HOLDER_MAX_LIVE_CREDENTIALS"] = 10
    holder = licensed_holder()
    for _ in range(6):
        _issue(app, holder)
    with app.app_context():
        session = get_session()
        lists = [(sl_.id, sl_.size) for sl_ in session.scalars(select(HolderStatusList))]
        rows = [(r.status_list_id, r.idx) for r in session.scalars(select(HolderCredential))]
    assert len(lists) == 2 and all(size == 8 for _, size in lists)
    per_list = {list_id: [] for list_id, _ in lists}
    for list_id, idx in rows:
        per_list[list_id].append(idx)
    for indices in per_list.values():
        assert len(indices) == len(set(indices)) <= 4 and all(0 <= i < 8 for i in indices)


def test_credential_never_outlives_the_card_certificate(app, licensed_holder, publish_crl):
    holder = licensed_holder()
    not_after = holder.card.certificate.not_valid_after_utc
    issued = _issue(app, holder)
    assert issued.expires_at <= min(utcnow() + timedelta(hours=24), not_after)
    # Close to the certificate's end, the credential ends with it.
    late = not_after - timedelta(hours=2)
    with time_machine.travel(late, tick=False):
        publish_crl(now=late)  # so the card's revocation state is known then
        issued = _issue(app, holder, now=late)
    assert issued.expires_at == not_after


def test_prune_removes_only_long_expired_records(app, licensed_holder):
    holder = licensed_holder()
    issued = _issue(app, holder)
    with app.app_context():
        assert creds.prune_credentials(get_session()) == 0
    with time_machine.travel(issued.expires_at + timedelta(days=1, minutes=1)):
        with app.app_context():
            assert creds.prune_credentials(get_session()) == 1


def test_prune_command(app, licensed_holder):
    holder = licensed_holder()
    issued = _issue(app, holder)
    with time_machine.travel(issued.expires_at + timedelta(days=2)):
        result = app.test_cli_runner().invoke(args=["housekeeping", "prune"])
    assert result.exit_code == 0, result.output
    assert "1 credential records" in result.output


def test_status_list_ignores_expired_credentials(app, http, licensed_holder, regulator):
    holder = licensed_holder()
    issued = _issue(app, holder)
    with app.app_context():
        row = get_session().get(HolderCredential, issued.credential_id)
        list_id, idx = row.status_list_id, row.idx
    revoke = http.post(
        f"/v1/licences/{holder.licences[0].id}/revoke", json={"reason": "x"}, headers=regulator[1]
    )
    assert revoke.status_code == 200
    with app.app_context():
        token = creds.build_status_list(get_session(), list_id)
        assert _status(token, idx) == sl.STATUS_INVALID
        later = issued.expires_at + timedelta(hours=1)
        token = creds.build_status_list(get_session(), list_id, now=later)
        assert _status(token, idx) == sl.STATUS_VALID  # expired: its entry no longer matters


def _status(token: str, idx: int) -> int:
    from core import jws

    return sl.StatusList.decode(jws.parse_compact(token).payload["status_list"])[idx]


def test_issue_time_is_recorded(app, licensed_holder):
    holder = licensed_holder()
    before = datetime.now(UTC)
    issued = _issue(app, holder)
    with app.app_context():
        row = get_session().get(HolderCredential, issued.credential_id)
        assert before - timedelta(seconds=1) <= row.issued_at <= datetime.now(UTC)
        assert row.expires_at == issued.expires_at
