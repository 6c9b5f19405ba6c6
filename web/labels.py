"""Words the pages show for codes (professions, outcomes, statuses, actions)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

PROFESSIONS = {
    "doctor": _l("Doctor"),
    "dentist": _l("Dentist"),
    "pharmacist": _l("Pharmacist"),
    "nurse": _l("Nurse"),
    "midwife": _l("Midwife"),
    "public_health_nurse": _l("Public health nurse"),
}

OUTCOMES = {
    "licensed": _l("Licensed"),
    "not_licensed": _l("Not licensed"),
    "active": _l("Active"),
    "suspended": _l("Suspended"),
    "revoked": _l("Revoked"),
    "erased": _l("Erased"),
    "deceased": _l("Deceased"),
    "pending": _l("Waiting"),
    "rejected": _l("Rejected"),
    "expired": _l("Not answered in time"),
    "signed_in": _l("Signed in"),
    "credential_issued": _l("Credential issued"),
    "monitoring_started": _l("Monitoring started"),
    "monitoring_ended": _l("Monitoring ended"),
}

ACTIONS = {
    "suspend": _l("Suspend"),
    "revoke": _l("Revoke"),
    "reinstate": _l("Reinstate"),
}


def _label(table: dict, code: str | None) -> str:
    return str(table.get(code, code or ""))


def profession_name(code: str | None) -> str:
    return _label(PROFESSIONS, code)


def outcome_name(code: str | None) -> str:
    return _label(OUTCOMES, code)


def action_name(code: str | None) -> str:
    return _label(ACTIONS, code)
