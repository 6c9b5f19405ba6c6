"""Data for a benchmark run, made with the project's own CLI and seed pieces.

- ``flask db upgrade``, ``flask card-authority init`` (the demo card authority)
- card holders: card certificates from ``seed.card_authority``, virtual cards from
  ``card_app.virtual_card``, registered with the identity platform for their My Number
- licences: ``flask licences import`` of a CSV (holders first, then a filler population)
- a verifier client (``flask clients create``) and a published CRL
  (``flask card-authority publish-crl``)
- assertion pools: one fresh challenge (``POST /v1/challenges``) per body, signed with
  the holder's card key (unlocked once per card; the claims are the ones
  ``VirtualCard.sign_assertion`` makes)
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.population import Population
from bench.server import ROOT

BIN = Path(sys.executable).parent
CARD_PIN = "1234"
HOLDER_PROFESSIONS = ("doctor", "nurse")


def flask(env: dict[str, str], *args: str, timeout: float = 900) -> str:
    completed = subprocess.run(  # noqa: S603
        [str(BIN / "flask"), "--app", "app", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(
            f"flask {' '.join(args)} failed ({completed.returncode}):\n"
            f"{completed.stdout[-2000:]}\n{completed.stderr[-2000:]}"
        )
    return completed.stdout


@dataclass
class Holder:
    profession: str
    key: Any  # the unlocked card key
    x5c: list[str]


@dataclass
class Prepared:
    token: str
    holders: list[Holder]
    audience: str
    population: Population
    licences: int


def app_config(env: dict[str, str]) -> dict[str, str]:
    return {"INSTANCE_PATH": env["INSTANCE_PATH"], "DATABASE_URL": env["DATABASE_URL"]}


def _issue_cards(
    env: dict[str, str], workdir: Path, numbers: list[str]
) -> list[tuple[Any, list[str]]]:
    """Card keys and x5c for each My Number, registered with the identity platform."""
    from app import create_app
    from card_app.virtual_card import VirtualCard
    from identity import get_identity_platform
    from seed.card_authority import CardAuthority, generate_card_key

    app = create_app(app_config(env))
    authority = CardAuthority.load(Path(app.config["CARD_AUTHORITY_DIR"]))
    cards = []
    with app.app_context():
        platform = get_identity_platform()
        for index, number in enumerate(numbers):
            key = generate_card_key()
            certificate = authority.issue_card_certificate(key.public_key())
            card = VirtualCard.create(
                workdir / "cards" / f"card-{index}.json",
                key,
                certificate,
                authority.chain,
                CARD_PIN,
                scrypt_n=2**10,
            )
            platform.register_certificate(certificate, number)  # type: ignore[attr-defined]
            cards.append((card.unlock(CARD_PIN), card.x5c()))
    _dispose(app)
    return cards


def _dispose(app) -> None:
    app.extensions["db"].engine.dispose()
    platform = app.extensions.get("identity_platform")
    if platform is not None and hasattr(platform, "dispose"):
        platform.dispose()


def profession_patterns(env: dict[str, str]) -> dict[str, Any]:
    from app import create_app
    from core.db import get_session
    from licensing.professions import profession_patterns as patterns

    app = create_app(app_config(env))
    with app.app_context():
        result = patterns(get_session())
    _dispose(app)
    return result


def import_csv(env: dict[str, str], path: Path) -> tuple[int, float]:
    """Runs ``flask licences import``; returns (rows, seconds)."""
    rows = sum(1 for _ in path.open(encoding="utf-8")) - 1
    started = time.perf_counter()
    flask(env, "licences", "import", str(path), timeout=1800)
    return rows, time.perf_counter() - started


def start_import(env: dict[str, str], path: Path, log_path: Path) -> subprocess.Popen:
    """Starts ``flask licences import`` in the background (for the during-import run)."""
    with log_path.open("w") as log_file:
        return subprocess.Popen(  # noqa: S603
            [str(BIN / "flask"), "--app", "app", "licences", "import", str(path), "--json"],
            cwd=ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )


def prepare(
    env: dict[str, str], workdir: Path, *, holders: int, licences: int, log
) -> tuple[Prepared, dict]:
    timings: dict[str, float] = {}
    started = time.perf_counter()
    flask(env, "db", "upgrade")
    flask(env, "card-authority", "init")
    timings["migrate_and_ca_init_s"] = time.perf_counter() - started

    population = Population(profession_patterns(env))
    holder_rows = [population.row(HOLDER_PROFESSIONS[i % 2]) for i in range(holders)]
    started = time.perf_counter()
    cards = _issue_cards(env, workdir, [row[1] for row in holder_rows])
    timings["cards_s"] = time.perf_counter() - started

    csv_path = workdir / "licences-initial.csv"
    population.write_csv(csv_path, iter(holder_rows + list(population.rows(licences - holders))))
    rows, seconds = import_csv(env, csv_path)
    log(f"imported {rows:,} licences in {seconds:.1f} s ({rows / seconds:,.0f} rows/s)")
    timings["import_initial_rows"] = rows
    timings["import_initial_s"] = seconds
    csv_path.unlink()

    token = flask(env, "clients", "create", "--name", "Bench Hospital HR", "--role", "verifier")
    token = token.strip().splitlines()[-1].strip()
    flask(env, "card-authority", "publish-crl")
    audience = env.get("SERVICE_AUDIENCE") or _default_audience()
    prepared = Prepared(
        token=token,
        holders=[
            Holder(row[0], key, x5c) for row, (key, x5c) in zip(holder_rows, cards, strict=True)
        ],
        audience=audience,
        population=population,
        licences=licences,
    )
    return prepared, timings


def _default_audience() -> str:
    from core.config import DEFAULT_AUDIENCE

    return DEFAULT_AUDIENCE


def grow(env: dict[str, str], workdir: Path, prepared: Prepared, total: int, log) -> dict:
    """Imports filler rows until the register holds ``total`` licences."""
    extra = total - prepared.licences
    if extra <= 0:
        return {}
    path = workdir / "licences-grow.csv"
    started = time.perf_counter()
    prepared.population.write_csv(path, prepared.population.rows(extra))
    written = time.perf_counter() - started
    log(f"wrote {extra:,} CSV rows in {written:.1f} s")
    rows, seconds = import_csv(env, path)
    path.unlink()
    prepared.licences = total
    log(f"imported {rows:,} licences in {seconds:.1f} s ({rows / seconds:,.0f} rows/s)")
    return {"import_rows": rows, "import_s": seconds, "import_rows_per_s": rows / seconds}


# -- assertion pools ---------------------------------------------------------------------


class _Client(threading.local):
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.conn: http.client.HTTPConnection | None = None

    def post(self, path: str, body: dict, token: str) -> tuple[int, dict]:
        for attempt in range(3):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
                self.conn.request(
                    "POST",
                    path,
                    body=json.dumps(body),
                    headers={
                        "Content-Type": "application/json",
                        "Authorization": f"Bearer {token}",
                    },
                )
                response = self.conn.getresponse()
                data = response.read()
                if response.getheader("Connection", "").lower() == "close":
                    self.conn.close()
                    self.conn = None
                return response.status, json.loads(data or b"{}")
            except (OSError, http.client.HTTPException):
                if self.conn is not None:
                    self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


def sign_assertion(holder: Holder, nonce: str, audience: str) -> str:
    """Exactly the claims and header of ``VirtualCard.sign_assertion``."""
    from card_app.assertion import ASSERTION_TYPE
    from core import jws

    issued_at = int(datetime.now(UTC).timestamp())
    claims = {"aud": audience, "nonce": nonce, "iat": issued_at, "exp": issued_at + 300}
    headers = {"typ": ASSERTION_TYPE, "x5c": holder.x5c}
    return jws.sign(claims, holder.key, "RS256", headers=headers)


def assertion_pool(url: str, prepared: Prepared, count: int, path: Path, threads: int = 4) -> float:
    """Writes ``count`` verification bodies (one fresh challenge each); returns seconds."""
    host, port = url.removeprefix("http://").split(":")
    client = _Client(host, int(port))
    started = time.perf_counter()

    def one(index: int) -> str:
        holder = prepared.holders[index % len(prepared.holders)]
        status, body = client.post(
            "/v1/challenges", {"profession": holder.profession}, prepared.token
        )
        if status != 201:
            raise RuntimeError(f"POST /v1/challenges -> {status}: {body}")
        assertion = sign_assertion(holder, body["nonce"], body.get("audience", prepared.audience))
        return json.dumps({"assertion": assertion}, separators=(",", ":"))

    with ThreadPoolExecutor(threads) as pool:
        lines = list(pool.map(one, range(count), chunksize=64))
    path.write_text("\n".join(lines) + "\n")
    return time.perf_counter() - started


def check_one(url: str, prepared: Prepared) -> dict:
    """One verification end to end, to be sure the pool measures the success path."""
    host, port = url.removeprefix("http://").split(":")
    client = _Client(host, int(port))
    holder = prepared.holders[0]
    status, body = client.post("/v1/challenges", {"profession": holder.profession}, prepared.token)
    if status != 201:
        raise RuntimeError(f"POST /v1/challenges -> {status}: {body}")
    assertion = sign_assertion(holder, body["nonce"], body.get("audience", prepared.audience))
    status, body = client.post("/v1/verifications", {"assertion": assertion}, prepared.token)
    if status != 200 or body.get("outcome") != "licensed":
        raise RuntimeError(f"POST /v1/verifications -> {status}: {body}")
    return body


def environment(instance: Path, database_url: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "INSTANCE_PATH", "CARD_TRUST_ANCHORS", "SIGNING_KEY_FILE")
        and not k.startswith("IDENTITY_")
    }
    env.update(
        INSTANCE_PATH=str(instance),
        DATABASE_URL=database_url,
        PYTHONUNBUFFERED="1",
        # The timed runs use pools of challenges issued beforehand, far more than the
        # 1000 unused ones a client may hold by default.
        CHALLENGE_MAX_OUTSTANDING="1000000",
    )
    return env
