"""``python -m bench.monitoring``: how fast monitoring events reach a receiver, and the
roster call.

For each backend (SQLite with one worker, a fresh PostgreSQL database with ``--workers``
workers), in a fresh instance folder:

1. ``flask db upgrade``; ``--licences`` licences imported from a CSV
   (``flask licences import``); a verifier client; every licence monitored by it
   (``start_monitoring``, as a consented verification does);
2. the receiver: ``examples/receive_events.py`` in its own process (verifies every SET
   against the JWKS, de-duplicates by ``jti``, answers 202); the workers
   (``flask monitoring worker``) start and idle;
3. every licence is suspended (one regulator transaction each; each writes its event);
4. the webhook is registered and the clock starts: deliveries/s is the number of events
   divided by the time until the last one is acknowledged (its row ``delivered``);
5. the roster call ``POST /v1/monitoring/status`` with ``--roster`` subjects (the
   monitored ones plus unknown ones), in-process, best of three.

Prints one table and writes ``bench/results/monitoring-<UTC time>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench import prepare as prep
from bench.population import Population
from bench.run import PG_BASE_URL, PostgresDatabase, postgres_available
from bench.server import ROOT

RESULTS = Path(__file__).resolve().parent / "results"
RECEIVER = ROOT / "examples" / "receive_events.py"


def log(message: str = "") -> None:
    print(message, flush=True)


def _monitored_service(env: dict[str, str], licences: int, workdir: Path):
    """Imports the licences, creates the verifier and monitors every licence; returns
    (app, client id, bearer token, subjects)."""
    from app import create_app
    from clients.service import create_client
    from core.db import get_session
    from identity import LICENSING_AGENCY, get_identity_platform, verifier_agency
    from licensing.models import Licence
    from monitoring.service import start_monitoring

    population = Population(prep.profession_patterns(env))
    csv_path = workdir / "licences.csv"
    population.write_csv(csv_path, population.rows(licences))
    rows, seconds = prep.import_csv(env, csv_path)
    log(f"imported {rows:,} licences in {seconds:.1f} s")
    app = create_app({**prep.app_config(env), "ALLOW_INSECURE_WEBHOOKS": "1"})
    with app.app_context():
        session = get_session()
        created = create_client(session, "Bench Hospital HR", "verifier")
        client = created.client
        platform = get_identity_platform()
        agency = verifier_agency(client.id)
        subjects = []
        now = datetime.now(UTC)
        for licence in session.query(Licence).all():
            subject = platform.translate(licence.holder_code, LICENSING_AGENCY, agency)
            subjects.append(subject)
            start_monitoring(
                session,
                verifier_client_id=client.id,
                verifier_name=client.name,
                subject=subject,
                holder_code=licence.holder_code,
                licence_id=licence.id,
                profession=licence.profession,
                at=now,
            )
        session.commit()
    return app, client.id, created.token, subjects


def _start_receiver(app, client_id: str, workdir: Path) -> tuple[subprocess.Popen, str]:
    from core.signing import get_keyring

    jwks = workdir / "jwks.json"
    with app.app_context():
        jwks.write_text(json.dumps(get_keyring(app).jwks()))
    process = subprocess.Popen(  # noqa: S603
        [
            sys.executable,
            str(RECEIVER),
            "--jwks",
            str(jwks),
            "--audience",
            client_id,
            "--issuer",
            app.config["SERVICE_AUDIENCE"],
            "--port",
            "0",
            "--seen",
            ":memory:",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = process.stderr.readline().split()[-1]
    return process, url


def _start_workers(env: dict[str, str], count: int, workdir: Path) -> list[subprocess.Popen]:
    return [
        subprocess.Popen(  # noqa: S603
            [str(prep.BIN / "flask"), "--app", "app", "monitoring", "worker"],
            cwd=ROOT,
            env=env,
            stdout=(workdir / f"worker-{i}.log").open("ab"),
            stderr=subprocess.STDOUT,
        )
        for i in range(count)
    ]


def _delivered(app) -> int:
    from sqlalchemy import func, select

    from core.db import get_session
    from monitoring.models import DeliveryState, MonitoringEvent

    with app.app_context():
        session = get_session()
        count = session.scalar(
            select(func.count())
            .select_from(MonitoringEvent)
            .where(MonitoringEvent.state == DeliveryState.DELIVERED)
        )
        session.close()
        return count or 0


def _suspend_all(app) -> tuple[int, float]:
    from core.db import get_session
    from licensing.models import Licence
    from licensing.service import suspend_licence, today

    with app.app_context():
        session = get_session()
        ids = [row[0] for row in session.query(Licence.id).all()]
        until = today() + timedelta(days=30)
        started = time.perf_counter()
        for licence_id in ids:
            suspend_licence(session, "bench", licence_id, reason="benchmark", until=until)
        return len(ids), time.perf_counter() - started


def _roster_seconds(app, token: str, subjects: list[str], size: int) -> float:
    asked = (subjects + [f"v1.{secrets.token_urlsafe(32)[:43]}" for _ in range(size)])[:size]
    client = app.test_client()
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        response = client.post(
            "/v1/monitoring/status",
            json={"subjects": asked},
            headers={"Authorization": f"Bearer {token}"},
        )
        timings.append(time.perf_counter() - started)
        if response.status_code != 200:
            raise RuntimeError(f"roster -> {response.status_code}: {response.get_data()[:300]!r}")
    return min(timings)


def run_backend(backend: str, args: argparse.Namespace) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix=f"lv-bench-monitoring-{backend}-"))
    instance = workdir / "instance"
    workers = 1 if backend == "sqlite" else args.workers
    database = (
        PostgresDatabase(PG_BASE_URL)
        if backend == "postgresql"
        else nullcontext(f"sqlite:///{instance / 'licensing.sqlite3'}")
    )
    processes: list[subprocess.Popen] = []
    try:
        with database as url:
            env = prep.environment(instance, url)
            env.update(ALLOW_INSECURE_WEBHOOKS="1", MONITORING_IDLE_SECONDS="0.05")
            prep.flask(env, "db", "upgrade")
            app, client_id, token, subjects = _monitored_service(env, args.licences, workdir)
            receiver, receiver_url = _start_receiver(app, client_id, workdir)
            processes.append(receiver)
            processes.extend(_start_workers(env, workers, workdir))
            events, suspend_s = _suspend_all(app)
            log(f"{backend}: suspended {events:,} monitored licences in {suspend_s:.1f} s")
            time.sleep(2)  # the workers are up and idle (no webhook yet)

            from core.db import get_session
            from monitoring.service import set_webhook

            with app.app_context():
                set_webhook(get_session(), client_id, receiver_url, app.config)
            started = time.perf_counter()
            deadline = started + args.timeout
            while (done := _delivered(app)) < events and time.perf_counter() < deadline:
                time.sleep(0.05)
            elapsed = time.perf_counter() - started
            if done < events:
                raise RuntimeError(f"only {done} of {events} events acknowledged in time")
            roster_s = _roster_seconds(app, token, subjects, args.roster)
            app.extensions["db"].engine.dispose()
            result = {
                "backend": backend,
                "workers": workers,
                "events": events,
                "suspend_s": suspend_s,
                "deliver_s": elapsed,
                "deliveries_per_s": events / elapsed,
                "roster_subjects": args.roster,
                "roster_s": roster_s,
            }
            log(
                f"{backend}: {events:,} SETs acknowledged in {elapsed:.2f} s = "
                f"{result['deliveries_per_s']:,.0f}/s with {workers} worker(s); "
                f"roster of {args.roster:,} subjects in {roster_s * 1000:.0f} ms"
            )
            return result
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.monitoring", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--licences", type=int, default=10_000, help="monitored licences suspended")
    parser.add_argument("--workers", type=int, default=2, help="delivery workers on PostgreSQL")
    parser.add_argument("--roster", type=int, default=10_000, help="subjects in the roster call")
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for acks")
    parser.add_argument("--keep", action="store_true", help="keep the work folders")
    args = parser.parse_args(argv)
    results = []
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        if backend == "postgresql" and not postgres_available():
            log(f"== postgresql: not reachable at {PG_BASE_URL}")
            results.append({"backend": backend, "error": "PostgreSQL not reachable"})
            continue
        try:
            results.append(run_backend(backend, args))
        except Exception as error:  # noqa: BLE001 - report and go on with the next backend
            log(f"!! {backend} failed: {error}")
            results.append({"backend": backend, "error": str(error)[:2000]})
    log("\n== monitoring summary")
    log(f"{'backend':<11} {'workers':>7} {'events':>7} {'SETs/s':>8} {'roster':>7} {'ms':>7}")
    for r in results:
        if "error" in r:
            log(f"{r['backend']:<11} error: {r['error'][:200]}")
            continue
        log(
            f"{r['backend']:<11} {r['workers']:>7} {r['events']:>7,} {r['deliveries_per_s']:>8.0f} "
            f"{r['roster_subjects']:>7,} {r['roster_s'] * 1000:>7.0f}"
        )
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / f"monitoring-{stamp}.json"
    out.write_text(
        json.dumps({"cpus": os.cpu_count(), "args": vars(args), "results": results}, indent=2)
    )
    log(f"results: {out.relative_to(ROOT)}")
    return 1 if any("error" in r for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
