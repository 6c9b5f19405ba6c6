"""Staff accounts of an organisation (an API client): argon2id passwords, a TOTP second
factor, a one-time set-up link, and a lockout after repeated failed sign-ins."""

from __future__ import annotations

import hashlib
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from clients.models import ApiClient, Role
from core.db import utcnow
from core.errors import Conflict, NotFound, Unprocessable
from web.models import StaffAccount, StaffRole

SETUP_LINK_LIFETIME = timedelta(hours=24)
MAX_FAILED_SIGN_INS = 5
LOCKOUT = timedelta(minutes=15)
PASSWORD_MIN, PASSWORD_MAX = 12, 256
EMAIL_MAX = 254
TOTP_ISSUER = "Licence verification"

# argon2-cffi's defaults are RFC 9106's second recommended option (argon2id, 64 MiB, t=3).
_hasher = PasswordHasher()
# Verified against when the e-mail is unknown, so both cases take the same time.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class CreatedStaff:
    account: StaffAccount
    setup_token: str  # shown once, in the set-up link


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def normalise_email(value: str) -> str:
    email = unicodedata.normalize("NFC", value or "").strip().lower()
    local, _, domain = email.partition("@")
    if (
        not local
        or not domain
        or "." not in domain
        or len(email) > EMAIL_MAX
        or any(unicodedata.category(ch)[0] in "CZ" for ch in email)
    ):
        raise Unprocessable("The e-mail address is not valid.")
    return email


def create_staff(
    session: Session, *, client_name: str, email: str, role: StaffRole = StaffRole.STAFF
) -> CreatedStaff:
    client = session.scalar(
        select(ApiClient).where(
            ApiClient.name == client_name,
            ApiClient.revoked_at.is_(None),
            ApiClient.role.in_((Role.VERIFIER, Role.REGULATOR)),
        )
    )
    if client is None:
        raise NotFound("No active verifier or regulator client has this name.")
    token = secrets.token_urlsafe(32)
    account = StaffAccount(
        id=secrets.token_hex(16),
        client_id=client.id,
        email=normalise_email(email),
        role=role,
        totp_secret=pyotp.random_base32(),
        setup_token_hash=_hash_token(token),
        setup_expires_at=utcnow() + SETUP_LINK_LIFETIME,
        failed_logins=0,
    )
    session.add(account)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise Conflict("A staff account with this e-mail address exists.") from None
    return CreatedStaff(account, token)


def account_for_setup(session: Session, token: str) -> StaffAccount:
    if not token or len(token) > 100:
        raise NotFound(_l("This set-up link is unknown or has expired: ask for a new one."))
    account = session.scalar(
        select(StaffAccount).where(StaffAccount.setup_token_hash == _hash_token(token))
    )
    if account is None or account.setup_expires_at is None or account.setup_expires_at <= utcnow():
        raise NotFound(_l("This set-up link is unknown or has expired: ask for a new one."))
    return account


def provisioning_uri(account: StaffAccount) -> str:
    assert account.totp_secret is not None
    return pyotp.TOTP(account.totp_secret).provisioning_uri(
        name=account.email, issuer_name=TOTP_ISSUER
    )


def _accept_code(account: StaffAccount, code: str, now: datetime) -> bool:
    """A current TOTP code (one step of drift allowed) not used before."""
    code = (code or "").strip()
    if account.totp_secret is None or not (code.isascii() and code.isdigit() and len(code) == 6):
        return False
    totp = pyotp.TOTP(account.totp_secret)
    step = totp.timecode(now)
    for candidate in (step, step - 1, step + 1):
        if secrets.compare_digest(totp.generate_otp(candidate), code):
            if account.totp_last_step is not None and candidate <= account.totp_last_step:
                return False
            account.totp_last_step = candidate
            return True
    return False


def complete_setup(session: Session, token: str, password: str, code: str) -> StaffAccount:
    account = account_for_setup(session, token)
    if not PASSWORD_MIN <= len(password or "") <= PASSWORD_MAX:
        raise Unprocessable(_l("The password must be 12 to 256 characters."))
    if not _accept_code(account, code, utcnow()):
        session.rollback()
        raise Unprocessable(
            _l("The code from the authenticator app is not right: try the next one.")
        )
    account.password_hash = _hasher.hash(password)
    account.setup_token_hash = None
    account.setup_expires_at = None
    session.commit()
    return account


class SignInFailed(Unprocessable):
    code, title = "sign_in_failed", "Sign-in failed"
    default_detail = _l("The e-mail address, password or code is not right.")


class AccountLocked(SignInFailed):
    code, title = "account_locked", "Account locked"
    default_detail = _l("Too many failed sign-ins: try again in 15 minutes.")


def sign_in(session: Session, email: str, password: str, code: str) -> StaffAccount:
    """The account, when the password and a fresh TOTP code are right; counts failures."""
    now = utcnow()
    try:
        address = normalise_email(email)
    except Unprocessable:
        raise SignInFailed() from None
    account = session.scalar(select(StaffAccount).where(StaffAccount.email == address))
    if account is None or account.password_hash is None:
        _verify(_DUMMY_HASH, password)
        raise SignInFailed()
    if account.locked_until is not None and account.locked_until > now:
        raise AccountLocked()
    if not (_verify(account.password_hash, password) and _accept_code(account, code, now)):
        account.failed_logins += 1
        if account.failed_logins >= MAX_FAILED_SIGN_INS:
            account.failed_logins = 0
            account.locked_until = now + LOCKOUT
        session.commit()
        raise SignInFailed()
    account.failed_logins = 0
    account.locked_until = None
    session.commit()
    return account


def _verify(password_hash: str, password: str) -> bool:
    if not password or len(password) > PASSWORD_MAX:
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def staff_client(session: Session, account: StaffAccount) -> ApiClient | None:
    """The account's organisation, while its client is active."""
    client = session.get(ApiClient, account.client_id)
    return client if client is not None and client.revoked_at is None else None
