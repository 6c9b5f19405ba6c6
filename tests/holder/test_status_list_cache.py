"""Status list cost (issue 14.6): built at most once per TTL, served with an ETag (304 on
If-None-Match), card status cached per CRL, live credentials per holder capped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import time_machine

from core import jws
from core.db import get_session, utcnow
from holder import credentials as creds
from holder import sd_jwt
from holder import status_list as sl
from tests.fixtures.holder import bearer
from tests.fixtures.verification import problem


def _list_path(credential: str) -> tuple[str, int]:
    ref = jws.parse_compact(sd_jwt.parse(credential).issuer_jwt).payload["status"]["status_list"]
    return "/v1/status-lists/" + ref["uri"].rsplit("/", 1)[1], ref["idx"]


def _entry(response, idx: int) -> int:
    claims = jws.parse_compact(response.get_data(as_text=True)).payload
    return sl.StatusList.decode(claims["status_list"])[idx]


def test_status_list_is_built_once_per_ttl_and_served_with_an_etag(
    app, http, licensed_holder, get_credential, regulator, monkeypatch
):
    holder = licensed_holder()
    path, idx = _list_path(get_credential(holder))
    builds = []
    build = creds.build_status_list
    monkeypatch.setattr(
        creds, "build_status_list", lambda *a, **k: builds.append(1) or build(*a, **k)
    )
    start = datetime.now(UTC)
    with time_machine.travel(start, tick=False):
        first = http.get(path)
        assert first.status_code == 200 and first.headers["ETag"]
        assert first.headers["Cache-Control"] == "no-cache"
        for _ in range(5):
            assert http.get(path).get_data() == first.get_data()
        assert len(builds) == 1
        # The ETag answers revalidation with 304 and no body; another ETag gets the list.
        etag = first.headers["ETag"]
        unchanged = http.get(path, headers={"If-None-Match": etag})
        assert unchanged.status_code == 304 and unchanged.get_data() == b""
        other = http.get(path, headers={"If-None-Match": '"0123"'})
        assert other.status_code == 200 and other.get_data() == first.get_data()
        revoked = http.post(
            f"/v1/licences/{holder.licences[0].id}/revoke",
            json={"reason": "x"},
            headers=regulator[1],
        )
        assert revoked.status_code == 200
        # Within the TTL the cached list is served (as relying parties cache it too).
        assert _entry(http.get(path), idx) == sl.STATUS_VALID
    ttl = int(app.config["STATUS_LIST_TTL"])
    with time_machine.travel(start + timedelta(seconds=ttl), tick=False):
        fresh = http.get(path, headers={"If-None-Match": etag})
        assert fresh.status_code == 200 and fresh.headers["ETag"] != etag
        assert _entry(fresh, idx) == sl.STATUS_INVALID
    assert len(builds) == 2


def test_unknown_list_is_not_cached(app, http):
    problem(http.get("/v1/status-lists/0123456789abcdef"), 404, "not_found")
    problem(http.get("/v1/status-lists/0123456789abcdef"), 404, "not_found")
    assert app.extensions.get(creds.STATUS_LIST_CACHE_KEY, {}) == {}


def test_card_status_is_cached_per_crl(app, issue_card, card_authority, publish_crl, monkeypatch):
    card = issue_card()
    publish_crl()
    chain = creds.encode_chain([card.certificate, *card.chain])
    parsed = []
    decode = creds.decode_chain
    monkeypatch.setattr(creds, "decode_chain", lambda c: parsed.append(1) or decode(c))
    with app.app_context():
        session = get_session()
        for _ in range(3):
            assert creds.card_statuses(session, [chain, chain], utcnow(), app) == [
                sl.STATUS_VALID,
                sl.STATUS_VALID,
            ]
        assert len(parsed) == 1  # the chain is parsed once
        card_authority.report_lost(card.serial)
        publish_crl()  # a new CRL: the cached status no longer holds
        assert creds.card_statuses(session, [chain], utcnow(), app) == [sl.STATUS_SUSPENDED]
        card_authority.revoke(card.serial)
        publish_crl()
        assert creds.card_statuses(session, [chain], utcnow(), app) == [sl.STATUS_INVALID]
        assert len(parsed) == 1


def test_live_credentials_per_holder_and_profession_are_capped(
    app, http, licensed_holder, sign_in, publish_crl
):
    app.config["HOLDER_MAX_LIVE_CREDENTIALS"] = 2
    holder = licensed_holder("doctor", "nurse")
    token = sign_in(holder)

    def ask(profession: str):
        return http.post(
            "/v1/holder/credentials", json={"profession": profession}, headers=bearer(token)
        )

    assert ask("doctor").status_code == 201 and ask("doctor").status_code == 201
    refused = problem(ask("doctor"), 429, "rate_limited")
    assert "2 unexpired credentials" in refused["detail"]
    assert ask("nurse").status_code == 201  # per profession
    later = datetime.now(UTC) + timedelta(hours=24, minutes=1)
    with time_machine.travel(later):
        publish_crl(now=later)
        token = sign_in(holder)
        assert ask("doctor").status_code == 201  # the old ones have expired
