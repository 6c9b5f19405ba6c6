"""The verification domain's errors: one per pipeline outcome code of the contract.

Every class is a ``core.errors.ServiceError`` (problem+json with a stable ``code``).
``detail`` is fixed text: never a token, a certificate field or exception text.

A rejection of an assertion the card signed reaches the flows wrapped in
``verification.pipeline.AssertionRejected``, which holds the card assertion as data.
"""

from __future__ import annotations

from core.errors import ServiceError


class VerificationError(ServiceError):
    """Base of every rejection of a card assertion or a CRL."""


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
    default_detail = (
        "The nonce is unknown, expired, already used or not issued to this client: ask for "
        "a new challenge and have the card sign its nonce."
    )


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
