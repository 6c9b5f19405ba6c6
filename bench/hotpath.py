"""In-process cost of one verification vs ``GET /healthz``, in CPU time, with a profile.

``make bench`` measures wall-clock throughput under gunicorn, which a busy machine
distorts. This measures the CPU time of each request in one process (Flask test
client, same app, same data as the bench), which other load barely moves, and
profiles the verification path with cProfile to show where the time goes.

    .venv/bin/python -m bench.hotpath [--requests 300] [--database-url URL] [--top 30]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import logging
import pstats
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import prepare as prep


def quiet_logs() -> None:
    logger = logging.getLogger("licence_service")
    logger.disabled = True


def add_service_arguments(parser: argparse.ArgumentParser, requests: int) -> None:
    parser.add_argument("--requests", type=int, default=requests)
    parser.add_argument("--licences", type=int, default=10_000)
    parser.add_argument("--database-url")


@dataclass(frozen=True)
class InProcessService:
    """The app in this process (Flask test client) on bench data."""

    app: Any
    client: Any
    prepared: prep.Prepared
    headers: dict[str, str]  # a verifier's, for JSON bodies


def in_process_service(args: argparse.Namespace, workdir: Path) -> InProcessService:
    instance = workdir / "instance"
    url = args.database_url or f"sqlite:///{instance / 'licensing.sqlite3'}"
    env = prep.environment(instance, url)
    prepared, _ = prep.prepare(env, workdir, holders=8, licences=args.licences, log=print)

    from app import create_app

    app = create_app(prep.app_config(env))
    quiet_logs()
    headers = {"Authorization": f"Bearer {prepared.token}", "Content-Type": "application/json"}
    return InProcessService(app, app.test_client(), prepared, headers)


def measure(client, method: str, path: str, bodies, headers, n: int) -> list[float]:
    costs = []
    for i in range(n):
        body = bodies[i] if bodies is not None else None
        started = time.process_time()
        response = client.open(path, method=method, data=body, headers=headers)
        costs.append((time.process_time() - started) * 1000)
        if response.status_code >= 300:
            raise RuntimeError(f"{method} {path} -> {response.status_code}: {response.data[:300]}")
    return costs


def make_bodies(client, prepared: prep.Prepared, headers, n: int) -> list[str]:
    import json

    bodies = []
    for i in range(n):
        holder = prepared.holders[i % len(prepared.holders)]
        response = client.post(
            "/v1/challenges", json={"profession": holder.profession}, headers=headers
        )
        nonce = response.get_json()["nonce"]
        bodies.append(
            json.dumps({"assertion": prep.sign_assertion(holder, nonce, prepared.audience)})
        )
    return bodies


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.hotpath")
    add_service_arguments(parser, requests=300)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--workdir")
    args = parser.parse_args(argv)

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="lv-hotpath-"))
    service = in_process_service(args, workdir)
    client, prepared, headers = service.client, service.prepared, service.headers
    n = args.requests

    measure(client, "GET", "/healthz", None, {}, 50)
    healthz = measure(client, "GET", "/healthz", None, {}, n)
    warm = make_bodies(client, prepared, headers, 30)
    measure(client, "POST", "/v1/verifications", warm, headers, len(warm))
    bodies = make_bodies(client, prepared, headers, n)
    verify = measure(client, "POST", "/v1/verifications", bodies, headers, n)

    def line(name: str, costs: list[float]) -> str:
        return (
            f"{name:<24} CPU ms/request: median {statistics.median(costs):6.3f}  "
            f"mean {statistics.fmean(costs):6.3f}  p90 {sorted(costs)[int(0.9 * n)]:6.3f}"
        )

    print(line("GET /healthz", healthz))
    print(line("POST /v1/verifications", verify))
    ratio = statistics.median(healthz) / statistics.median(verify)
    print(f"in-process throughput ratio (CPU, test client): {ratio:.3f}")

    bodies = make_bodies(client, prepared, headers, n)
    profiler = cProfile.Profile(time.process_time)
    profiler.enable()
    measure(client, "POST", "/v1/verifications", bodies, headers, n)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(args.top)
    stats.sort_stats("tottime").print_stats(args.top)
    print(out.getvalue())
    stats.dump_stats(str(workdir / "verification.pstats"))
    print(f"profile: {workdir / 'verification.pstats'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
