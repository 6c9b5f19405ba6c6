"""Stand-in for the card authority (J-LIS in Japan): a two-level CA with the JPKI
user-authentication profile, card lifecycle (hold, resume, revoke) and signed CRLs.

Everything lives in one directory (``CARD_AUTHORITY_DIR``, default
``instance/card_authority``)::

    root-ca.pem, root-ca.key.pem            self-signed root (keys are PEM, mode 0600)
    issuing-ca.pem, issuing-ca.key.pem      issuing (intermediate) CA, pathLen 0
    trust-anchors.pem                       root + issuing CA: the default CARD_TRUST_ANCHORS
    state.json                              issued serials, statuses, next CRL number
    certificates/<serial hex>.pem           every card certificate issued
    issuing-ca.crl                          the newest CRL (DER)

Profile (JPKI user authentication): RSA-2048 and sha256WithRSAEncryption everywhere;
card subject ``C=JP, CN=<opaque random string>`` (no personal data); keyUsage
digitalSignature only (critical); basicConstraints cA=false (critical); certificate
policy ``USER_AUTH_POLICY_OID``; SKI/AKI; five years of validity; random positive
serial numbers. CAs: basicConstraints cA=true (critical; pathLen 0 on the issuing CA),
keyUsage keyCertSign + cRLSign (critical).

Every change to ``state.json`` happens under an exclusive lock (re-read, change, atomic
replace), so the CLI, the demo seeder and tests may share one directory safely.
"""

from __future__ import annotations

import contextlib
import json
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from core.errors import Conflict, NotFound, ServiceError
from core.files import write_atomic

try:  # POSIX; elsewhere the state file is simply not locked.
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

#: User-authentication certificate policy of the demo card profile: a UUID-based OID
#: under the ``2.25`` arc (ITU-T X.667), which needs no registration. See DEVELOPING.md.
USER_AUTH_POLICY_OID = x509.ObjectIdentifier("2.25.335375686075668403148597806950444072777")

KEY_SIZE = 2048
PUBLIC_EXPONENT = 65537
SIGNATURE_HASH = hashes.SHA256
CARD_VALIDITY_YEARS = 5
ROOT_VALIDITY_YEARS = 20
ISSUING_VALIDITY_YEARS = 10
#: CA certificates start a day early, so a clock a little behind still accepts them.
CA_BACKDATE = timedelta(days=1)
#: Demo CRLs: valid a day (the service accepts at most 7), re-published when less
#: than a quarter of that is left.
CRL_VALIDITY = timedelta(hours=24)
CRL_REFRESH_SHARE = 0.25

ROOT_NAME = x509.Name(
    [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Demo Card Authority (stand-in)"),
        x509.NameAttribute(NameOID.COMMON_NAME, "Demo JPKI Root CA"),
    ]
)
ISSUING_NAME = x509.Name(
    [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Demo Card Authority (stand-in)"),
        x509.NameAttribute(NameOID.COMMON_NAME, "Demo JPKI User Authentication CA"),
    ]
)

STATE_VERSION = 1
STATUS_VALID = "valid"
STATUS_ON_HOLD = "on_hold"
STATUS_REVOKED = "revoked"
#: Reasons accepted by :meth:`CardAuthority.revoke` (certificateHold is report_lost's).
REVOCATION_REASONS = frozenset(
    {
        x509.ReasonFlags.unspecified,
        x509.ReasonFlags.key_compromise,
        x509.ReasonFlags.affiliation_changed,
        x509.ReasonFlags.superseded,
        x509.ReasonFlags.cessation_of_operation,
        x509.ReasonFlags.privilege_withdrawn,
    }
)


class CardAuthorityMissing(ServiceError):
    status, code, title = 503, "card_authority_missing", "Card authority not initialised"
    default_detail = "No card authority here yet; run `flask --app app card-authority init`."


class CardAuthorityCorrupt(ServiceError):
    status, code, title = 500, "card_authority_corrupt", "Card authority files inconsistent"
    default_detail = (
        "The card authority directory is incomplete or inconsistent; "
        "remove it and run `card-authority init` again."
    )


class UnknownCard(NotFound):
    code = "unknown_card"
    default_detail = "This card authority never issued a certificate with that serial."


class InvalidCardTransition(Conflict):
    code = "invalid_card_transition"
    default_detail = "The card's current status does not allow this change."


def serial_hex(serial: int) -> str:
    """The CLI's and the state file's spelling of a serial: lowercase hex, no prefix."""
    return format(serial, "x")


def parse_serial(text: str) -> int:
    """Accepts ``1f2e``, ``0x1F2E`` and ``1f:2e`` (as openssl prints serials)."""
    cleaned = text.strip().lower().removeprefix("0x").replace(":", "")
    try:
        value = int(cleaned, 16)
    except ValueError:
        raise ValueError("serial must be hexadecimal") from None
    if value <= 0:
        raise ValueError("serial must be positive")
    return value


def add_years(moment: datetime, years: int) -> datetime:
    try:
        return moment.replace(year=moment.year + years)
    except ValueError:  # 29 February
        return moment.replace(year=moment.year + years, day=28)


def _utc_seconds(moment: datetime | None) -> datetime:
    moment = moment or datetime.now(UTC)
    if moment.tzinfo is None:
        raise ValueError("naive datetime")
    return moment.astimezone(UTC).replace(microsecond=0)


# -- files -------------------------------------------------------------------------


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Exclusive advisory lock on ``path`` (created if missing) for the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        if fcntl is not None:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _write_private_key(path: Path, key: rsa.RSAPrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    write_atomic(path, pem, mode=0o600)


def _read_private_key(path: Path) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise CardAuthorityCorrupt()
    return key


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def generate_card_key() -> rsa.RSAPrivateKey:
    """An RSA-2048 key, as on a JPKI card."""
    return rsa.generate_private_key(public_exponent=PUBLIC_EXPONENT, key_size=KEY_SIZE)


# -- state -------------------------------------------------------------------------


@dataclass(frozen=True)
class CardRecord:
    """What the card authority remembers about one card certificate."""

    serial: int
    status: str  # valid | on_hold | revoked
    issued_at: datetime
    not_after: datetime
    changed_at: datetime | None  # when it went on hold or was revoked
    reason: x509.ReasonFlags | None  # certificate_hold while on hold

    @property
    def serial_hex(self) -> str:
        return serial_hex(self.serial)

    @classmethod
    def from_json(cls, key: str, data: dict[str, Any]) -> CardRecord:
        return cls(
            serial=int(key, 16),
            status=data["status"],
            issued_at=datetime.fromisoformat(data["issued_at"]),
            not_after=datetime.fromisoformat(data["not_after"]),
            changed_at=datetime.fromisoformat(data["changed_at"])
            if data.get("changed_at")
            else None,
            reason=x509.ReasonFlags(data["reason"]) if data.get("reason") else None,
        )


def _empty_state() -> dict[str, Any]:
    return {"version": STATE_VERSION, "next_crl_number": 1, "cards": {}}


# -- the authority -----------------------------------------------------------------


class CardAuthority:
    """Root CA -> issuing CA -> card certificates, with persisted card statuses."""

    ROOT_CERT = "root-ca.pem"
    ROOT_KEY = "root-ca.key.pem"
    ISSUING_CERT = "issuing-ca.pem"
    ISSUING_KEY = "issuing-ca.key.pem"
    TRUST_BUNDLE = "trust-anchors.pem"
    STATE = "state.json"
    LOCK = ".lock"
    CRL = "issuing-ca.crl"
    CERTIFICATES = "certificates"

    def __init__(
        self,
        directory: Path,
        root_certificate: x509.Certificate,
        issuing_certificate: x509.Certificate,
        issuing_key: rsa.RSAPrivateKey,
    ) -> None:
        self.directory = directory
        self.root_certificate = root_certificate
        self.issuing_certificate = issuing_certificate
        self._issuing_key = issuing_key
        self._batch_state: dict[str, Any] | None = None

    # -- construction --

    @classmethod
    def init(cls, directory: Path, *, now: datetime | None = None) -> CardAuthority:
        """Creates whatever is missing (root CA, issuing CA, state) and rewrites the
        trust bundle. Running it again changes nothing but the bundle's mtime.

        New CA certificates are valid from ``now`` (default: the current time) minus a
        day; tests that travel back in time pass an earlier ``now``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        not_before = _utc_seconds(now) - CA_BACKDATE
        with file_lock(directory / cls.LOCK):
            root_cert, root_key = cls._load_or_create_root(directory, not_before)
            issuing_cert, issuing_key = cls._load_or_create_issuing(
                directory, root_cert, root_key, not_before
            )
            if not (directory / cls.STATE).exists():
                write_atomic(directory / cls.STATE, _dump_state(_empty_state()))
            write_atomic(directory / cls.TRUST_BUNDLE, _pem(root_cert) + _pem(issuing_cert))
        return cls(directory, root_cert, issuing_cert, issuing_key)

    @classmethod
    def load(cls, directory: Path) -> CardAuthority:
        directory = Path(directory)
        paths = [directory / name for name in (cls.ROOT_CERT, cls.ISSUING_CERT, cls.ISSUING_KEY)]
        if not all(path.exists() for path in paths):
            raise CardAuthorityMissing()
        root_cert = x509.load_pem_x509_certificate(paths[0].read_bytes())
        issuing_cert = x509.load_pem_x509_certificate(paths[1].read_bytes())
        issuing_key = _read_private_key(paths[2])
        cls._check_issuing(root_cert, issuing_cert, issuing_key)
        return cls(directory, root_cert, issuing_cert, issuing_key)

    @classmethod
    def _load_or_create_root(
        cls, directory: Path, now: datetime
    ) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
        cert_path, key_path = directory / cls.ROOT_CERT, directory / cls.ROOT_KEY
        if cert_path.exists() and key_path.exists():
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
            key = _read_private_key(key_path)
            if cert.public_key() != key.public_key():
                raise CardAuthorityCorrupt()
            return cert, key
        if cert_path.exists() or key_path.exists() or (directory / cls.ISSUING_CERT).exists():
            raise CardAuthorityCorrupt()
        key = generate_card_key()
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        cert = (
            x509.CertificateBuilder()
            .subject_name(ROOT_NAME)
            .issuer_name(ROOT_NAME)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(add_years(now, ROOT_VALIDITY_YEARS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_ca_key_usage(), critical=True)
            .add_extension(ski, critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski),
                critical=False,
            )
            .sign(key, SIGNATURE_HASH())
        )
        _write_private_key(key_path, key)
        write_atomic(cert_path, _pem(cert))
        return cert, key

    @classmethod
    def _load_or_create_issuing(
        cls,
        directory: Path,
        root_cert: x509.Certificate,
        root_key: rsa.RSAPrivateKey,
        now: datetime,
    ) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
        cert_path, key_path = directory / cls.ISSUING_CERT, directory / cls.ISSUING_KEY
        if cert_path.exists() and key_path.exists():
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
            key = _read_private_key(key_path)
            cls._check_issuing(root_cert, cert, key)
            return cert, key
        if cert_path.exists() or key_path.exists():
            raise CardAuthorityCorrupt()
        key = generate_card_key()
        cert = (
            x509.CertificateBuilder()
            .subject_name(ISSUING_NAME)
            .issuer_name(root_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(add_years(now, ISSUING_VALIDITY_YEARS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_ca_key_usage(), critical=True)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .add_extension(_aki(root_cert), critical=False)
            .sign(root_key, SIGNATURE_HASH())
        )
        _write_private_key(key_path, key)
        write_atomic(cert_path, _pem(cert))
        return cert, key

    @staticmethod
    def _check_issuing(
        root_cert: x509.Certificate, cert: x509.Certificate, key: rsa.RSAPrivateKey
    ) -> None:
        if cert.public_key() != key.public_key():
            raise CardAuthorityCorrupt()
        try:
            cert.verify_directly_issued_by(root_cert)
        except (ValueError, TypeError, InvalidSignature) as error:
            raise CardAuthorityCorrupt() from error

    # -- properties --

    @property
    def trust_bundle_path(self) -> Path:
        return self.directory / self.TRUST_BUNDLE

    @property
    def crl_path(self) -> Path:
        return self.directory / self.CRL

    @property
    def chain(self) -> list[x509.Certificate]:
        """The intermediates a card presents after its own certificate (x5c order)."""
        return [self.issuing_certificate]

    # -- state handling --

    def _read_state(self) -> dict[str, Any]:
        path = self.directory / self.STATE
        if not path.exists():
            return _empty_state()
        state = json.loads(path.read_text("utf-8"))
        if state.get("version") != STATE_VERSION:
            raise CardAuthorityCorrupt()
        return state

    @contextlib.contextmanager
    def _state(self) -> Iterator[dict[str, Any]]:
        """Read-modify-write of state.json under the lock (or inside a batch)."""
        if self._batch_state is not None:
            yield self._batch_state
            return
        with file_lock(self.directory / self.LOCK):
            state = self._read_state()
            yield state
            write_atomic(self.directory / self.STATE, _dump_state(state))

    @contextlib.contextmanager
    def batch(self) -> Iterator[CardAuthority]:
        """Holds the lock and writes state.json once at the end (for bulk issuance)."""
        if self._batch_state is not None:
            yield self
            return
        with file_lock(self.directory / self.LOCK):
            self._batch_state = self._read_state()
            try:
                yield self
            finally:
                state, self._batch_state = self._batch_state, None
                write_atomic(self.directory / self.STATE, _dump_state(state))

    def card(self, serial: int) -> CardRecord:
        state = self._batch_state if self._batch_state is not None else self._read_state()
        entry = state["cards"].get(serial_hex(serial))
        if entry is None:
            raise UnknownCard()
        return CardRecord.from_json(serial_hex(serial), entry)

    def cards(self) -> list[CardRecord]:
        state = self._batch_state if self._batch_state is not None else self._read_state()
        return [CardRecord.from_json(key, entry) for key, entry in state["cards"].items()]

    def certificate(self, serial: int) -> x509.Certificate:
        path = self.directory / self.CERTIFICATES / f"{serial_hex(serial)}.pem"
        if not path.exists():
            raise UnknownCard()
        return x509.load_pem_x509_certificate(path.read_bytes())

    # -- issuance --

    def issue_card_certificate(
        self, public_key: rsa.RSAPublicKey, *, now: datetime | None = None
    ) -> x509.Certificate:
        """A card's user-authentication certificate; the subject carries no personal data."""
        if not isinstance(public_key, rsa.RSAPublicKey) or public_key.key_size < KEY_SIZE:
            raise ValueError("card keys are RSA, 2048 bits or more")
        not_before = _utc_seconds(now)
        serial = x509.random_serial_number()
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
                # Opaque and random: nothing about the person, not even the serial.
                x509.NameAttribute(NameOID.COMMON_NAME, secrets.token_hex(12).upper()),
            ]
        )
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.issuing_certificate.subject)
            .public_key(public_key)
            .serial_number(serial)
            .not_valid_before(not_before)
            .not_valid_after(add_years(not_before, CARD_VALIDITY_YEARS))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.CertificatePolicies([x509.PolicyInformation(USER_AUTH_POLICY_OID, None)]),
                critical=False,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(_aki(self.issuing_certificate), critical=False)
            .sign(self._issuing_key, SIGNATURE_HASH())
        )
        write_atomic(self.directory / self.CERTIFICATES / f"{serial_hex(serial)}.pem", _pem(cert))
        with self._state() as state:
            state["cards"][serial_hex(serial)] = {
                "status": STATUS_VALID,
                "issued_at": not_before.isoformat(),
                "not_after": cert.not_valid_after_utc.isoformat(),
                "changed_at": None,
                "reason": None,
            }
        return cert

    # -- lifecycle --

    def report_lost(self, serial: int, *, now: datetime | None = None) -> None:
        """The 24/7 line: the card goes on hold (certificateHold). Again: no change."""
        with self._state() as state:
            entry = _entry(state, serial)
            if entry["status"] == STATUS_ON_HOLD:
                return
            if entry["status"] == STATUS_REVOKED:
                raise InvalidCardTransition("A revoked card cannot be put on hold.")
            entry.update(
                status=STATUS_ON_HOLD,
                changed_at=_utc_seconds(now).isoformat(),
                reason=x509.ReasonFlags.certificate_hold.value,
            )

    def resume(self, serial: int) -> None:
        """Lifts a hold: the serial is simply absent from the next full CRL."""
        with self._state() as state:
            entry = _entry(state, serial)
            if entry["status"] != STATUS_ON_HOLD:
                raise InvalidCardTransition("Only a card on hold can be resumed.")
            entry.update(status=STATUS_VALID, changed_at=None, reason=None)

    def revoke(
        self,
        serial: int,
        reason: x509.ReasonFlags = x509.ReasonFlags.key_compromise,
        *,
        now: datetime | None = None,
    ) -> None:
        """Terminal; allowed from valid or on hold."""
        if reason not in REVOCATION_REASONS:
            raise ValueError("not a revocation reason (use report_lost for a hold)")
        with self._state() as state:
            entry = _entry(state, serial)
            if entry["status"] == STATUS_REVOKED:
                raise InvalidCardTransition("The card is already revoked.")
            entry.update(
                status=STATUS_REVOKED,
                changed_at=_utc_seconds(now).isoformat(),
                reason=reason.value,
            )

    def reissue(
        self,
        old_serial: int,
        public_key: rsa.RSAPublicKey,
        *,
        now: datetime | None = None,
        before_revoking: Callable[[x509.Certificate], None] | None = None,
    ) -> x509.Certificate:
        """A new card certificate replacing ``old_serial``, which is then revoked with
        reason superseded (a held card may be re-issued; a revoked one may not).

        The card authority does not know people: ``before_revoking(new_certificate)`` is
        where the caller registers the new certificate with the identity platform for
        the same person. If it raises, the new certificate is revoked
        (cessationOfOperation) and the old card is left as it was.
        """
        if self.card(old_serial).status == STATUS_REVOKED:
            raise InvalidCardTransition("A revoked card cannot be re-issued; issue a new one.")
        cert = self.issue_card_certificate(public_key, now=now)
        if before_revoking is not None:
            try:
                before_revoking(cert)
            except BaseException:
                self.revoke(cert.serial_number, x509.ReasonFlags.cessation_of_operation, now=now)
                raise
        self.revoke(old_serial, x509.ReasonFlags.superseded, now=now)
        return cert

    # -- CRLs --

    def make_crl(
        self, *, now: datetime | None = None, validity: timedelta = CRL_VALIDITY
    ) -> x509.CertificateRevocationList:
        """A full CRL signed by the issuing CA, with the next CRLNumber (persisted), and
        saved as ``issuing-ca.crl``. Held cards carry certificateHold, revoked cards their
        reason; resumed cards are absent."""
        this_update = _utc_seconds(now)
        with self._state() as state:
            number = state["next_crl_number"]
            state["next_crl_number"] = number + 1
            builder = (
                x509.CertificateRevocationListBuilder()
                .issuer_name(self.issuing_certificate.subject)
                .last_update(this_update)
                .next_update(this_update + validity)
                .add_extension(x509.CRLNumber(number), critical=False)
                .add_extension(_aki(self.issuing_certificate), critical=False)
            )
            for key, entry in sorted(state["cards"].items()):
                if entry["status"] == STATUS_VALID:
                    continue
                revoked = (
                    x509.RevokedCertificateBuilder()
                    .serial_number(int(key, 16))
                    .revocation_date(datetime.fromisoformat(entry["changed_at"]))
                    .add_extension(
                        x509.CRLReason(x509.ReasonFlags(entry["reason"])), critical=False
                    )
                    .build()
                )
                builder = builder.add_revoked_certificate(revoked)
            crl = builder.sign(self._issuing_key, SIGNATURE_HASH())
            write_atomic(self.crl_path, crl.public_bytes(serialization.Encoding.DER))
        return crl


def crl_refresh_due(
    this_update: datetime | None, next_update: datetime | None, now: datetime
) -> bool:
    """True when a CRL is missing, stale, or within ``CRL_REFRESH_SHARE`` of its end."""
    if this_update is None or next_update is None:
        return True
    return now >= next_update - (next_update - this_update) * CRL_REFRESH_SHARE


def _entry(state: dict[str, Any], serial: int) -> dict[str, Any]:
    entry = state["cards"].get(serial_hex(serial))
    if entry is None:
        raise UnknownCard()
    return entry


def _dump_state(state: dict[str, Any]) -> bytes:
    return json.dumps(state, indent=1, sort_keys=True).encode("utf-8")


def _ca_key_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=False,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


def _aki(issuer: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)
