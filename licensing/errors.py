"""Errors of the licensing domain (details are fixed text, never client input)."""

from __future__ import annotations

from core.errors import Conflict, InvalidRequest, NotFound, ServiceError, Unprocessable


class LicenceNotFound(NotFound):
    default_detail = "No such licence."


# Well-formed input that breaks a rule the request schema cannot express (a profession's
# own number format, dates relative to today): 422 ``unprocessable``.


class UnknownProfession(Unprocessable):
    default_detail = "Unknown profession."


class InvalidRegistrationNumber(Unprocessable):
    default_detail = "The registration number does not match the profession's format."


class InvalidLicenceData(Unprocessable):
    default_detail = "The licence data is invalid."


class RegistrationNumberTaken(Conflict):
    default_detail = "This registration number is already registered for this profession."


class AlreadyLicensed(Conflict):
    default_detail = "This person already holds a current licence for this profession."


class ConcurrentChange(Conflict):
    default_detail = "The licence was changed at the same time; try again."


class InvalidTransition(ServiceError):
    status, code, title = 409, "invalid_transition", "Invalid transition"
    default_detail = "The licence's current status does not allow this change."


class ImportFileError(InvalidRequest):
    default_detail = "The import file cannot be read."
