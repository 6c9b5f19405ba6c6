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
    from verification.revocation import _revocation_sets

    crl = real_crl(
        revoked=(
            (11, x509.ReasonFlags.certificate_hold),
            (12, x509.ReasonFlags.key_compromise),
            (13, None),
        )
    )
    assert feed(crl).status_code == 204
    with app.app_context():
        (current,) = _revocation_sets(
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
    from verification.revocation import _cache, _revocation_sets

    assert feed(real_crl(number=1)).status_code == 204
    _cache(app).clear()  # as in a worker that never saw the import
    assert feed(real_crl(number=2, revoked=((99, None),))).status_code == 204
    _cache(app).clear()
    with app.app_context():
        (current,) = _revocation_sets(get_session(), _issuer_keys(app), app).values()
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
