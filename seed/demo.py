"""``flask --app app seed demo``: a population, clients and cards to try every journey.

Writes ``instance/demo.json`` (mode 0600: it holds the demo tokens) for the scripted
walkthrough (``make demo``) and prints a copy-paste walkthrough. Demo PIN: 1234.
"""

from __future__ import annotations

import json
import os
import shlex
import time
from dataclasses import asdict, dataclass, replace
from datetime import timedelta
from pathlib import Path

import click
from cryptography.hazmat.primitives import serialization
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from clients.service import create_client
from core.db import get_session
from licensing import service as licensing
from licensing.models import Licence
from seed.card_authority import CardAuthority, serial_hex
from seed.cards import issue_virtual_card
from seed.population import Person, generate_people

DEMO_PIN = "1234"
DEMO_FILE = "demo.json"
REGULATOR_NAME = "Ministry of Health, Labour and Welfare (demo)"
HOSPITAL_NAME = "St Luke's HR"
PLATFORM_NAME = "Sakura Telemedicine"
CARD_AUTHORITY_NAME = "Card authority feed (demo)"


@dataclass(frozen=True)
class DemoCard:
    role: str  # what the walkthrough uses it for
    name: str
    profession: str
    status: str
    serial: str
    path: str
    licence_id: str
    pin: str = DEMO_PIN


class NotEmpty(click.ClickException):
    pass


def _registrar(my_number: str):
    from identity import get_identity_platform

    def register(certificate) -> None:
        get_identity_platform().register_certificate(certificate, my_number)

    return register


def _licence_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Licence)) or 0


def _register_population(session: Session, people: list[Person]) -> dict[int, str]:
    """Registers every planned licence with its planned status; returns person index ->
    the id of their main licence."""
    main_licence: dict[int, str] = {}
    for index, person in enumerate(people):
        for position, planned in enumerate(person.licences):
            licence = licensing.register_licence(
                session,
                licensing.CLI_ACTOR,
                profession=planned.profession,
                my_number=person.my_number,
                name=person.name,
                registration_number=planned.registration_number,
                registered_on=planned.registered_on,
            )
            reason = planned.status_reason or "demo data"
            if planned.status == "suspended" and planned.suspended_until:
                licensing.suspend_licence(
                    session,
                    licensing.CLI_ACTOR,
                    licence.id,
                    reason=reason,
                    until=planned.suspended_until,
                )
            elif planned.status == "revoked":
                licensing.revoke_licence(session, licensing.CLI_ACTOR, licence.id, reason=reason)
            if position == 0:
                main_licence[index] = licence.id
    return main_licence


def _pick_card_holders(people: list[Person], cards: int) -> list[tuple[str, int]]:
    """The walkthrough's cast first (an active doctor, an active nurse, a suspended and
    a revoked licensee), then more active holders up to ``cards``."""
    wanted = [
        ("doctor", "doctor", "active"),
        ("nurse", "nurse", "active"),
        ("suspended", None, "suspended"),
        ("revoked", None, "revoked"),
    ]
    chosen: list[tuple[str, int]] = []
    used: set[int] = set()
    for role, profession, status in wanted:
        for index, person in enumerate(people):
            main = person.licences[0]
            if index in used or main.status != status:
                continue
            if profession and main.profession != profession:
                continue
            chosen.append((role, index))
            used.add(index)
            break
    for index, person in enumerate(people):
        if len(chosen) >= cards:
            break
        if index not in used and person.licences[0].status == "active":
            chosen.append(("holder", index))
            used.add(index)
    return chosen[: max(cards, 0)]


def _publish_crl(authority: CardAuthority, session: Session) -> None:
    from verification.revocation import import_crl

    crl = authority.make_crl()
    import_crl(session, crl.public_bytes(serialization.Encoding.DER), actor=None)


def _is_production_database(url: str) -> bool:
    return not make_url(url).drivername.startswith("sqlite")


def _walkthrough(base_url: str, hospital_token: str, doctor: DemoCard, audience: str) -> str:
    flask = ".venv/bin/flask --app app"
    auth = '-H "Authorization: Bearer $HR_TOKEN" -H "Content-Type: application/json"'
    card = shlex.quote(doctor.path)
    return f"""
Try it (copy-paste in another terminal, from this folder):

  export HR_TOKEN={hospital_token}
  NONCE=$(curl -s -X POST {base_url}/v1/challenges {auth} \\
      -d '{{"profession": "doctor"}}' \\
      | python3 -c 'import json,sys; print(json.load(sys.stdin)["nonce"])')
  ASSERTION=$({flask} card sign --card {card} --pin {doctor.pin} --nonce "$NONCE" --aud {audience})
  curl -s -X POST {base_url}/v1/verifications {auth} \\
      -d "{{\\"assertion\\": \\"$ASSERTION\\"}}" | python3 -m json.tool

The doctor is {doctor.name}; the answer is "licensed" with HR's own code for them,
never a My Number or registration number. Send the same assertion again: invalid_nonce.
For the whole story (impostor, forged card, stolen card, replay): make demo
"""


def _ensure_cast(people: list[Person]) -> list[Person]:
    """Small populations may plan no suspended or revoked licence; the walkthrough needs
    one of each, so the last people get those statuses when missing."""
    today = licensing.today()
    plans = {
        "suspended": {
            "status": "suspended",
            "suspended_until": today + timedelta(days=90),
            "status_reason": "demo: disciplinary suspension",
        },
        "revoked": {"status": "revoked", "status_reason": "demo: licence revoked"},
    }
    cast = list(people)
    for offset, (status, changes) in enumerate(plans.items(), start=1):
        if len(cast) - offset < 2 or any(p.licences[0].status == status for p in cast):
            continue
        person = cast[-offset]
        main = replace(person.licences[0], **changes)
        cast[-offset] = replace(person, licences=(main, *person.licences[1:]))
    return cast


def _seed_people_and_cards(
    session: Session, authority: CardAuthority, holders: int, cards: int, seed: int
) -> list[DemoCard]:
    people = _ensure_cast(list(generate_people(holders, seed=seed)))
    main_licence = _register_population(session, people)
    card_dir = Path(current_app.instance_path) / "cards"
    demo_cards: list[DemoCard] = []
    for role, index in _pick_card_holders(people, cards):
        person = people[index]
        path = card_dir / f"{role}-{index}.json"
        card = issue_virtual_card(
            authority,
            path,
            DEMO_PIN,
            holder_name=person.name,
            register=_registrar(person.my_number),
        )
        main = person.licences[0]
        demo_cards.append(
            DemoCard(
                role,
                person.name,
                main.profession,
                main.status,
                serial_hex(card.certificate.serial_number),
                str(path),
                main_licence[index],
            )
        )
    return demo_cards


def seed_demo(holders: int, cards: int, seed: int, if_empty: bool, base_url: str) -> None:
    session = get_session()
    config = current_app.config
    if _licence_count(session):
        if if_empty:
            click.echo("demo: the database already has licences; nothing seeded")
            return
        if _is_production_database(config["DATABASE_URL"]):
            raise NotEmpty(
                "the database already has licences; refusing to seed a production database"
            )
        raise NotEmpty("the database already has licences; use a fresh INSTANCE_PATH")

    started = time.perf_counter()
    authority = CardAuthority.init(Path(config["CARD_AUTHORITY_DIR"]))
    with authority.batch():
        demo_cards = _seed_people_and_cards(session, authority, holders, cards, seed)
    _publish_crl(authority, session)

    clients = {
        "regulator": create_client(session, REGULATOR_NAME, "regulator"),
        "hospital": create_client(session, HOSPITAL_NAME, "verifier"),
        "platform": create_client(session, PLATFORM_NAME, "verifier"),
        "card_authority": create_client(session, CARD_AUTHORITY_NAME, "card_authority"),
    }
    state = {
        "audience": config["SERVICE_AUDIENCE"],
        "card_authority_dir": str(Path(config["CARD_AUTHORITY_DIR"]).resolve()),
        "clients": {
            role: {"id": c.client.id, "name": c.client.name, "token": c.token}
            for role, c in clients.items()
        },
        "cards": [asdict(card) for card in demo_cards],
    }
    demo_file = Path(current_app.instance_path) / DEMO_FILE
    demo_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(demo_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(state, handle, indent=2)

    elapsed = time.perf_counter() - started
    click.echo(
        f"demo: {holders} holders, {len(demo_cards)} cards (PIN {DEMO_PIN}), "
        f"CRL published, in {elapsed:.1f} s"
    )
    click.echo("clients (tokens are shown once; also saved in instance/demo.json):")
    for role, created in clients.items():
        click.echo(f"  {role:15} {created.client.name}: {created.token}")
    click.echo("cards:")
    for card in demo_cards:
        click.echo(
            f"  {card.role:10} {card.name} ({card.profession}, {card.status}) "
            f"serial {card.serial}: {card.path}"
        )
    doctor = next((c for c in demo_cards if c.role == "doctor"), None)
    if doctor is not None:
        click.echo(
            _walkthrough(base_url, clients["hospital"].token, doctor, config["SERVICE_AUDIENCE"])
        )


@click.command("demo")
@with_appcontext
@click.option("--holders", type=click.IntRange(1), default=1000, show_default=True)
@click.option(
    "--cards",
    type=click.IntRange(0),
    default=8,
    show_default=True,
    help="How many holders get a card file (the walkthrough's cast first).",
)
@click.option("--seed", "random_seed", type=int, default=0, show_default=True)
@click.option("--if-empty", is_flag=True, help="Do nothing (exit 0) when licences exist.")
@click.option("--base-url", default="http://127.0.0.1:8000", show_default=True)
def demo_command(holders: int, cards: int, random_seed: int, if_empty: bool, base_url: str) -> None:
    """Demo population, clients and cards; prints the tokens and a walkthrough."""
    seed_demo(holders, cards, random_seed, if_empty, base_url)
