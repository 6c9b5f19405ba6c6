"""``flask --app app seed demo``: a population, clients and cards to try every journey.

The demo's files belong to its database: they live in a folder beside it (``demo_dir``),
``demo.json`` (mode 0600: it holds the demo tokens) for the scripted walkthrough
(``make demo``) and ``cards/``, so a second database seeded under the same
``INSTANCE_PATH`` never overwrites the first one's. Prints the cross-device walkthrough
(HR asks, the card app answers, HR reads the result). Demo PIN: 1234.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
from cryptography.hazmat.primitives import serialization
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from clients.service import create_client
from core.db import get_session
from holder.credentials import public_base_url
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


def demo_dir(config: Mapping[str, Any]) -> Path:
    """The folder of one database's demo files: beside an SQLite file, named after it
    (``instance/licensing.sqlite3`` -> ``instance/licensing-demo/``); for a server
    database, under ``INSTANCE_PATH``, named after its host, port and database."""
    url = make_url(config["DATABASE_URL"])
    if url.drivername.startswith("sqlite") and url.database not in (None, "", ":memory:"):
        database = Path(url.database)
        return database.with_name(f"{database.stem}-demo")
    where = "-".join(str(part) for part in (url.host, url.port, url.database) if part)
    return Path(config["INSTANCE_PATH"]) / ("demo-" + re.sub(r"[^A-Za-z0-9_.-]+", "_", where))


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


def walkthrough(base_url: str, state: Mapping[str, Any]) -> str:
    """The cross-device check, copy-paste from the project folder: HR asks, the
    candidate's card app answers from the request URL, HR reads the result."""
    hospital = state["clients"]["hospital"]
    doctor = next((card for card in state["cards"] if card["role"] == "doctor"), None)
    if doctor is None:
        return ""
    auth = '-H "Authorization: Bearer $HR_TOKEN"'
    card = shlex.quote(doctor["path"])
    return f"""
Try the cross-device check (copy-paste in another terminal, from this folder):

1. {hospital["name"]} asks for a check of a doctor; the request URL is what a QR code
   shows the candidate (.venv/bin/python -m seed.demo_walkthrough ask prints it as one):

  export HR_TOKEN={hospital["token"]}
  CHALLENGE=$(curl -s -X POST {base_url}/v1/challenges {auth} \\
      -H "Content-Type: application/json" -d '{{"profession": "doctor"}}')
  FIELD='import json, sys; print(json.load(sys.stdin)[sys.argv[1]])'
  CHALLENGE_ID=$(echo "$CHALLENGE" | python3 -c "$FIELD" challenge_id)
  REQUEST_URL=$(echo "$CHALLENGE" | python3 -c "$FIELD" request_uri)

2. The candidate ({doctor["name"]}) answers with the card app: it shows who asks and
   for which profession, then asks for the card PIN ({doctor["pin"]}):

  .venv/bin/licence-card sign "$REQUEST_URL" --card {card} --service-url {base_url}

3. HR reads the result (never a My Number or registration number; HR's own code):

  curl -s {base_url}/v1/challenges/$CHALLENGE_ID {auth} | python3 -m json.tool

The whole story (relayed request, impostor, forged card, stolen card, replay):

  {_demo_command(base_url)}
"""


def _demo_command(base_url: str) -> str:
    """``make demo`` with the address the service is reached at, when not the default."""
    parts = urlsplit(base_url)
    if parts.hostname in (None, "127.0.0.1") and parts.port in (None, 8000):
        return "make demo"
    return f"make demo HOST={parts.hostname} PORT={parts.port or 80}"


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
    card_dir = demo_dir(current_app.config) / "cards"
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
            _describe_existing_demo(base_url)
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
    demo_file = demo_dir(config) / DEMO_FILE
    demo_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(demo_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(state, handle, indent=2)

    elapsed = time.perf_counter() - started
    click.echo(
        f"demo: {holders} holders, {len(demo_cards)} cards (PIN {DEMO_PIN}), "
        f"CRL published, in {elapsed:.1f} s"
    )
    click.echo(f"clients (tokens are shown once; also saved in {demo_file}):")
    for role, created in clients.items():
        click.echo(f"  {role:15} {created.client.name}: {created.token}")
    click.echo("cards:")
    for card in demo_cards:
        click.echo(
            f"  {card.role:10} {card.name} ({card.profession}, {card.status}) "
            f"serial {card.serial}: {card.path}"
        )
    click.echo(walkthrough(base_url, state))


def _describe_existing_demo(base_url: str) -> None:
    """On a database seeded before: where its demo tokens and cards are, and the walkthrough."""
    demo_file = demo_dir(current_app.config) / DEMO_FILE
    try:
        state = json.loads(demo_file.read_text("utf-8"))
    except (OSError, ValueError):
        click.echo(f"demo: no demo files for this database at {demo_file} (seeded elsewhere?)")
        return
    cards = demo_file.parent / "cards"
    click.echo(f"demo: tokens in {demo_file}, cards in {cards} (PIN {DEMO_PIN})")
    click.echo(walkthrough(base_url, state))


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
@click.option(
    "--base-url",
    default=None,
    help="Where the service is reached, for the walkthrough (default: PUBLIC_BASE_URL).",
)
def demo_command(
    holders: int, cards: int, random_seed: int, if_empty: bool, base_url: str | None
) -> None:
    """Demo population, clients and cards; prints the tokens and a walkthrough."""
    seed_demo(holders, cards, random_seed, if_empty, base_url or public_base_url())
