"""The audit hook: packages below licensing (clients, core's signing keys, the identity
platform stand-in) record audited actions here without importing licensing.

The domain that keeps the audit trail registers its recorder on the app
(``register_recorder``); ``record`` appends to the trail in the caller's transaction
(no commit). Without a registered recorder it refuses: an audited action never happens
unaudited.
"""

from __future__ import annotations

from typing import Any, Protocol

from flask import Flask, current_app
from sqlalchemy.orm import Session

_EXTENSION = "audit_recorder"


class Recorder(Protocol):
    def __call__(
        self,
        session: Session,
        *,
        actor: str | None,
        action: str,
        target: str,
        details: dict[str, Any],
    ) -> object: ...


def register_recorder(app: Flask, recorder: Recorder) -> None:
    app.extensions[_EXTENSION] = recorder


def record(
    session: Session, *, actor: str | None, action: str, target: str, details: dict[str, Any]
) -> None:
    """Appends an entry to the audit trail in ``session``'s transaction (no commit)."""
    recorder = current_app.extensions.get(_EXTENSION)
    if recorder is None:
        raise RuntimeError("no audit recorder is registered on this app")
    recorder(session, actor=actor, action=action, target=target, details=details)


def console_operator() -> str:
    """Who acts at the console: the OS user (``--actor`` overrides it)."""
    import getpass

    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no user name in the environment or the password file
        return "console"
