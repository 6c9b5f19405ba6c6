"""``licence-card``: the licence holder's card app.

    licence-card sign REQUEST_URL (--card CARD.json | --pkcs11-module LIB [--token-label L])
                 [--pin-file F] [--yes] [--consent monitoring]
                 [--service-url URL] [--expect-iss ISS]
    licence-card credential --profession P --out FILE (card options) [--service-url URL]
    licence-card present --credential FILE --nonce N --aud A --disclose name,... (card options)

``sign`` answers a verifier's request (what the QR code carries): it shows who asks,
for which profession and any consent before asking for the PIN, and sends the signed
answer straight to the service. Exit status: 0 answered (the result is printed),
1 refused or failed (one line says why), 2 usage.
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps
from pathlib import Path
from typing import Any, NoReturn

import click

from card_app.assertion import Card, present_credential, sign_assertion
from card_app.messages import Messages, language
from card_app.service import KNOWN_CONSENTS, Answer, RequestRefused, Service, ServiceProblem
from card_app.virtual_card import CardError, VirtualCard
from core.config import DEFAULT_AUDIENCE
from core.files import write_atomic
from core.jws import JwsError, parse_compact
from holder import sd_jwt

DEFAULT_SERVICE_URL = "http://127.0.0.1:8000"


def _fail(message: str) -> NoReturn:
    click.echo(message, err=True)
    sys.exit(1)


def _key_id(_ctx: Any, _param: Any, value: str | None) -> bytes | None:
    if value is None:
        return None
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise click.BadParameter("the key id in hexadecimal, e.g. 01") from None


def card_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--card`` or ``--pkcs11-module`` (with its choices), and ``--pin-file``; the
    command receives ``card_opener`` (opens the card) and ``pin_file``."""
    options = [
        click.option(
            "--card",
            "card_file",
            type=click.Path(dir_okay=False, path_type=Path),
            help="A virtual card file (the demo's cards).",
        ),
        click.option("--pkcs11-module", help="PKCS#11 module of a card reader or HSM."),
        click.option("--token-label", help="Token to use (when several are present)."),
        click.option("--key-label", help="Label of the card key and its certificate."),
        click.option("--key-id", callback=_key_id, help="CKA_ID (hex) of the key and certificate."),
        click.option(
            "--cert-file",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help="The card certificate, when not read from the token.",
        ),
        click.option(
            "--chain-file",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help="Issuing CA certificate(s) for x5c, when not read from the token.",
        ),
        click.option(
            "--pin-file",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help="Read the PIN from this file (scripts); otherwise it is asked without echo.",
        ),
    ]

    @wraps(command)
    def wrapper(**kwargs: Any) -> Any:
        choice = {
            name: kwargs.pop(name)
            for name in (
                "card_file",
                "pkcs11_module",
                "token_label",
                "key_label",
                "key_id",
                "cert_file",
                "chain_file",
            )
        }
        if (choice["card_file"] is None) == (choice["pkcs11_module"] is None):
            raise click.UsageError("give exactly one of --card and --pkcs11-module")
        return command(card_opener=lambda: _open_card(**choice), **kwargs)

    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper


def _open_card(
    card_file: Path | None,
    pkcs11_module: str | None,
    token_label: str | None,
    key_label: str | None,
    key_id: bytes | None,
    cert_file: Path | None,
    chain_file: Path | None,
) -> Card:
    if card_file is not None:
        return VirtualCard.load(card_file)
    from card_app.pkcs11_card import Pkcs11Card  # only PKCS#11 users load the module

    return Pkcs11Card(
        pkcs11_module or "",
        token_label=token_label,
        key_label=key_label,
        key_id=key_id,
        certificate_file=cert_file,
        chain_file=chain_file,
    )


def _read_pin(pin_file: Path | None, say: Messages) -> str:
    if pin_file is not None:
        lines = pin_file.read_text("utf-8").splitlines()
        return lines[0] if lines else ""
    return getpass.getpass(say("pin"))


def _problem(answer: Answer, say: Messages) -> str:
    body = answer.body if isinstance(answer.body, dict) else {}
    code = body.get("code") or f"HTTP {answer.status}"
    return say("refused", code=str(code), detail=str(body.get("detail") or body.get("title") or ""))


def handled(command: Callable[..., Any]) -> Callable[..., Any]:
    """Card and service problems become one localised line and exit status 1."""

    @wraps(command)
    def wrapper(**kwargs: Any) -> Any:
        say = Messages(language())
        try:
            return command(say=say, **kwargs)
        except RequestRefused as refused:
            _fail(say("request_refused", reason=str(refused)))
        except (CardError, ServiceProblem) as error:
            _fail(say("error", message=say.problem(error)))

    return wrapper


service_url_option = click.option(
    "--service-url",
    envvar="LICENCE_CARD_SERVICE_URL",
    default=DEFAULT_SERVICE_URL,
    show_default=True,
    help="The service this card app trusts (env LICENCE_CARD_SERVICE_URL).",
)


@click.group()
def main() -> None:
    """The licence holder's card app: answer verifiers, carry a licence credential."""


@main.command("sign")
@click.argument("request_url")
@card_options
@click.option("--yes", is_flag=True, help="Do not ask before signing (scripts).")
@click.option(
    "--consent",
    "consents",
    multiple=True,
    type=click.Choice(KNOWN_CONSENTS),
    help="With --yes: the consents to give (none unless named).",
)
@service_url_option
@click.option(
    "--expect-iss",
    envvar="LICENCE_CARD_ISSUER",
    default=DEFAULT_AUDIENCE,
    show_default=True,
    help="The issuer the service signs requests with (env LICENCE_CARD_ISSUER).",
)
@handled
def sign_command(
    say: Messages,
    request_url: str,
    card_opener: Callable[[], Card],
    pin_file: Path | None,
    yes: bool,
    consents: tuple[str, ...],
    service_url: str,
    expect_iss: str,
) -> None:
    """Answer a verifier's request (REQUEST_URL, e.g. from a QR code) with your card."""
    service = Service(service_url)
    request = service.card_request(request_url, expect_iss)
    if request.profession is None:  # the holder signs in to their own page
        click.echo(say("asks_sign_in", verifier=request.verifier_name))
    else:
        click.echo(
            say(
                "asks",
                verifier=request.verifier_name,
                profession=say.profession(request.profession),
            )
        )
    expires = datetime.fromtimestamp(request.expires_at, UTC).isoformat(timespec="seconds")
    click.echo(say("expires", time=expires))
    for consent in request.consent:
        click.echo(say("consent_asked", consent=say.consent(consent)))
    unasked = set(consents) - set(request.consent)
    if unasked:
        raise RequestRefused(f"the request does not ask for {', '.join(sorted(unasked))}")
    agreed = [
        consent
        for consent in request.consent
        if consent in consents
        or (not yes and click.confirm(say("agree", consent=say.consent(consent)), default=False))
    ]
    if not yes and not click.confirm(say("proceed"), default=False):
        _fail(say("declined"))
    card = card_opener()
    assertion = sign_assertion(
        card,
        _read_pin(pin_file, say),
        nonce=request.nonce,
        audience=request.audience,
        verifier=request.verifier_id,
        consent=agreed,
    )
    answer = service.call("POST", request.response_uri, {"assertion": assertion})
    if answer.status != 200 or not isinstance(answer.body, dict):
        _fail(_problem(answer, say))
    verifier = answer.body.get("verifier")
    name = verifier.get("name") if isinstance(verifier, dict) else None
    click.echo(
        say(
            "sent",
            outcome=str(answer.body.get("outcome")),
            verifier=str(name or request.verifier_name),
        )
    )


@main.command("credential")
@click.option("--profession", required=True, help="The licence to carry, e.g. doctor.")
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to save the credential (mode 0600).",
)
@card_options
@service_url_option
@handled
def credential_command(
    say: Messages,
    profession: str,
    out: Path,
    card_opener: Callable[[], Card],
    pin_file: Path | None,
    service_url: str,
) -> None:
    """Sign in with the card and fetch a licence credential (SD-JWT VC) bound to it."""
    service = Service(service_url)
    card = card_opener()
    challenge = service.call("POST", "/v1/holder/challenges", {})
    if challenge.status != 201:
        _fail(_problem(challenge, say))
    assertion = sign_assertion(
        card,
        _read_pin(pin_file, say),
        nonce=challenge.body["nonce"],
        audience=challenge.body["audience"],
    )
    session = service.call("POST", "/v1/holder/sessions", {"assertion": assertion})
    if session.status != 201:
        _fail(_problem(session, say))
    issued = service.call(
        "POST",
        "/v1/holder/credentials",
        {"profession": profession},
        token=session.body["session_token"],
    )
    if issued.status != 201:
        _fail(_problem(issued, say))
    write_atomic(out, issued.body["credential"].encode("ascii"), mode=0o600)
    click.echo(say("credential_saved", profession=say.profession(profession), path=str(out)))


def _read_credential(credential: str) -> tuple[Any, list[str]]:
    """The card key the credential is bound to (``cnf``) and the claims it can disclose."""
    try:
        parsed = sd_jwt.parse(credential)
        claims = parse_compact(parsed.issuer_jwt).payload
        bound = sd_jwt.rsa_public_key_from_jwk(claims["cnf"]["jwk"])
        names = [sd_jwt.parse_disclosure(d).name for d in parsed.disclosures]
    except (JwsError, sd_jwt.SdJwtError, KeyError, TypeError):
        raise CardError("The credential file is not a licence credential.") from None
    return bound, names


@main.command("present")
@click.option(
    "--credential",
    "credential_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A credential saved by `licence-card credential`.",
)
@click.option("--nonce", required=True, help="The nonce the platform gave you.")
@click.option("--aud", "audience", required=True, help="The platform's audience.")
@click.option("--disclose", required=True, help="Claims to show, comma-separated (e.g. name).")
@card_options
@handled
def present_command(
    say: Messages,
    credential_file: Path,
    nonce: str,
    audience: str,
    disclose: str,
    card_opener: Callable[[], Card],
    pin_file: Path | None,
) -> None:
    """Print a presentation of the credential, signed by your card, for an online platform."""
    credential = credential_file.read_text("ascii", errors="replace").strip()
    bound, available = _read_credential(credential)
    wanted = [name.strip() for name in disclose.split(",") if name.strip()]
    unknown = sorted(set(wanted) - set(available))
    if unknown:
        raise CardError(
            f"The credential cannot disclose {', '.join(unknown)}; "
            f"it can disclose: {', '.join(available)}."
        )
    card = card_opener()
    if card.certificate.public_key() != bound:
        raise CardError("This credential is bound to another card.")
    presentation = present_credential(
        card, _read_pin(pin_file, say), credential, disclose=wanted, nonce=nonce, audience=audience
    )
    click.echo(presentation)
