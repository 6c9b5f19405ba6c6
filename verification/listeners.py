"""Who is told about a successful verification, inside its transaction.

Domains above verification (monitoring) register a listener at start-up, so the
verification outcome can hand them what the card signed without importing them. A
listener adds rows to the session and never commits: the verification commits them
with its own nonce consumption and access record, or rolls them back with it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session


@dataclass(frozen=True)
class Verified:
    """A verification that found a licence for the asked profession."""

    verifier_client_id: str
    verifier_name: str
    subject: str  # the verifier's pairwise code for the holder
    holder_code: str  # the licensing agency's code
    licence_id: str
    profession: str
    at: datetime
    #: The consents the card signed that the challenge asked for (``monitoring``).
    consented_to: tuple[str, ...]


Listener = Callable[[Session, Verified], None]
_LISTENERS: list[Listener] = []


def on_verified(listener: Listener) -> None:
    """Registers ``listener`` once per process."""
    if listener not in _LISTENERS:
        _LISTENERS.append(listener)


def notify(session: Session, verified: Verified) -> None:
    for listener in _LISTENERS:
        listener(session, verified)
