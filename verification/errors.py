"""The verification domain's errors: one per pipeline outcome code of the contract.

Every class is a ``core.errors.ServiceError`` (problem+json with a stable ``code``).
``detail`` is fixed text: never a token, a certificate field or exception text.

The pipeline attaches context for the caller (never sent to the client): ``leaf`` is
the card certificate once its chain has validated (step 3), ``nonce`` the nonce claim
once the payload has been read. The verifier flow uses them to record a rejected
attempt for the holder of a known card.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from core.errors import ServiceError

if TYPE_CHECKING:
    from cryptography import x509


class VerificationError(ServiceError):
    """Base of every rejection of a card assertion or a CRL."""

    leaf: x509.Certificate | None = None
    nonce: str | None = None
    step: ClassVar[int | None] = None


class InvalidRequest(VerificationError):
    status, code, title = 400, "invalid_request", "Invalid request"
    default_detail = "The request is malformed."


class PayloadTooLarge(VerificationError):
    status, code, title = 413, "payload_too_large", "Payload too large"
    default_detail = "The request exceeds the size limits."


class InvalidAssertion(VerificationError):
    status, code, title = 401, "invalid_assertion", "Invalid assertion"
    default_detail = "The card assertion is not acceptable."


class UntrustedCertificate(VerificationError):
    status, code, title = 401, "untrusted_certificate", "Untrusted certificate"
    default_detail = "The card certificate does not chain to a trusted card authority."


class InvalidNonce(VerificationError):
    status, code, title = 401, "invalid_nonce", "Invalid nonce"
    default_detail = "The nonce is unknown, expired, already used or not issued to this client."


class CardSuspended(VerificationError):
    status, code, title = 403, "card_suspended", "Card suspended"
    default_detail = "The card is suspended (reported lost)."


class CardRevoked(VerificationError):
    status, code, title = 403, "card_revoked", "Card revoked"
    default_detail = "The card certificate is revoked."


class RevocationUnavailable(VerificationError):
    status, code, title = 503, "revocation_unavailable", "Revocation status unavailable"
    default_detail = "No valid, unexpired CRL is available for the card's issuer."


class InvalidCrl(VerificationError):
    status, code, title = 422, "invalid_crl", "Invalid CRL"
    default_detail = "The CRL is not acceptable."


class TrustAnchorsUnavailable(ServiceError):
    """Configuration problem, not the card's fault: the trust bundle cannot be used."""

    status, code, title = 503, "unavailable", "Service unavailable"
    default_detail = "The card trust anchors are not configured."
