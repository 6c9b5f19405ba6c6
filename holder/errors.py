"""The holder features' errors (problem codes in the contract's "Other error codes")."""

from __future__ import annotations

from core.errors import ServiceError


class NotLicensed(ServiceError):
    status, code, title = 404, "not_licensed", "Not licensed"
    default_detail = "You hold no licence for this profession."


class LicenceNotActive(ServiceError):
    status, code, title = 409, "licence_not_active", "Licence not active"
    default_detail = "Credentials are issued only for an active licence."


class InvalidPresentation(ServiceError):
    status, code, title = 401, "invalid_presentation", "Invalid presentation"
    default_detail = "The presentation is not acceptable."


class UnknownHolder(ServiceError):
    status, code, title = 403, "unknown_holder", "Unknown holder"
    default_detail = "The identity platform does not know this card's holder."
