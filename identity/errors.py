"""Errors of the identity platform interface (every implementation raises these)."""

from __future__ import annotations

from core.config import ConfigurationError
from core.errors import Conflict, ServiceError


class InvalidMyNumber(ServiceError):
    """Not 12 ASCII digits, or the 12th digit is not the check digit."""

    status, code, title = 422, "invalid_my_number", "Invalid My Number"
    default_detail = "A My Number is 12 digits whose last digit is the check digit."

    def __init__(self, detail: str | None = None, *, position: int | None = None) -> None:
        super().__init__(detail)
        # For bulk calls: the index of the first invalid entry (never its value).
        self.position = position


class InvalidAgencyCode(ServiceError):
    """A code that was tampered with, made for another agency, or is unknown."""

    status, code, title = 400, "invalid_agency_code", "Invalid agency code"
    default_detail = "The code is not a valid code of this agency."


class CertificateAlreadyRegistered(Conflict):
    """The certificate (issuer + serial) is already registered to another person."""

    default_detail = "This certificate is already registered to another person."


class IdentityKeyError(ServiceError):
    """The platform's master keys are missing, malformed or do not match its store."""

    status, code, title = 500, "identity_key_error", "Identity platform key error"
    default_detail = "The identity platform's master keys are not usable."


class IdentityPlatformConfigurationError(ConfigurationError):
    """``IDENTITY_PLATFORM`` names no usable implementation (raised at start-up)."""
