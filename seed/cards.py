"""The demo card authority hands out virtual cards (``card_app.virtual_card``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from card_app.virtual_card import DEFAULT_SCRYPT_N, VirtualCard, check_pin_format
from seed.card_authority import CardAuthority, generate_card_key


def issue_virtual_card(
    authority: CardAuthority,
    path: Path | Callable[[int], Path],
    pin: str,
    *,
    register: Callable[[x509.Certificate], None] | None = None,
    holder_name: str | None = None,
    private_key: rsa.RSAPrivateKey | None = None,
    now: datetime | None = None,
    scrypt_n: int = DEFAULT_SCRYPT_N,
) -> VirtualCard:
    """New key (unless given), card certificate and card file, in that order.

    ``path`` may be a function of the serial. ``register(certificate)`` runs before the
    card file is written, typically
    ``lambda cert: get_identity_platform().register_certificate(cert, my_number)``;
    if it raises, the certificate is revoked (cessationOfOperation) and no file is
    written. For many cards, wrap the calls in ``authority.batch()``.
    """
    check_pin_format(pin)
    key = private_key or generate_card_key()
    certificate = authority.issue_card_certificate(key.public_key(), now=now)
    if register is not None:
        try:
            register(certificate)
        except BaseException:
            authority.revoke(
                certificate.serial_number, x509.ReasonFlags.cessation_of_operation, now=now
            )
            raise
    target = Path(path(certificate.serial_number) if callable(path) else path)
    target.parent.mkdir(parents=True, exist_ok=True)
    return VirtualCard.create(
        target, key, certificate, authority.chain, pin, holder_name=holder_name, scrypt_n=scrypt_n
    )
