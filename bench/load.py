"""Load generation: wrk (Debian package) with bench/wrk/bench.lua, or a small Python
fallback with the same output when wrk cannot be had.

Both drive the service from a separate process at a fixed number of connections and
report throughput, latency percentiles and a count of responses per status.
"""

from __future__ import annotations

import http.client
import itertools
import json
import os
import shutil
import subprocess
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

WRK_SCRIPT = Path(__file__).resolve().parent / "wrk" / "bench.lua"


@dataclass
class LoadResult:
    tool: str
    requests: int
    duration_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    statuses: dict[str, int] = field(default_factory=dict)
    exhausted: bool = False
    socket_errors: int = 0
    #: CPU time the server (gunicorn master + workers) spent per request: unlike the
    #: throughput it hardly moves when other processes share the machine.
    server_cpu_ms: float | None = None

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0

    @property
    def ok(self) -> int:
        return sum(n for status, n in self.statuses.items() if status.startswith("2"))

    def as_dict(self) -> dict:
        data = asdict(self)
        data["rps"] = round(self.rps, 1)
        data["p99_over_p50"] = round(self.p99_ms / self.p50_ms, 2) if self.p50_ms else None
        if self.server_cpu_ms is not None:
            data["server_cpu_ms"] = round(self.server_cpu_ms, 3)
        return data


def find_wrk(install: bool = True) -> str | None:
    """The wrk binary; installs the Debian package when missing and we are root."""
    found = shutil.which("wrk")
    if found or not install:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("  wrk not found: apt-get install -y wrk", flush=True)
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        apt = shutil.which("apt-get") or "apt-get"
        install_wrk = [apt, "install", "-y", "-qq", "wrk"]
        subprocess.run(install_wrk, check=False, env=env, **quiet)  # noqa: S603
        if not shutil.which("wrk"):
            subprocess.run([apt, "update", "-qq"], check=False, env=env, **quiet)  # noqa: S603
            subprocess.run(install_wrk, check=False, env=env, **quiet)  # noqa: S603
    return shutil.which("wrk")


def run_wrk(
    wrk: str,
    url: str,
    *,
    connections: int,
    duration: float,
    threads: int = 2,
    bodies: Path | None = None,
    token: str | None = None,
) -> LoadResult:
    parts = urlsplit(url)
    base = f"{parts.scheme}://{parts.netloc}"
    args = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        "--timeout",
        "10s",
        "-s",
        str(WRK_SCRIPT),
    ]
    if bodies is None:
        args += [url, "--", "get"]
    else:
        args += [base, "--", "bodies", str(bodies), str(threads), token or "", parts.path]
    completed = subprocess.run(args, capture_output=True, text=True, check=False)  # noqa: S603
    line = next((ln for ln in completed.stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed: {completed.stderr.strip() or completed.stdout.strip()}")
    data = json.loads(line.removeprefix("BENCH_JSON "))
    errors = data["errors"]
    return LoadResult(
        tool="wrk",
        requests=data["requests"],
        duration_s=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1000,
        p90_ms=data["p90_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        mean_ms=data["mean_us"] / 1000,
        max_ms=data["max_us"] / 1000,
        statuses=data["statuses"],
        exhausted=data["exhausted"],
        socket_errors=errors["connect"] + errors["read"] + errors["write"] + errors["timeout"],
    )


def _percentile(sorted_values: list[float], pct: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(pct / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


def run_python(
    url: str,
    *,
    connections: int,
    duration: float,
    bodies: Path | None = None,
    token: str | None = None,
) -> LoadResult:
    """Fallback: one thread per connection, HTTP/1.1 with reconnects (gunicorn's sync
    workers close every connection). Costs the server more CPU than wrk does."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    pool = iter(bodies.read_text().splitlines()) if bodies is not None else None
    pool_lock = threading.Lock()
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    latencies: list[list[float]] = [[] for _ in range(connections)]
    statuses: list[dict[str, int]] = [{} for _ in range(connections)]
    errors = [0] * connections
    exhausted = threading.Event()
    deadline = time.perf_counter() + duration

    def worker(index: int) -> None:
        conn: http.client.HTTPConnection | None = None
        while time.perf_counter() < deadline and not exhausted.is_set():
            body = None
            if pool is not None:
                with pool_lock:
                    body = next(pool, None)
                if body is None:
                    exhausted.set()
                    return
            started = time.perf_counter()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(host, port, timeout=10)
                if body is None:
                    conn.request("GET", parts.path)
                else:
                    conn.request("POST", parts.path, body=body.encode(), headers=headers)
                response = conn.getresponse()
                response.read()
                if response.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException):
                errors[index] += 1
                if conn is not None:
                    conn.close()
                conn = None
                continue
            latencies[index].append((time.perf_counter() - started) * 1000)
            key = str(response.status)
            statuses[index][key] = statuses[index].get(key, 0) + 1

    started = time.perf_counter()
    workers = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    elapsed = time.perf_counter() - started
    values = sorted(itertools.chain.from_iterable(latencies))
    merged: dict[str, int] = {}
    for per_thread in statuses:
        for key, n in per_thread.items():
            merged[key] = merged.get(key, 0) + n
    return LoadResult(
        tool="python",
        requests=len(values),
        duration_s=elapsed,
        p50_ms=_percentile(values, 50),
        p90_ms=_percentile(values, 90),
        p99_ms=_percentile(values, 99),
        mean_ms=sum(values) / len(values) if values else 0.0,
        max_ms=values[-1] if values else 0.0,
        statuses=merged,
        exhausted=exhausted.is_set(),
        socket_errors=sum(errors),
    )


class LoadGenerator:
    def __init__(self, prefer_wrk: bool = True) -> None:
        self.wrk = find_wrk() if prefer_wrk else None
        self.tool = "wrk" if self.wrk else "python"

    def run(
        self,
        url: str,
        *,
        connections: int,
        duration: float,
        bodies: Path | None = None,
        token: str | None = None,
    ) -> LoadResult:
        if self.wrk:
            return run_wrk(
                self.wrk,
                url,
                connections=connections,
                duration=duration,
                bodies=bodies,
                token=token,
            )
        return run_python(
            url, connections=connections, duration=duration, bodies=bodies, token=token
        )
