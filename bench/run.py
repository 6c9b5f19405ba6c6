"""``make bench``: throughput and latency of verifications against a trivial endpoint.

For each backend (SQLite, then a fresh PostgreSQL database) in a fresh instance folder:

1. prepare data with the project's own CLI and seed pieces (bench/prepare.py):
   migrations, the demo card authority, card holders, 10,000 licences via
   ``flask licences import``, a verifier client and a published CRL;
2. serve the app under gunicorn with 2 workers (as ``make run`` does);
3. drive it from a separate process (wrk, or a Python fallback) at 8 connections:
   ``GET /healthz`` (the trivial JSON endpoint of the same app), then
   ``POST /v1/verifications`` with full checks, each request with its own fresh
   challenge and card assertion from a pool generated before the timed run; then more
   rounds of the pair in alternating order (V T, T V, ...; ``--rounds``): the headline
   ratio is the median of the rounds' ratios, each measured from two adjacent runs, so
   a drift in the shared machine's speed, or running second, does not decide it;
4. the framework-free floor (bench/floor.py, in a separate process with its own data):
   the CPU of a verification's essential work alone, and of the real verification, as
   multiples of ``GET /healthz`` in the same process; the throughput target allows
   1/ratio (4x on SQLite);
5. on SQLite and PostgreSQL (``--scale-on``): grow the register to 1,000,000 licences
   with the bulk import (rows/s) and measure verifications again: the 1M/10k cost ratio;
6. during an import (``--import-rows``, 200,000 by default): verifications back to back
   while ``flask licences import`` runs against the served database; every one must
   succeed and their p99 stay under 5x the idle p99;
7. one instance vs two on the same PostgreSQL and Redis (bench/instances.py;
   ``--no-instances`` skips it): verifications/s, ratio, p50/p99, server CPU per request.

Prints one table and writes ``bench/results/bench-<UTC time>.json``. Exit status 1 when
a target is missed (``--no-fail`` to always exit 0).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench import prepare as prep
from bench import profile
from bench.load import LoadGenerator, LoadResult
from bench.server import Server

RESULTS = Path(__file__).resolve().parent / "results"
PG_BASE_URL = os.environ.get("BENCH_POSTGRES_URL") or os.environ.get(
    "PG_TEST_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
TARGET_RATIO = {"sqlite": 0.25, "postgresql": 0.18}
TARGET_P99_OVER_P50 = 4.0
TARGET_SCALE_RATIO = 1.15
TARGET_IMPORT_P99_OVER_IDLE = 5.0


def log(message: str = "") -> None:
    print(message, flush=True)


# -- databases ----------------------------------------------------------------------------


class PostgresDatabase:
    def __init__(self, base_url: str, template: str | None = None) -> None:
        from sqlalchemy.engine import make_url

        self.base = make_url(base_url).set(drivername="postgresql+psycopg")
        self.name = f"lv_bench_{secrets.token_hex(4)}"
        self.template = template

    def __enter__(self) -> str:
        from sqlalchemy import create_engine, text

        admin = create_engine(self.base, isolation_level="AUTOCOMMIT")
        template = f' TEMPLATE "{self.template}"' if self.template else ""
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{self.name}"{template}'))
        admin.dispose()
        return self.base.set(drivername="postgresql", database=self.name).render_as_string(
            hide_password=False
        )

    def __exit__(self, *exc) -> None:
        from sqlalchemy import create_engine, text

        admin = create_engine(self.base, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        admin.dispose()


def postgres_available() -> bool:
    try:
        from sqlalchemy import create_engine, text

        engine = create_engine(
            PostgresDatabase(PG_BASE_URL).base, connect_args={"connect_timeout": 3}
        )
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return True
    except Exception:  # noqa: BLE001 - any failure means "not available"
        return False


# -- measurements ---------------------------------------------------------------------------


def pooled(runs: list[LoadResult], seconds: float) -> dict:
    """Several runs as one over ``seconds``: requests, CPU and statuses add up; the p99
    is the worst run's."""
    requests = sum(r.requests for r in runs)
    cpu = [r.server_cpu_ms * r.requests for r in runs if r.server_cpu_ms is not None]
    statuses: dict[str, int] = {}
    for r in runs:
        for key, n in r.statuses.items():
            statuses[key] = statuses.get(key, 0) + n
    return {
        "rps": round(requests / seconds, 1) if seconds else 0.0,
        "requests": requests,
        "server_cpu_ms": round(sum(cpu) / requests, 3) if cpu and requests else None,
        "p99_ms": max(r.p99_ms for r in runs),
        "statuses": statuses,
        "exhausted": any(r.exhausted for r in runs),
        "runs": [r.as_dict() for r in runs],
    }


class Bench:
    def __init__(self, args: argparse.Namespace, load: LoadGenerator) -> None:
        self.args = args
        self.load = load

    def measured(self, server: Server, url: str, **kwargs) -> LoadResult:
        before = server.cpu_seconds()
        result = self.load.run(url, connections=self.args.connections, **kwargs)
        if result.requests:
            result.server_cpu_ms = (server.cpu_seconds() - before) * 1000 / result.requests
        return result

    def trivial(self, server: Server) -> LoadResult:
        self.load.run(f"{server.url}/healthz", connections=self.args.connections, duration=2)
        return self.measured(server, f"{server.url}/healthz", duration=self.args.duration)

    def verifications(
        self,
        server: Server,
        prepared: prep.Prepared,
        workdir: Path,
        label: str,
        *,
        profile_dir: Path | None = None,
    ) -> tuple[LoadResult, dict]:
        """A warm-up run sizes the pool, then the timed run; retried once if it ran dry."""
        url = f"{server.url}/v1/verifications"
        connections, duration = self.args.connections, self.args.duration
        prep.check_one(server.url, prepared)
        warm_path = workdir / f"bodies-{label}-warm.txt"
        warm_count = min(400, self.args.min_pool)
        prep.assertion_pool(server.url, prepared, warm_count, warm_path)
        warm = self.load.run(
            url, connections=connections, duration=2, bodies=warm_path, token=prepared.token
        )
        rate = warm.requests / warm.duration_s
        if warm.exhausted:
            rate *= 2.5
        info: dict = {"warmup_rps_estimate": round(rate, 1)}
        count = max(self.args.min_pool, int(rate * duration * 1.6))
        for _attempt in range(2):
            path = workdir / f"bodies-{label}.txt"
            seconds = prep.assertion_pool(server.url, prepared, count, path)
            info["pool_size"] = count
            info["pool_seconds"] = round(seconds, 1)
            recorders = []
            if profile_dir is not None:
                recorders = profile.start(server.worker_pids(), duration, profile_dir)
            result = self.measured(
                server, url, duration=duration, bodies=path, token=prepared.token
            )
            if recorders:
                info["profile"] = profile.summarise(recorders)
            path.unlink()
            if not result.exhausted:
                break
            count *= 2
        return result, info

    def alternate_pair(
        self, server: Server, prepared: prep.Prepared, workdir: Path, count: int, index: int
    ) -> tuple[LoadResult, LoadResult]:
        """(trivial, verification) runs back to back; verification first in odd rounds."""
        duration = self.args.duration
        runs: dict[str, LoadResult] = {}
        for name in ("verification", "trivial") if index % 2 else ("trivial", "verification"):
            runs[name] = (
                self.pool_run(server, prepared, workdir, count, duration)
                if name == "verification"
                else self.measured(server, f"{server.url}/healthz", duration=duration)
            )
        return runs["trivial"], runs["verification"]

    def pool_run(
        self, server: Server, prepared: prep.Prepared, workdir: Path, count: int, duration: float
    ) -> LoadResult:
        """One timed verification run on a fresh pool of ``count`` bodies."""
        path = workdir / "bodies-round.txt"
        prep.assertion_pool(server.url, prepared, count, path)
        result = self.measured(
            server,
            f"{server.url}/v1/verifications",
            duration=duration,
            bodies=path,
            token=prepared.token,
        )
        path.unlink()
        return result

    def compare_scaled(
        self,
        base: Server,
        scaled: Server,
        prepared: prep.Prepared,
        workdir: Path,
        rate: float,
        rounds: int = 3,
        duration: float = 5,
    ) -> dict:
        """Runs on the 10k and the grown instance alternately (A B, B A, A B), so that a
        change in the machine's load, or running first, hits both sides alike."""
        count = max(1000, int(rate * duration * 1.8))
        sides: dict[str, list[LoadResult]] = {"base": [], "scaled": []}
        for server in (base, scaled):  # warm both (caches, connections) before timing
            prep.check_one(server.url, prepared)
            self.pool_run(server, prepared, workdir, min(count, 600), 2)
        order = [("base", base), ("scaled", scaled)]
        for index in range(rounds):
            # A B, B A, A B, ...: neither side always runs first.
            for name, server in order if index % 2 == 0 else order[::-1]:
                sides[name].append(self.pool_run(server, prepared, workdir, count, duration))
        summary: dict = {}
        # Per round, the two runs were adjacent in time: their ratio is what a change of
        # the register's size costs; the median over rounds drops a round that another
        # process disturbed.
        pairs = list(zip(sides["base"], sides["scaled"], strict=True))
        summary["round_cost_ratios"] = [
            round(a.rps / b.rps, 4) if b.rps else None for a, b in pairs
        ]
        summary["round_cpu_ratios"] = [
            round(b.server_cpu_ms / a.server_cpu_ms, 4)
            if a.server_cpu_ms and b.server_cpu_ms
            else None
            for a, b in pairs
        ]
        for name, runs in sides.items():
            summary[name] = pooled(runs, sum(r.duration_s for r in runs))
            summary[name]["p50_ms"] = sorted(r.p50_ms for r in runs)[len(runs) // 2]
        return summary

    def during_import(
        self,
        server: Server,
        prepared: prep.Prepared,
        env: dict[str, str],
        workdir: Path,
        rows: int,
        rate: float,
    ) -> dict:
        """Verification runs back to back while ``rows`` licences are imported."""
        path = workdir / "licences-during.csv"
        prepared.population.write_csv(path, prepared.population.rows(rows))
        duration = min(self.args.duration, 5.0)
        count = max(600, int(rate * duration * 1.6))
        prep.check_one(server.url, prepared)
        started = time.perf_counter()
        process = prep.start_import(env, path, workdir / "import-during.log")
        runs: list[LoadResult] = []
        try:
            while process.poll() is None:
                runs.append(self.pool_run(server, prepared, workdir, count, duration))
        finally:
            process.wait()
            path.unlink()
        seconds = time.perf_counter() - started
        output = (workdir / "import-during.log").read_text(errors="replace").strip()
        summary = json.loads(output.splitlines()[-1]) if process.returncode == 0 else {}
        statuses: dict[str, int] = {}
        for run in runs:
            for key, n in run.statuses.items():
                statuses[key] = statuses.get(key, 0) + n
        requests = sum(r.requests for r in runs)
        return {
            "import_rows": rows,
            "import_exit_status": process.returncode,
            "import_imported": summary.get("imported"),
            "import_s": round(seconds, 1),
            "verifications": requests,
            "failed": requests - sum(r.ok for r in runs) + sum(r.socket_errors for r in runs),
            "statuses": statuses,
            "p50_ms": statistics.median([r.p50_ms for r in runs]) if runs else None,
            "p99_ms": max((r.p99_ms for r in runs), default=None),
            "exhausted": any(r.exhausted for r in runs),
            "runs": [r.as_dict() for r in runs],
        }


def clone_instance(workdir: Path, twin: Path) -> None:
    """Copies the instance folder (SQLite files, card authority, keys, identity store)."""
    shutil.copytree(workdir / "instance", twin / "instance")


def measure_floor(backend: str, workdir: Path) -> dict:
    """bench/floor.py in a fresh interpreter, on its own database."""
    out = workdir / "floor.json"
    command = [sys.executable, "-m", "bench.floor", "--json", str(out)]
    database = PostgresDatabase(PG_BASE_URL) if backend == "postgresql" else None
    try:
        if database is not None:
            command += ["--database-url", database.__enter__()]
        subprocess.run(  # noqa: S603 - our own module, fixed arguments
            command, check=True, stdout=subprocess.DEVNULL, timeout=900
        )
    finally:
        if database is not None:
            database.__exit__(None, None, None)
    figures = json.loads(out.read_text())
    # floor_ratio counts the database server's CPU too (PostgreSQL); the verification's
    # multiple is its worker CPU only, so it understates that verification's cost.
    figures["floor_multiple"] = round(1 / figures["floor_ratio"], 2)
    figures["verification_multiple"] = round(
        figures["verification_cpu_ms"] / figures["healthz_cpu_ms"], 2
    )
    return figures


def describe_floor(floor: dict, backend: str) -> str:
    server = "floor_database_server_cpu_ms" in floor
    return (
        f"/healthz plus the essential work {floor['floor_multiple']:.1f}x"
        f"{' (with the database server CPU)' if server else ''}, the verification "
        f"{floor['verification_multiple']:.1f}x{' (without it)' if server else ''} of "
        f"/healthz; the target allows {1 / TARGET_RATIO[backend]:.1f}x"
    )


def fmt(result: LoadResult) -> str:
    cpu = f"{result.server_cpu_ms:6.2f}" if result.server_cpu_ms is not None else "   n/a"
    return (
        f"{result.rps:8.1f} req/s  p50 {result.p50_ms:7.2f} ms  p99 {result.p99_ms:7.2f} ms  "
        f"server CPU {cpu} ms/req  "
        f"(p99/p50 {result.p99_ms / result.p50_ms if result.p50_ms else 0:4.2f}, "
        f"{result.requests} requests, statuses {result.statuses})"
    )


def run_backend(backend: str, args: argparse.Namespace, load: LoadGenerator) -> dict:
    bench = Bench(args, load)
    workdir = Path(tempfile.mkdtemp(prefix=f"lv-bench-{backend}-"))
    log(f"\n== {backend}  (work folder {workdir})")
    result: dict = {"backend": backend, "workdir": str(workdir)}
    pg = PostgresDatabase(PG_BASE_URL) if backend == "postgresql" else None
    sqlite_url = f"sqlite:///{workdir / 'instance' / 'licensing.sqlite3'}"
    database_url = pg.__enter__() if pg else sqlite_url
    server = None
    try:
        env = prep.environment(workdir / "instance", database_url)
        started = time.perf_counter()
        prepared, timings = prep.prepare(
            env, workdir, holders=args.holders, licences=args.licences, log=log
        )
        result["prepare"] = {k: round(v, 2) for k, v in timings.items()}
        result["prepare"]["total_s"] = round(time.perf_counter() - started, 1)
        log(f"prepared in {result['prepare']['total_s']} s")

        server = Server(env, workdir / "gunicorn.log", workers=args.workers)
        server.start()
        trivial = bench.trivial(server)
        log(f"GET  /healthz           {fmt(trivial)}")
        verify, info = bench.verifications(
            server,
            prepared,
            workdir,
            "base",
            profile_dir=workdir if (args.profile and backend == args.profile_on) else None,
        )
        log(f"POST /v1/verifications  {fmt(verify)}")
        rounds = [(trivial, verify)]
        for index in range(1, args.rounds):
            pair = bench.alternate_pair(server, prepared, workdir, info["pool_size"], index)
            log(f"round {index + 1}: {'V T' if index % 2 else 'T V'}")
            log(f"GET  /healthz           {fmt(pair[0])}")
            log(f"POST /v1/verifications  {fmt(pair[1])}")
            rounds.append(pair)
        round_ratios = [round(v.rps / t.rps, 4) if t.rps else 0.0 for t, v in rounds]
        ratio = statistics.median(round_ratios)
        if len(rounds) > 1:
            log(f"per-round throughput ratios {round_ratios} (median taken)")
        cpu_ratio = (
            trivial.server_cpu_ms / verify.server_cpu_ms
            if trivial.server_cpu_ms and verify.server_cpu_ms
            else None
        )
        if cpu_ratio is not None:
            log(
                f"server CPU per request: trivial/verification = {cpu_ratio:.3f} "
                "(what the throughput ratio would be on an otherwise idle machine)"
            )
        log(
            f"verification/trivial throughput ratio: {ratio:.3f} "
            f"(target >= {TARGET_RATIO[backend]})"
        )
        result.update(
            trivial=trivial.as_dict(),
            verification=verify.as_dict(),
            verification_info={k: v for k, v in info.items() if k != "profile"},
            throughput_ratio=round(ratio, 4),
            round_ratios=round_ratios,
            rounds=[{"trivial": t.as_dict(), "verification": v.as_dict()} for t, v in rounds[1:]],
            cpu_ratio=round(cpu_ratio, 4) if cpu_ratio is not None else None,
            load_average=os.getloadavg(),
            licences=prepared.licences,
        )
        if args.floor:
            floor = measure_floor(backend, workdir)
            result["floor"] = floor
            log(f"framework-free floor (in-process CPU): {describe_floor(floor, backend)}")
        if "profile" in info:
            result["profile"] = info["profile"]
            profile.print_summary(info["profile"], log)

        if backend in args.scale_on and args.scale_to > prepared.licences:
            # A twin of this instance grows to the large register; both then serve, and
            # verifications alternate between them.
            server.stop()
            twin_dir = workdir / "scaled"
            clone_instance(workdir, twin_dir)
            if pg:
                twin_pg = PostgresDatabase(PG_BASE_URL, template=pg.name)
                twin_url = twin_pg.__enter__()
            else:
                twin_url = f"sqlite:///{twin_dir / 'instance' / 'licensing.sqlite3'}"
            twin_env = prep.environment(twin_dir / "instance", twin_url)
            server.start()
            grown = prep.grow(twin_env, twin_dir, prepared, args.scale_to, log)
            result["import_large"] = grown
            twin_server = Server(twin_env, twin_dir / "gunicorn.log", workers=args.workers)
            twin_server.start()
            try:
                rate = verify.rps or 100.0
                compared = bench.compare_scaled(server, twin_server, prepared, workdir, rate)
            finally:
                twin_server.stop()
                if pg:
                    twin_pg.__exit__(None, None, None)
            base_side, big = compared["base"], compared["scaled"]
            ratios = [x for x in compared["round_cost_ratios"] if x is not None]
            scale_ratio = statistics.median(ratios) if ratios else float("inf")
            cpu_ratios = [x for x in compared["round_cpu_ratios"] if x is not None]
            cpu_scale = statistics.median(cpu_ratios) if cpu_ratios else None
            log(f"per-round cost ratios {compared['round_cost_ratios']} (median taken)")
            log(
                f"POST /v1/verifications  alternating runs: {args.licences:,} licences "
                f"{base_side['rps']} req/s ({base_side['server_cpu_ms']} ms CPU), "
                f"{prepared.licences:,} licences {big['rps']} req/s "
                f"({big['server_cpu_ms']} ms CPU)"
            )
            log(
                f"cost ratio {prepared.licences:,}/{args.licences:,} licences: "
                f"{scale_ratio:.3f} (target < {TARGET_SCALE_RATIO}); server CPU ratio "
                f"{cpu_scale:.3f}"
                if cpu_scale is not None
                else f"{scale_ratio:.3f}"
            )
            result.update(
                verification_scaled=big,
                verification_scaled_base=base_side,
                scaled_licences=prepared.licences,
                scale_cost_ratio=round(scale_ratio, 4),
                scale_cpu_ratio=round(cpu_scale, 4) if cpu_scale is not None else None,
                scale_p50_ratio=round(big["p50_ms"] / base_side["p50_ms"], 4),
                scale_round_cost_ratios=compared["round_cost_ratios"],
            )
        if args.import_rows > 0:
            # Last: the import grows the served register (the 10k side above stays 10k).
            during = bench.during_import(
                server, prepared, env, workdir, args.import_rows, verify.rps or 100.0
            )
            during["idle_p99_ms"] = verify.p99_ms
            during["p99_over_idle"] = (
                round(during["p99_ms"] / verify.p99_ms, 2)
                if during["p99_ms"] and verify.p99_ms
                else None
            )
            result["during_import"] = during
            log(
                f"during a {args.import_rows:,}-row import ({during['import_s']} s): "
                f"{during['verifications']:,} verifications, {during['failed']} failed, "
                f"p99 {during['p99_ms']} ms ({during['p99_over_idle']}x idle p99 "
                f"{verify.p99_ms:.2f} ms); statuses {during['statuses']}"
            )
    finally:
        if server is not None:
            server.stop()
        if pg:
            pg.__exit__(None, None, None)
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return result


def evaluate(results: list[dict]) -> list[tuple[str, bool, str]]:
    checks = []
    for r in results:
        if "error" in r:
            checks.append((f"{r['backend']}: run completed", False, r["error"]))
            continue
        backend = r["backend"]
        v, t = r["verification"], r["trivial"]
        checks.append(
            (
                f"{backend}: verification throughput >= {TARGET_RATIO[backend]:.0%} of trivial",
                r["throughput_ratio"] >= TARGET_RATIO[backend],
                f"{r['throughput_ratio']:.1%}, median of rounds {r['round_ratios']} "
                f"(first round {v['rps']} vs {t['rps']} req/s)",
            )
        )
        runs = [v, *(pair["verification"] for pair in r["rounds"])]
        ok_all = all(
            run["statuses"] and set(run["statuses"]) == {"200"} and not run["exhausted"]
            for run in runs
        )
        checks.append(
            (
                f"{backend}: every timed verification succeeded (200, fresh assertion)",
                bool(ok_all),
                f"statuses {[run['statuses'] for run in runs]}, "
                f"pool ran dry: {[run['exhausted'] for run in runs]}",
            )
        )
        for name, data in (("verification", v), ("trivial", t)):
            checks.append(
                (
                    f"{backend}: {name} p99 < {TARGET_P99_OVER_P50:g}x p50",
                    data["p99_over_p50"] is not None and data["p99_over_p50"] < TARGET_P99_OVER_P50,
                    f"p50 {data['p50_ms']:.2f} ms, p99 {data['p99_ms']:.2f} ms "
                    f"({data['p99_over_p50']}x)",
                )
            )
        if "scale_cost_ratio" in r:
            checks.append(
                (
                    f"{backend}: cost {r['scaled_licences']:,}/{r['licences']:,} licences "
                    f"< {TARGET_SCALE_RATIO}",
                    r["scale_cost_ratio"] < TARGET_SCALE_RATIO,
                    f"{r['scale_cost_ratio']:.3f} (server CPU ratio {r['scale_cpu_ratio']}, "
                    f"p50 ratio {r['scale_p50_ratio']:.3f}; median of alternating rounds "
                    f"{r['scale_round_cost_ratios']})",
                )
            )
            for side in ("verification_scaled_base", "verification_scaled"):
                data = r[side]
                checks.append(
                    (
                        f"{backend}: every verification of the alternating runs succeeded "
                        f"({'1M' if side == 'verification_scaled' else '10k'} side)",
                        set(data["statuses"]) == {"200"} and not data["exhausted"],
                        f"statuses {data['statuses']}",
                    )
                )
        if "during_import" in r:
            d = r["during_import"]
            checks.append(
                (
                    f"{backend}: no verification failed during a {d['import_rows']:,}-row import",
                    d["failed"] == 0 and d["verifications"] > 0 and d["import_exit_status"] == 0,
                    f"{d['failed']} of {d['verifications']} failed, statuses {d['statuses']}, "
                    f"import exit status {d['import_exit_status']}",
                )
            )
            checks.append(
                (
                    f"{backend}: verification p99 during the import < "
                    f"{TARGET_IMPORT_P99_OVER_IDLE:g}x idle p99",
                    d["p99_over_idle"] is not None
                    and d["p99_over_idle"] < TARGET_IMPORT_P99_OVER_IDLE,
                    f"p99 {d['p99_ms']} ms vs idle {d['idle_p99_ms']:.2f} ms "
                    f"({d['p99_over_idle']}x)",
                )
            )
    return checks


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of every timed run (also ``python -m bench.instances``)."""
    parser.add_argument("--duration", type=float, default=10, help="seconds per timed run")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers per instance")
    parser.add_argument("--holders", type=int, default=24, help="card holders with licences")
    parser.add_argument("--licences", type=int, default=10_000)
    parser.add_argument(
        "--min-pool",
        type=int,
        default=1000,
        help="fewest verification bodies prepared for a timed run (more when it is fast)",
    )
    parser.add_argument("--python-load", action="store_true", help="skip wrk")
    parser.add_argument("--keep", action="store_true", help="keep the work folders")


def main(argv: list[str] | None = None) -> int:
    from bench import instances  # it builds on this module's Bench

    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--backends", default="sqlite,postgresql")
    add_common_arguments(parser)
    parser.add_argument(
        "--rounds", type=int, default=3, help="trivial/verification pairs (median ratio)"
    )
    parser.add_argument("--scale-to", type=int, default=1_000_000)
    parser.add_argument(
        "--scale-on", default="sqlite,postgresql", help="backends to grow (comma list)"
    )
    parser.add_argument(
        "--no-floor",
        dest="floor",
        action="store_false",
        help="skip the framework-free floor (bench/floor.py)",
    )
    parser.add_argument(
        "--import-rows",
        type=int,
        default=200_000,
        help="rows imported while verifications run (0: skip the during-import run)",
    )
    parser.add_argument(
        "--no-instances",
        dest="instances",
        action="store_false",
        help="skip one vs two instances on PostgreSQL (bench/instances.py)",
    )
    instances.add_storage_argument(parser)
    parser.add_argument("--profile", action="store_true", help="py-spy the workers")
    parser.add_argument("--profile-on", default="sqlite")
    parser.add_argument("--no-fail", action="store_true", help="exit 0 even if a target fails")
    args = parser.parse_args(argv)
    args.scale_on = [b for b in args.scale_on.split(",") if b]

    load = LoadGenerator(prefer_wrk=not args.python_load)
    busy = os.getloadavg()[0]
    if busy > (os.cpu_count() or 1) * 0.5:
        log(
            f"WARNING: load average {busy:.1f} on {os.cpu_count()} CPUs: other processes "
            "compete with the benchmark; throughput figures will be low and noisy, the "
            "server-CPU-per-request figures much less so."
        )
    log(
        f"load generator: {load.tool}; {os.cpu_count()} CPUs; {args.connections} connections, "
        f"{args.duration:g} s per run; gunicorn --workers {args.workers}"
    )
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    started = time.perf_counter()
    results = []
    for backend in backends:
        if backend == "postgresql" and not postgres_available():
            log(f"\n== postgresql: not reachable at {PG_BASE_URL}")
            results.append({"backend": backend, "error": "PostgreSQL not reachable"})
            continue
        try:
            results.append(run_backend(backend, args, load))
        except Exception as error:  # noqa: BLE001 - report and go on with the next backend
            log(f"!! {backend} failed: {error}")
            results.append({"backend": backend, "error": str(error)[:2000]})

    several = None
    if args.instances and "postgresql" in backends and postgres_available():
        try:
            several = instances.measure(args, load)
        except Exception as error:  # noqa: BLE001 - report it with the other results
            log(f"!! one vs two instances failed: {error}")
            several = {"error": str(error)[:2000]}

    checks = evaluate(results)
    if several is not None:
        checks.append(instances.check(several))
    log("\n== summary")
    header = (
        f"{'backend':<11} {'verif/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'trivial/s':>9} "
        f"{'p50 ms':>7} {'p99 ms':>7} {'ratio':>6}"
    )
    log(header)
    for r in results:
        if "error" in r:
            log(f"{r['backend']:<11} error: {r['error'][:200]}")
            continue
        v, t = r["verification"], r["trivial"]
        log(
            f"{r['backend']:<11} {v['rps']:>8.1f} {v['p50_ms']:>7.2f} {v['p99_ms']:>7.2f} "
            f"{t['rps']:>9.1f} {t['p50_ms']:>7.2f} {t['p99_ms']:>7.2f} "
            f"{r['throughput_ratio']:>6.1%}"
        )
        if "floor" in r:
            log(f"{'':<11} floor: {describe_floor(r['floor'], r['backend'])}")
        if "verification_scaled" in r:
            s = r["verification_scaled"]
            log(
                f"{'  @' + format(r['scaled_licences'], ','):<11} {s['rps']:>8.1f} "
                f"{s['p50_ms']:>7.2f} {s['p99_ms']:>7.2f}   cost ratio {r['scale_cost_ratio']:.3f}"
            )
        if "during_import" in r:
            d = r["during_import"]
            log(
                f"{'':<11} during a {d['import_rows']:,}-row import: {d['failed']} of "
                f"{d['verifications']:,} verifications failed, p99 {d['p99_ms']} ms "
                f"({d['p99_over_idle']}x idle)"
            )
        for key in ("import_large",):
            if r.get(key):
                log(
                    f"{'':<11} bulk import: {r[key]['import_rows']:,} rows in "
                    f"{r[key]['import_s']:.1f} s = {r[key]['import_rows_per_s']:,.0f} rows/s"
                )
        if "prepare" in r and r["prepare"].get("import_initial_s"):
            p = r["prepare"]
            log(
                f"{'':<11} bulk import: {p['import_initial_rows']:,} rows in "
                f"{p['import_initial_s']:.1f} s = "
                f"{p['import_initial_rows'] / p['import_initial_s']:,.0f} rows/s"
            )
    if several is not None and "error" not in several:
        log(instances.describe(several))
    log("")
    for name, passed, detail in checks:
        log(f"[{'PASS' if passed else 'FAIL'}] {name}: {detail}")
    elapsed = time.perf_counter() - started
    log(f"\nbench finished in {elapsed:.0f} s")

    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / f"bench-{stamp}.json"
    out.write_text(
        json.dumps(
            {
                "started_at": stamp,
                "elapsed_s": round(elapsed, 1),
                "machine": {
                    "cpus": os.cpu_count(),
                    "python": platform.python_version(),
                    "platform": platform.platform(),
                },
                "settings": {k: v for k, v in vars(args).items()},
                "load_generator": load.tool,
                "results": results,
                "instances": several,
                "checks": [{"name": n, "passed": p, "detail": d} for n, p, d in checks],
            },
            indent=2,
            default=str,
        )
        + "\n"
    )
    log(f"results: {out.relative_to(RESULTS.parent.parent)}")
    failed = [c for c in checks if not c[1]]
    return 0 if args.no_fail or not failed else 1


if __name__ == "__main__":
    sys.exit(main())
