"""Real cards and HSMs over PKCS#11 (python-pkcs11).

A JPKI My Number card is driven by OpenSC's PKCS#11 module; SoftHSM2 stands in for it
in the tests. The token is chosen by label (or the only token present); the
user-authentication key and its certificate by label or id (or the only signing key,
with the certificate of the same ``CKA_ID``). The issuing CA for ``x5c`` comes from the
token (a certificate whose subject is the card certificate's issuer) or from a file.

Signing is ``CKM_SHA256_RSA_PKCS`` (RS256). PIN failures become clear ``CardError``s:
a wrong PIN (with a warning when the token says few tries are left) and a locked PIN,
which is also checked from the token's flags before the PIN is sent, so a locked card
is not asked again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pkcs11
from cryptography import x509
from pkcs11 import Attribute, Mechanism, ObjectClass, TokenFlag
from pkcs11 import exceptions as p11

from card_app.virtual_card import CardError


class TokenNotFound(CardError):
    pass


class KeyNotFound(CardError):
    pass


class ModuleNotLoadable(CardError):
    def __init__(self) -> None:
        super().__init__(
            "The PKCS#11 module could not be loaded: check the path given to --pkcs11-module "
            "(for a My Number card: OpenSC's opensc-pkcs11.so)."
        )


class TokenPinIncorrect(CardError):
    def __init__(self, flags: TokenFlag) -> None:
        if flags & TokenFlag.USER_PIN_FINAL_TRY:
            warning = " One try is left before the card locks."
        elif flags & TokenFlag.USER_PIN_COUNT_LOW:
            warning = " Few tries are left before the card locks."
        else:
            warning = ""
        super().__init__("Wrong PIN." + warning)


class TokenPinLocked(CardError):
    def __init__(self) -> None:
        super().__init__(
            "The card's PIN is locked after too many wrong tries and it cannot sign; "
            "have it reset where the card was issued (the municipal office for a My Number card)."
        )


class TokenPinRejected(CardError):
    def __init__(self) -> None:
        super().__init__("The token refused this PIN's length or characters; check the PIN.")


class TokenError(CardError):
    def __init__(self) -> None:
        super().__init__("The token failed to sign; check that the card is in the reader.")


@dataclass
class Pkcs11Card:
    """A card key on a PKCS#11 token; ``certificate`` and ``chain`` are read on open."""

    module: str
    token_label: str | None = None
    key_label: str | None = None
    key_id: bytes | None = None
    certificate_file: Path | None = None
    chain_file: Path | None = None
    certificate: x509.Certificate = field(init=False)
    chain: list[x509.Certificate] = field(init=False)

    def __post_init__(self) -> None:
        with self._token().open() as session:
            if self.certificate_file is not None:
                self.certificate = _load_certificates(self.certificate_file)[0]
            else:
                self.certificate = self._certificate_on_token(session)
            if self.chain_file is not None:
                self.chain = _load_certificates(self.chain_file)
            else:
                self.chain = _issuers_on_token(session, self.certificate)

    def sign(self, pin: str, data: bytes) -> bytes:
        token = self._token()
        if token.flags & TokenFlag.USER_PIN_LOCKED:
            raise TokenPinLocked()
        try:
            with token.open(user_pin=pin) as session:
                key = session.get_key(ObjectClass.PRIVATE_KEY, **self._key_selector(session))
                return key.sign(data, mechanism=Mechanism.SHA256_RSA_PKCS)
        except p11.PinIncorrect:
            raise TokenPinIncorrect(self._token().flags) from None
        except p11.PinLocked:
            raise TokenPinLocked() from None
        except (p11.PinLenRange, p11.PinInvalid):
            raise TokenPinRejected() from None
        except (p11.NoSuchKey, p11.MultipleObjectsReturned):
            raise KeyNotFound(self._key_hint()) from None
        except p11.PKCS11Error:
            raise TokenError() from None

    # -- choosing the token, key and certificate --

    def _token(self) -> Any:
        try:
            library = pkcs11.lib(self.module)
        except (OSError, RuntimeError, p11.PKCS11Error):
            raise ModuleNotLoadable() from None
        tokens = [
            token
            for token in library.get_tokens(token_label=self.token_label)
            if token.flags & TokenFlag.TOKEN_INITIALIZED  # not an empty slot
        ]
        if not tokens:
            wanted = f" labelled {self.token_label!r}" if self.token_label else ""
            raise TokenNotFound(f"No token{wanted} found: insert the card, or check --token-label.")
        if len(tokens) > 1:
            raise TokenNotFound("Several tokens are present: choose one with --token-label.")
        return tokens[0]

    def _key_selector(self, session: Any) -> dict[str, Any]:
        if self.key_label is not None or self.key_id is not None:
            selector: dict[str, Any] = {}
            if self.key_label is not None:
                selector["label"] = self.key_label
            if self.key_id is not None:
                selector["id"] = self.key_id
            return selector
        # No choice given: the certificate's CKA_ID names its key (PKCS#11 convention).
        return {"id": self._certificate_id(session)}

    def _certificate_id(self, session: Any) -> bytes:
        for obj in session.get_objects({Attribute.CLASS: ObjectClass.CERTIFICATE}):
            if x509.load_der_x509_certificate(obj[Attribute.VALUE]) == self.certificate:
                return obj[Attribute.ID]
        raise KeyNotFound(self._key_hint())

    def _certificate_on_token(self, session: Any) -> x509.Certificate:
        attrs: dict[Attribute, Any] = {Attribute.CLASS: ObjectClass.CERTIFICATE}
        if self.key_label is not None:
            attrs[Attribute.LABEL] = self.key_label
        if self.key_id is not None:
            attrs[Attribute.ID] = self.key_id
        certificates = [
            x509.load_der_x509_certificate(obj[Attribute.VALUE])
            for obj in session.get_objects(attrs)
        ]
        leaves = [cert for cert in certificates if not _is_ca(cert)]
        if len(leaves) != 1:
            raise KeyNotFound(self._key_hint())
        return leaves[0]

    def _key_hint(self) -> str:
        return (
            "No single card key and certificate match on the token: choose them with "
            "--key-label or --key-id (the certificate may also come from --cert-file)."
        )


def _is_ca(certificate: x509.Certificate) -> bool:
    try:
        return certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def _issuers_on_token(session: Any, leaf: x509.Certificate) -> list[x509.Certificate]:
    """The leaf's issuing CAs found on the token, in order, up to a root (excluded)."""
    on_token = [
        x509.load_der_x509_certificate(obj[Attribute.VALUE])
        for obj in session.get_objects({Attribute.CLASS: ObjectClass.CERTIFICATE})
    ]
    chain: list[x509.Certificate] = []
    current = leaf
    while len(chain) < 3:
        issuer = next(
            (c for c in on_token if c.subject == current.issuer and c != current and _is_ca(c)),
            None,
        )
        if issuer is None or issuer.subject == issuer.issuer:
            break
        chain.append(issuer)
        current = issuer
    return chain


def _load_certificates(path: Path) -> list[x509.Certificate]:
    try:
        data = Path(path).read_bytes()
        if b"-----BEGIN CERTIFICATE-----" in data:
            certificates = x509.load_pem_x509_certificates(data)
        else:
            certificates = [x509.load_der_x509_certificate(data)]
    except (OSError, ValueError):
        raise CardError(f"{path} is not a readable certificate file (PEM or DER).") from None
    return certificates
