"""The identity platform (機関別符号, agency-specific codes), as this service sees it.

Every agency knows a person only by its own opaque code; the platform alone can map a
My Number or a card certificate to a code, and a code of one agency to another's. The
licensing service is agency ``licensing`` (``LICENSING_AGENCY``); each verifier client
is its own agency (``verifier_agency(client_id)``).

``IDENTITY_PLATFORM`` selects the implementation (resolved by the composition root,
``app.py``): ``embedded`` is the development stand-in; production plugs the real
platform in behind the same ``IdentityPlatform`` protocol, named by a dotted path to a
callable that installs it. Errors: ``identity.errors``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

from cryptography import x509
from flask import Flask, current_app

from identity.errors import IdentityPlatformConfigurationError

LICENSING_AGENCY = "licensing"
EXTENSION_KEY = "identity_platform"
_VERIFIER_PREFIX = "verifier:"


@runtime_checkable
class IdentityPlatform(Protocol):
    def code_for_my_number(self, agency: str, my_number: str) -> str:
        """The agency's code for the person with this My Number.

        Raises ``InvalidMyNumber`` for a malformed number. (The real platform knows every
        resident; the embedded stand-in enrols a number it has not seen yet.)
        """
        ...

    def codes_for_my_numbers(self, agency: str, my_numbers: Sequence[str]) -> list[str]:
        """``code_for_my_number`` for many numbers at once, in the same order."""
        ...

    def known_codes_for_my_numbers(
        self, agency: str, my_numbers: Sequence[str]
    ) -> list[str | None]:
        """``codes_for_my_numbers`` without enrolling anyone: None for a person the
        platform does not know (the real platform knows every resident; a failed import
        must not enrol people in the embedded stand-in)."""
        ...

    def code_for_certificate(self, agency: str, certificate: x509.Certificate) -> str | None:
        """The agency's code for the holder of an already validated card certificate.

        None when the certificate (issuer + serial) is not registered to anyone.
        """
        ...

    def codes_for_certificate(
        self, certificate: x509.Certificate, agencies: Sequence[str]
    ) -> list[str] | None:
        """``code_for_certificate`` for several agencies at once, in the same order: one
        lookup of the holder, then one code per agency.

        None when the certificate is not registered to anyone.
        """
        ...

    def translate(self, code: str, from_agency: str, to_agency: str) -> str:
        """Re-express ``from_agency``'s code as ``to_agency``'s code for the same person.

        Raises ``InvalidAgencyCode`` for a tampered, unknown or other agency's code.
        """
        ...


def verifier_agency(client_id: str) -> str:
    """The agency of a verifier API client: each client has its own codes."""
    if not isinstance(client_id, str) or not client_id:
        raise ValueError("client id expected")
    return f"{_VERIFIER_PREFIX}{client_id}"


def init_app(app: Flask, install: Callable[[Flask], None]) -> None:
    """Runs the adapter's ``install(app)``, which puts its platform in
    ``app.extensions["identity_platform"]`` (and may add CLI groups and readiness
    checks), and checks that it implements ``IdentityPlatform``."""
    install(app)
    if not isinstance(app.extensions.get(EXTENSION_KEY), IdentityPlatform):
        raise IdentityPlatformConfigurationError(
            f"IDENTITY_PLATFORM={app.config['IDENTITY_PLATFORM']!r} installed no identity platform"
        )


def get_identity_platform() -> IdentityPlatform:
    """The current app's identity platform."""
    return current_app.extensions[EXTENSION_KEY]
