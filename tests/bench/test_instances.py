"""bench/instances.py: one vs two service instances on one database, at a tiny size
(SQLite, in-memory rate limits, the Python load driver): it must serve real
verifications on both instances, not time them."""

from __future__ import annotations

import json

import pytest

from bench import instances
from bench.load import LoadResult


def _result(requests: int, seconds: float, cpu_ms: float, statuses: dict) -> LoadResult:
    return LoadResult(
        tool="python",
        requests=requests,
        duration_s=seconds,
        p50_ms=10.0,
        p90_ms=20.0,
        p99_ms=30.0 + requests,
        mean_ms=12.0,
        max_ms=40.0,
        statuses=statuses,
        server_cpu_ms=cpu_ms,
    )


def test_two_concurrent_runs_add_up_over_the_longer_one():
    two = instances.combined(
        [_result(100, 2.0, 4.0, {"200": 100}), _result(50, 2.5, 6.0, {"200": 49, "503": 1})]
    )
    assert two["rps"] == 60.0
    assert two["server_cpu_ms"] == pytest.approx((100 * 4.0 + 50 * 6.0) / 150, abs=1e-3)
    assert two["p99_ms"] == 130.0
    assert two["statuses"] == {"200": 149, "503": 1}
    failed = instances.check({"one": two, "two": two})
    assert failed[1] is False


@pytest.mark.parametrize(
    "argv",
    [
        ["--connections", "3"],  # wrk needs two threads of a connection on each instance
        ["--python-load", "--connections", "1"],
        ["--duration", "0"],
        ["--min-pool", "-5"],
        ["--holders", "30", "--licences", "10"],
        ["--backend", "oracle"],
    ],
)
def test_bad_arguments_stop_before_any_work(argv, capsys):
    with pytest.raises(SystemExit) as stopped:
        instances.main(argv)
    assert stopped.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_a_tiny_run_verifies_on_one_and_on_two_instances(tmp_path):
    out = tmp_path / "instances.json"
    argv = ["--backend", "sqlite", "--rate-limit-storage", "", "--python-load"]
    argv += ["--duration", "1", "--connections", "2", "--workers", "1"]
    argv += ["--holders", "2", "--licences", "4", "--min-pool", "30", "--json", str(out)]
    assert instances.main(argv) == 0
    figures = json.loads(out.read_text())
    assert figures["backend"] == "sqlite"
    assert figures["one"]["requests"] > 0
    assert set(figures["one"]["statuses"]) == {"200"}
    assert len(figures["two"]["runs"]) == 2
    assert all(run["requests"] > 0 for run in figures["two"]["runs"])
    assert set(figures["two"]["statuses"]) == {"200"}
    assert figures["two_over_one"] > 0
