"""The card authority's CRL feed: import rules, readiness, the CLI, the audit trail."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from sqlalchemy import select

from tests.fixtures.verification import Forge, ca_key_usage, problem
from verification.models import CardCrl

CRL_TYPE = {"Content-Type": "application/pkix-crl"}


def _issuing_key(card_authority):
    path = Path(card_authority.directory) / "issuing-ca.key.pem"
    return serialization.load_pem_private_key(path.read_bytes(), password=None)


def _crl(
    issuer_name: x509.Name,
    key,
    *,
    number: int | None = 1,
    this_update: datetime | None = None,
    validity: timedelta = timedelta(hours=24),
    revoked: tuple[tuple[int, x509.ReasonFlags | None], ...] = (),
    extensions: tuple[tuple[x509.ExtensionType, bool], ...] = (),
) -> bytes:
    this_update = this_update or datetime.now(UTC).replace(microsecond=0)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer_name)
        .last_update(this_update)
        .next_update(this_update + validity)
    )
    if number is not None:
        builder = builder.add_extension(x509.CRLNumber(number), critical=False)
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    for serial, reason in revoked:
        entry = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(this_update)
        if reason is not None:
            entry = entry.add_extension(x509.CRLReason(reason), critical=False)
        builder = builder.add_revoked_certificate(entry.build())
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


@pytest.fixture
def feed(http, card_authority_client, card_authority):
    _, headers = card_authority_client

    def _put(der: bytes, content_type: str = "application/pkix-crl"):
        return http.put(
            "/v1/card-authority/crl",
            data=der,
            headers={**headers, "Content-Type": content_type},
        )

    return _put


@pytest.fixture
def real_crl(card_authority):
    key = _issuing_key(card_authority)

    def _make(**kwargs) -> bytes:
        return _crl(card_authority.issuing_certificate.subject, key, **kwargs)

    return _make


def _stored(app) -> list[tuple[str, int]]:
    from core.db import get_session

    with app.app_context():
        rows = get_session().execute(select(CardCrl.issuer_name, CardCrl.crl_number))
        return [(name, int(number)) for name, number in rows]


def test_feed_accepts_a_good_crl_with_an_audit_entry(app, feed, card_authority):
    from core.db import get_session
    from licensing.audit import verify_chain
    from licensing.models import AuditEntry

    crl = card_authority.make_crl()
    response = feed(crl.public_bytes(serialization.Encoding.DER))
    assert response.status_code == 204 and response.get_data() == b""
    assert _stored(app) == [(card_authority.issuing_certificate.subject.rfc4514_string(), 1)]
    with app.app_context():
        session = get_session()
        assert verify_chain(session) is None
        # (the card authority's client creation is audited too)
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "crl.import")).one()
        assert entry.action == "crl.import" and entry.details["crl_number"] == "1"
        assert entry.actor is not None and entry.actor != "cli"


def test_feed_requires_the_card_authority_role_and_the_media_type(
    http, feed, verifier, card_authority
):
    der = card_authority.make_crl().public_bytes(serialization.Encoding.DER)
    _, headers = verifier
    problem(
        http.put("/v1/card-authority/crl", data=der, headers={**headers, **CRL_TYPE}),
        403,
        "forbidden",
    )
    problem(http.put("/v1/card-authority/crl", data=der, headers=CRL_TYPE), 401, "unauthenticated")
    problem(feed(der, "application/octet-stream"), 415, "unsupported_media_type")


@pytest.mark.parametrize(
    "body", [b"", b"not a crl", b"\x30\x03\x02\x01\x01", b"-----BEGIN X509 CRL-----\n"]
)
def test_garbage_is_invalid_crl(feed, body):
    problem(feed(body), 422, "invalid_crl")


def test_signature_must_be_by_the_named_ca_of_the_bundle(
    feed, card_authority, foreign_card_authority, forge
):
    # Same issuer name, other key: the foreign authority has the real names.
    foreign = foreign_card_authority.make_crl().public_bytes(serialization.Encoding.DER)
    problem(feed(foreign), 422, "invalid_crl")
    # Not a CA of the bundle at all.
    stranger, stranger_key = forge.self_signed_ca(Forge.name("Stranger CA"))
    problem(feed(_crl(stranger.subject, stranger_key)), 422, "invalid_crl")
    # Right name, body tampered after signing.
    good = bytearray(card_authority.make_crl().public_bytes(serialization.Encoding.DER))
    good[-10] ^= 0x01
    problem(feed(bytes(good)), 422, "invalid_crl")


def test_root_may_sign_a_crl_too(app, feed, card_authority):
    root_key = serialization.load_pem_private_key(
        (Path(card_authority.directory) / "root-ca.key.pem").read_bytes(), password=None
    )
    response = feed(_crl(card_authority.root_certificate.subject, root_key))
    assert response.status_code == 204
    assert len(_stored(app)) == 1


def test_issuer_without_crl_sign_is_refused(app, http, card_authority_client, forge, tmp_path):
    root, root_key = forge.self_signed_ca(Forge.name("No-cRLSign Root"))
    issuing_key = forge.key()
    issuing = Forge.certificate(
        subject=Forge.name("No-cRLSign Issuing CA"),
        subject_key=issuing_key,
        issuer=root.subject,
        issuer_key=root_key,
        ca=True,
        path_length=0,
        key_usage=ca_key_usage(crl_sign=False),
    )
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(
        b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (root, issuing))
    )
    app.config["CARD_TRUST_ANCHORS"] = str(bundle)
    _, headers = card_authority_client
    response = http.put(
        "/v1/card-authority/crl",
        data=_crl(issuing.subject, issuing_key),
        headers={**headers, **CRL_TYPE},
    )
    problem(response, 422, "invalid_crl")


def test_delta_partitioned_and_unknown_critical_crls_are_refused(feed, real_crl):
    delta = (x509.DeltaCRLIndicator(1), True)
    problem(feed(real_crl(number=2, extensions=(delta,))), 422, "invalid_crl")
    only_users = x509.IssuingDistributionPoint(
        full_name=None,
        relative_name=None,
        only_contains_user_certs=True,
        only_contains_ca_certs=False,
        only_some_reasons=None,
        indirect_crl=False,
        only_contains_attribute_certs=False,
    )
    problem(feed(real_crl(extensions=((only_users, True),))), 422, "invalid_crl")
    unknown = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.99999.2"), b"\x05\x00")
    problem(feed(real_crl(extensions=((unknown, True),))), 422, "invalid_crl")
    problem(feed(real_crl(number=None)), 422, "invalid_crl")  # no CRLNumber


def test_stale_or_future_crls_are_refused(feed, real_crl):
    now = datetime.now(UTC).replace(microsecond=0)
    stale = real_crl(this_update=now - timedelta(days=2), validity=timedelta(days=1))
    problem(feed(stale), 422, "invalid_crl")
    future = real_crl(this_update=now + timedelta(hours=1))
    problem(feed(future), 422, "invalid_crl")


def test_crl_number_never_goes_backwards(app, feed, real_crl):
    first = real_crl(number=5)
    assert feed(first).status_code == 204
    assert feed(first).status_code == 204  # the identical CRL again: a no-op
    problem(feed(real_crl(number=4)), 422, "invalid_crl")
    different_same_number = real_crl(number=5, revoked=((1234, None),))
    problem(feed(different_same_number), 422, "invalid_crl")
    assert feed(real_crl(number=6)).status_code == 204
    assert [number for _, number in _stored(app)] == [6]


def test_huge_crl_numbers_compare_as_numbers(app, feed, real_crl):
    assert feed(real_crl(number=9)).status_code == 204
    assert feed(real_crl(number=10)).status_code == 204  # "10" < "9" as text
    big = 2**159
    assert feed(real_crl(number=big)).status_code == 204
    problem(feed(real_crl(number=big - 1)), 422, "invalid_crl")


def test_entries_map_to_suspended_and_revoked(app, real_crl, feed):
    from core.db import get_session
    from verification.revocation import revocation_sets

    crl = real_crl(
        revoked=(
            (11, x509.ReasonFlags.certificate_hold),
            (12, x509.ReasonFlags.key_compromise),
            (13, None),
        )
    )
    assert feed(crl).status_code == 204
    with app.app_context():
        (current,) = revocation_sets(
            get_session(), [key for key in _issuer_keys(app)], app
        ).values()
    assert current.entries == {11: True, 12: False, 13: False}


def _issuer_keys(app) -> list[str]:
    from core.db import get_session

    with app.app_context():
        return list(get_session().scalars(select(CardCrl.issuer_key)))


def test_remove_from_crl_is_refused(feed, real_crl):
    crl = real_crl(revoked=((11, x509.ReasonFlags.remove_from_crl),))
    problem(feed(crl), 422, "invalid_crl")


def test_other_worker_imports_are_seen(app, feed, real_crl):
    """The per-process cache follows the stored CRL's digest, not its own history."""
    from core.db import get_session
    from verification.revocation import _cache, revocation_sets

    assert feed(real_crl(number=1)).status_code == 204
    _cache(app).clear()  # as in a worker that never saw the import
    assert feed(real_crl(number=2, revoked=((99, None),))).status_code == 204
    _cache(app).clear()
    with app.app_context():
        (current,) = revocation_sets(get_session(), _issuer_keys(app), app).values()
    assert current.entries == {99: False}


# --- readiness --------------------------------------------------------------------------------


def test_readiness_needs_a_fresh_crl_for_every_issuing_ca(http, card_authority, publish_crl):
    body = problem(http.get("/readyz"), 503, "unavailable")
    assert "card_revocation_lists" in body["checks"]
    publish_crl(validity=timedelta(hours=1))
    assert http.get("/readyz").status_code == 200
    with time_machine.travel(datetime.now(UTC) + timedelta(hours=1, minutes=1), tick=True):
        body = problem(http.get("/readyz"), 503, "unavailable")
        assert "card_revocation_lists" in body["checks"]


def test_readiness_fails_without_trust_anchors(app, http):
    app.config["CARD_TRUST_ANCHORS"] = str(Path(app.instance_path) / "missing.pem")
    body = problem(http.get("/readyz"), 503, "unavailable")
    assert body["checks"]["card_revocation_lists"] == "card trust anchors unavailable"


# --- CLI --------------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", [serialization.Encoding.DER, serialization.Encoding.PEM])
def test_cli_import(app, card_authority, tmp_path, encoding):
    path = tmp_path / "issuing.crl"
    path.write_bytes(card_authority.make_crl().public_bytes(encoding))
    runner = app.test_cli_runner()
    result = runner.invoke(args=["crl", "import", str(path)])
    assert result.exit_code == 0, result.output
    assert "CRL imported" in result.output and "number 1" in result.output
    again = runner.invoke(args=["crl", "import", str(path)])
    assert again.exit_code == 0 and "already current" in again.output
    assert len(_stored(app)) == 1


def test_cli_refusal_is_one_clear_line(app, card_authority, tmp_path):
    path = tmp_path / "bad.crl"
    path.write_bytes(b"garbage")
    result = app.test_cli_runner().invoke(args=["crl", "import", str(path)])
    assert result.exit_code != 0
    assert "invalid_crl" in result.output and "Traceback" not in result.output


def test_crls_larger_than_the_api_body_limit_are_accepted(app, feed, real_crl, card_authority):
    revoked = tuple((serial, x509.ReasonFlags.key_compromise) for serial in range(1, 3001))
    der = real_crl(revoked=revoked)
    assert len(der) > 64 * 1024
    assert feed(der).status_code == 204
    (current,) = _stored(app)
    assert current[1] == 1


# --- CRL policy (v2 hardening) ----------------------------------------------------------------


def _point(**fields) -> x509.IssuingDistributionPoint:
    values = {
        "full_name": None,
        "relative_name": None,
        "only_contains_user_certs": False,
        "only_contains_ca_certs": False,
        "only_some_reasons": None,
        "indirect_crl": False,
        "only_contains_attribute_certs": False,
    }
    values.update(fields)
    return x509.IssuingDistributionPoint(**values)


@pytest.mark.parametrize(
    "point",
    [
        _point(full_name=[x509.UniformResourceIdentifier("http://ca.example/part-1.crl")]),
        _point(
            relative_name=x509.RelativeDistinguishedName(
                [x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "part 1")]
            )
        ),
    ],
)
@pytest.mark.parametrize("critical", [True, False])
def test_a_crl_naming_a_distribution_point_is_refused(app, feed, real_crl, point, critical):
    # A partition's CRL would otherwise replace the whole issuer's revocations.
    assert (
        feed(real_crl(number=1, revoked=((77, x509.ReasonFlags.key_compromise),))).status_code
        == 204
    )
    problem(feed(real_crl(number=2, extensions=((point, critical),))), 422, "invalid_crl")
    assert [number for _, number in _stored(app)] == [1]


def test_a_critical_crl_number_is_refused(feed, real_crl):
    problem(
        feed(real_crl(number=None, extensions=((x509.CRLNumber(1), True),))), 422, "invalid_crl"
    )
    assert feed(real_crl(number=None, extensions=((x509.CRLNumber(1), False),))).status_code == 204


def test_a_serial_listed_twice_is_refused(feed, real_crl):
    twice = (
        (21, x509.ReasonFlags.key_compromise),
        (21, x509.ReasonFlags.certificate_hold),
    )
    body = problem(feed(real_crl(revoked=twice)), 422, "invalid_crl")
    assert "twice" in body["detail"]


def test_a_negative_serial_is_refused(feed, real_crl, card_authority):
    # The builder refuses negative serials, so patch one into a signed CRL and re-sign it.
    from cryptography.hazmat.primitives.asymmetric import padding

    der = real_crl(revoked=((0x7FAA, None),))
    tbs = x509.load_der_x509_crl(der).tbs_certlist_bytes
    negative = tbs.replace(b"\x02\x02\x7f\xaa", b"\x02\x02\x80\xaa")
    signature = _issuing_key(card_authority).sign(negative, padding.PKCS1v15(), hashes.SHA256())
    patched = der.replace(tbs, negative)[: -len(signature)] + signature
    assert x509.load_der_x509_crl(patched).is_signature_valid(
        card_authority.issuing_certificate.public_key()
    )
    problem(feed(patched), 422, "invalid_crl")


def test_validity_is_at_most_seven_days(feed, real_crl):
    body = problem(
        feed(real_crl(number=1, validity=timedelta(days=7, seconds=1))), 422, "invalid_crl"
    )
    assert "7 days" in body["detail"]
    assert feed(real_crl(number=1, validity=timedelta(days=7))).status_code == 204


def test_a_backdated_this_update_is_refused(app, feed, real_crl):
    now = datetime.now(UTC).replace(microsecond=0)
    assert feed(real_crl(number=1, this_update=now)).status_code == 204
    body = problem(
        feed(real_crl(number=2, this_update=now - timedelta(minutes=1))), 422, "invalid_crl"
    )
    assert "thisUpdate" in body["detail"]
    assert feed(real_crl(number=2, this_update=now)).status_code == 204
    assert [number for _, number in _stored(app)] == [2]


def _chain(card, card_authority):
    return [card.certificate, card_authority.issuing_certificate, card_authority.root_certificate]


def test_a_revocation_stays_in_force_when_a_later_crl_omits_it(
    app, feed, real_crl, issue_card, card_authority
):
    from core.db import get_session, utcnow
    from verification.models import PermanentRevocation
    from verification.revocation import CardStatus, card_statuses

    revoked, held = issue_card(), issue_card()
    first = (
        (revoked.serial, x509.ReasonFlags.key_compromise),
        (held.serial, x509.ReasonFlags.certificate_hold),
    )
    assert feed(real_crl(number=1, revoked=first, validity=timedelta(hours=1))).status_code == 204
    chains = [_chain(revoked, card_authority), _chain(held, card_authority)]
    with app.app_context():
        session = get_session()
        assert card_statuses(session, chains, utcnow()) == [CardStatus.REVOKED, CardStatus.HOLD]
    # The next CRL lists neither card: the hold is lifted, the revocation is not.
    assert feed(real_crl(number=2, validity=timedelta(hours=1))).status_code == 204
    with app.app_context():
        session = get_session()
        assert card_statuses(session, chains, utcnow()) == [CardStatus.REVOKED, CardStatus.GOOD]
        (kept,) = session.scalars(select(PermanentRevocation)).all()
        assert (kept.serial, kept.reason) == (format(revoked.serial, "x"), "keyCompromise")
        # Known for good even once the CRL is stale; the rest is unknown then.
        later = utcnow() + timedelta(hours=2)
        assert card_statuses(session, chains, later) == [CardStatus.REVOKED, CardStatus.UNKNOWN]


def test_a_permanently_revoked_card_is_refused_by_the_pipeline(
    app, verify, verifier, challenge, audience, licensed_holder, card_authority, feed, real_crl
):
    _, headers = verifier
    holder = licensed_holder(publish=False)
    revoked = ((holder.card.serial, x509.ReasonFlags.superseded),)
    assert feed(real_crl(number=1, revoked=revoked)).status_code == 204
    assert feed(real_crl(number=2)).status_code == 204
    problem(
        verify(headers, holder.sign(challenge(headers)["nonce"], audience)), 403, "card_revoked"
    )


# --- naming the CA at fault and what to do ------------------------------------------------------


def _root_key(card_authority):
    path = Path(card_authority.directory) / "root-ca.key.pem"
    return serialization.load_pem_private_key(path.read_bytes(), password=None)


def _key_id(certificate) -> str:
    return certificate.extensions.get_extension_for_class(
        x509.SubjectKeyIdentifier
    ).value.digest.hex()


def test_readiness_checks_a_root_that_published_a_crl(http, feed, card_authority, publish_crl):
    root = card_authority.root_certificate
    publish_crl(validity=timedelta(hours=24))
    assert (
        feed(_crl(root.subject, _root_key(card_authority), validity=timedelta(hours=1))).status_code
        == 204
    )
    assert http.get("/readyz").status_code == 200
    with time_machine.travel(datetime.now(UTC) + timedelta(hours=1, minutes=1), tick=True):
        reason = problem(http.get("/readyz"), 503, "unavailable")["checks"]["card_revocation_lists"]
    assert reason.startswith("root CA 'CN=Demo JPKI Root CA")
    assert _key_id(root) in reason and "past its nextUpdate" in reason
    assert "issuing CA" not in reason  # the issuing CA's CRL is still fresh
    # Not the demo authority's issuing CA: the card authority's feed is late.
    assert "CRL feed is late" in reason


def test_readiness_names_the_demo_issuing_ca_and_the_command(http, card_authority):
    reason = problem(http.get("/readyz"), 503, "unavailable")["checks"]["card_revocation_lists"]
    issuing = card_authority.issuing_certificate
    assert reason.startswith("issuing CA 'CN=Demo JPKI User Authentication CA")
    assert _key_id(issuing) in reason and "has published no CRL" in reason
    assert "flask --app app card-authority publish-crl" in reason
    assert "root CA" not in reason  # a root that never published a CRL needs none


def test_without_the_demo_authority_the_advice_is_the_feed(app, http, card_authority, tmp_path):
    app.config["CARD_AUTHORITY_DIR"] = str(tmp_path / "elsewhere")  # as in production
    reason = problem(http.get("/readyz"), 503, "unavailable")["checks"]["card_revocation_lists"]
    assert "CRL feed is late" in reason and "publish-crl" not in reason


def test_revocation_unavailable_names_the_issuing_ca_and_what_to_do(
    verify, verifier, challenge, audience, licensed_holder, card_authority
):
    _, headers = verifier
    holder = licensed_holder(publish=False)
    body = problem(
        verify(headers, holder.sign(challenge(headers)["nonce"], audience)),
        503,
        "revocation_unavailable",
    )
    assert "issuing CA 'CN=Demo JPKI User Authentication CA" in body["detail"]
    assert _key_id(card_authority.issuing_certificate) in body["detail"]
    assert "card-authority publish-crl" in body["detail"]
    assert holder.card.serial_hex not in body["detail"]


def test_cli_status_prints_each_ca_and_fails_when_not_ready(app, feed, card_authority, publish_crl):
    runner = app.test_cli_runner()
    missing = runner.invoke(args=["crl", "status"])
    assert missing.exit_code == 1
    assert "issuing CA 'CN=Demo JPKI User Authentication CA" in missing.output
    assert "no CRL" in missing.output and "publish-crl" in missing.output

    publish_crl(validity=timedelta(hours=2))
    fresh = runner.invoke(args=["crl", "status"])
    assert fresh.exit_code == 0, fresh.output
    root_line, issuing_line = fresh.output.splitlines()
    assert "CRL #1, thisUpdate " in issuing_line and "nextUpdate " in issuing_line
    assert "age 0h00m" in issuing_line
    assert root_line.startswith("root CA") and root_line.endswith("no CRL (none required)")

    with time_machine.travel(datetime.now(UTC) + timedelta(hours=3), tick=True):
        stale = runner.invoke(args=["crl", "status"])
    assert stale.exit_code == 1 and "age 3h00m" in stale.output
    assert "not ready: it has a CRL past its nextUpdate" in stale.output
