"""Small helpers shared by the quality tests (fuzz, concurrency, faults)."""

from __future__ import annotations

from clients.service import create_client
from core import db


def role_headers(app, role: str | None) -> dict[str, str]:
    """Authorization headers for a fresh client of ``role`` (no header for None)."""
    if role is None:
        return {}
    with app.app_context():
        created = create_client(db.get_session(), f"quality {role}", role)
    return {"Authorization": f"Bearer {created.token}"}
