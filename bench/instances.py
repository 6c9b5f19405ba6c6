"""One service instance against two on the same database (issue 19, several instances).

Prepares one database and one instance folder (bench/prepare.py), then:

1. serves it with one gunicorn (``--workers`` each) and times verifications on it;
2. starts a second gunicorn on another port with the same ``DATABASE_URL``,
   ``INSTANCE_PATH`` and rate-limit store (Redis, ``--rate-limit-storage``) and times
   verifications on both at once: the same total connections, half on each, every
   request with its own fresh challenge and card assertion.

Reports verifications/s for one and for two, their ratio, p50/p99 and the server CPU
per request (both gunicorn trees). On a machine with few cores both instances share
the same CPUs, so two cannot double the throughput here; the CPU per request is what
says whether a second instance adds cost (locks, connections) beyond its own work.

``python -m bench.instances`` runs it alone; ``make bench`` runs it after the backends.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench import prepare as prep
from bench.load import LoadGenerator, LoadResult
from bench.run import (
    PG_BASE_URL,
    Bench,
    PostgresDatabase,
    add_common_arguments,
    fmt,
    log,
    pooled,
)
from bench.server import Server

DEFAULT_RATE_LIMIT_STORAGE = "redis://127.0.0.1:6379/12"


def combined(results: list[LoadResult]) -> dict:
    """Two concurrent runs as one over the longer run's time; the slower instance's p50,
    as a client sees the worse of the two."""
    summary = pooled(results, max(r.duration_s for r in results))
    summary["p50_ms"] = max(r.p50_ms for r in results)
    return summary


def measure(args: argparse.Namespace, load: LoadGenerator, backend: str = "postgresql") -> dict:
    """One instance, then two on the same database; the figures as a dict."""
    bench = Bench(args, load)
    workdir = Path(tempfile.mkdtemp(prefix=f"lv-bench-instances-{backend}-"))
    log(f"\n== one vs two instances on {backend}  (work folder {workdir})")
    pg = PostgresDatabase(PG_BASE_URL) if backend == "postgresql" else None
    database_url = (
        pg.__enter__() if pg else f"sqlite:///{workdir / 'instance' / 'licensing.sqlite3'}"
    )
    servers: list[Server] = []
    try:
        env = prep.environment(workdir / "instance", database_url)
        if args.rate_limit_storage:
            env["RATE_LIMIT_STORAGE_URI"] = args.rate_limit_storage
        prepared, _timings = prep.prepare(
            env, workdir, holders=args.holders, licences=args.licences, log=log
        )
        for index in range(2):
            servers.append(Server(env, workdir / f"gunicorn-{index}.log", workers=args.workers))
        servers[0].start()
        one, info = bench.verifications(servers[0], prepared, workdir, "one")
        log(f"one instance            {fmt(one)}")

        servers[1].start()
        prep.check_one(servers[1].url, prepared)
        count = info["pool_size"]
        pools = []
        for index, server in enumerate(servers):
            path = workdir / f"bodies-two-{index}.txt"
            prep.assertion_pool(server.url, prepared, count, path)
            pools.append(path)
        half = max(1, args.connections // 2)

        def drive(index: int) -> LoadResult:
            server = servers[index]
            before = server.cpu_seconds()
            result = load.run(
                f"{server.url}/v1/verifications",
                connections=half,
                duration=args.duration,
                bodies=pools[index],
                token=prepared.token,
            )
            if result.requests:
                result.server_cpu_ms = (server.cpu_seconds() - before) * 1000 / result.requests
            return result

        with ThreadPoolExecutor(2) as pool:
            two_runs = list(pool.map(drive, range(2)))
        for index, run in enumerate(two_runs):
            log(f"two instances, #{index + 1}     {fmt(run)}")
        two = combined(two_runs)
        ratio = two["rps"] / one.rps if one.rps else None
        summary = {
            "backend": backend,
            "workers_per_instance": args.workers,
            "connections": args.connections,
            "licences": prepared.licences,
            "rate_limit_storage": args.rate_limit_storage or "memory://",
            "cpus": os.cpu_count(),
            "load_average": os.getloadavg(),
            "one": one.as_dict(),
            "two": two,
            "two_over_one": round(ratio, 3) if ratio is not None else None,
        }
        log(
            f"both instances share this machine's {os.cpu_count()} CPUs (and the database "
            "server's): two cannot double the throughput here; compare the CPU per request"
        )
        return summary
    finally:
        for server in servers:
            server.stop()
        if pg:
            pg.__exit__(None, None, None)
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


def check(summary: dict) -> tuple[str, bool, str]:
    """``make bench``'s check: every verification on one and on two instances succeeded."""
    name = "one vs two instances: every timed verification succeeded (200, fresh assertion)"
    if "error" in summary:
        return name, False, summary["error"]
    runs = [summary["one"], summary["two"]]
    passed = all(set(r["statuses"]) == {"200"} and not r["exhausted"] for r in runs)
    return name, passed, f"statuses {[r['statuses'] for r in runs]}"


def describe(summary: dict) -> str:
    one, two = summary["one"], summary["two"]
    return (
        f"instances  one {one['rps']:.1f} verif/s (p50 {one['p50_ms']:.2f}, p99 "
        f"{one['p99_ms']:.2f} ms, {one['server_cpu_ms']} ms CPU/req); two {two['rps']:.1f} "
        f"verif/s (p50 {two['p50_ms']:.2f}, p99 {two['p99_ms']:.2f} ms, "
        f"{two['server_cpu_ms']} ms CPU/req); two/one {summary['two_over_one']} on "
        f"{summary['cpus']} shared CPUs"
    )


def add_storage_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--rate-limit-storage",
        default=DEFAULT_RATE_LIMIT_STORAGE,
        help="RATE_LIMIT_STORAGE_URI both instances share ('' for each its own memory)",
    )


def positive(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    for name in ("duration", "connections", "workers", "holders", "licences", "min_pool"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name} must be positive")
    # Half go to each instance, and wrk runs two threads of at least one connection.
    least = 2 if args.python_load else 4
    if args.connections < least:
        parser.error(f"--connections must be at least {least} (half go to each instance)")
    if args.licences < args.holders:
        parser.error("--licences must be at least --holders")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.instances", description=__doc__.split("\n")[0]
    )
    add_common_arguments(parser)
    add_storage_argument(parser)
    parser.add_argument("--backend", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    args = parser.parse_args(argv)
    positive(parser, args)
    load = LoadGenerator(prefer_wrk=not args.python_load)
    summary = measure(args, load, args.backend)
    log(describe(summary))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2, default=str) + "\n")
    failed = not check(summary)[1]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
