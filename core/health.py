"""``/healthz`` (process up) and ``/readyz`` (every dependency ready).

Domains add readiness checks with ``add_readiness_check``; each returns None when ready
or a short fixed reason when not.
"""

from __future__ import annotations

from collections.abc import Callable

from apiflask import APIBlueprint
from flask import Flask, current_app
from sqlalchemy import text

from core.db import get_session
from core.errors import problem_response

ReadinessCheck = Callable[[], str | None]

health_bp = APIBlueprint("health", __name__, tag="Operations")


def init_app(app: Flask) -> None:
    app.register_blueprint(health_bp)


def add_readiness_check(app: Flask, name: str, check: ReadinessCheck) -> None:
    app.extensions.setdefault("readiness_checks", {})[name] = check


def _database_ready() -> str | None:
    try:
        get_session().execute(text("SELECT 1"))
    except Exception:  # noqa: BLE001 - any failure means not ready
        return "database unreachable"
    return None


@health_bp.get("/healthz")
@health_bp.doc(summary="The process is up")
def healthz():
    return {"status": "ok"}


@health_bp.get("/readyz")
@health_bp.doc(
    summary="The database is reachable and every CA's CRL is fresh",
    description="Ready when the database answers and every issuing CA of the card trust "
    "bundle, and every CA that has published a CRL (roots included), has a CRL not past its "
    "nextUpdate. Otherwise 503 with `checks` naming each failing check; the CRL check names "
    "the CA (role, subject, key id) and what to do.",
    responses={200: "Ready", 503: "Not ready"},
)
def readyz():
    checks: dict[str, ReadinessCheck] = {"database": _database_ready}
    checks.update(current_app.extensions.get("readiness_checks", {}))
    failures = {}
    for name, check in checks.items():
        try:
            reason = check()
        except Exception:  # noqa: BLE001 - a failing check is a not-ready answer, not a 500
            reason = "check failed"
        if reason:
            failures[name] = reason
    if failures:
        return problem_response(
            503,
            "unavailable",
            "Not ready",
            "A dependency of the service is not ready.",
            checks=failures,
        )
    return {"status": "ready"}
