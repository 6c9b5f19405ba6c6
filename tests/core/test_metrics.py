"""``/metrics`` (core.metrics): who may read it, what it counts, and that gunicorn's
workers are summed rather than each answering with its own share."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from app import create_app
from tests.fixtures.live import GunicornInstance

ROOT = Path(__file__).resolve().parents[2]
OUTSIDER = {"REMOTE_ADDR": "203.0.113.7"}


def _count(exposition: str, route: str) -> float:
    series = "licence_http_request_duration_seconds_count"
    pattern = rf'{series}\{{[^}}]*route="{re.escape(route)}"[^}}]*\}} (\S+)'
    return sum(float(value) for value in re.findall(pattern, exposition))


def test_loopback_client_reads_request_durations_per_route_template(http):
    for _ in range(3):
        assert http.get("/healthz").status_code == 200
    http.get("/v1/no/such/route")

    response = http.get("/metrics")

    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    body = response.get_data(as_text=True)
    assert _count(body, "/healthz") >= 3
    assert 'route="unmatched"' in body  # never the raw path of an unknown URL
    assert "/v1/no/such/route" not in body
    assert "licence_db_pool_checked_out" in body


def test_other_clients_are_refused_without_a_configured_token(http):
    response = http.get("/metrics", environ_base=OUTSIDER)

    assert response.status_code == 403
    assert response.json["code"] == "forbidden"
    assert "METRICS_TOKEN" in response.json["detail"]


@pytest.mark.parametrize(
    "authorization",
    [
        "",
        "Bearer wrong-token",
        "Bearer s3cret-metrics-token-but-longer",
        "Basic czNjcmV0",
        "Bearer \x00",
    ],
)
def test_a_wrong_or_missing_token_is_refused(database_url, tmp_path, authorization):
    app = create_app(
        {
            "DATABASE_URL": database_url,
            "INSTANCE_PATH": str(tmp_path),
            "METRICS_TOKEN": "s3cret-metrics-token",
        }
    )
    response = app.test_client().get(
        "/metrics", environ_base=OUTSIDER, headers={"Authorization": authorization}
    )
    assert response.status_code == 403


def test_the_configured_token_opens_metrics_to_other_clients(database_url, tmp_path):
    app = create_app(
        {
            "DATABASE_URL": database_url,
            "INSTANCE_PATH": str(tmp_path),
            "METRICS_TOKEN": "s3cret-metrics-token",
        }
    )
    response = app.test_client().get(
        "/metrics", environ_base=OUTSIDER, headers={"Authorization": "Bearer s3cret-metrics-token"}
    )
    assert response.status_code == 200
    assert "licence_http_request_duration_seconds" in response.get_data(as_text=True)


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback test server
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@pytest.fixture
def gunicorn_two_workers(database_url, tmp_path):
    (tmp_path / "metrics").mkdir()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
    }
    subprocess.run(  # noqa: S603
        [sys.executable, "-m", "flask", "--app", "app", "db", "upgrade"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    instance = GunicornInstance(env, tmp_path / "gunicorn.log")
    try:
        instance.wait_ready()
        yield instance.url, tmp_path / "metrics"
    finally:
        instance.stop()


def _worker_files(folder: Path) -> set[str]:
    return {path.stem.rsplit("_", 1)[1] for path in folder.glob("histogram_*.db")}


def test_gunicorn_workers_are_summed_whichever_answers_the_scrape(gunicorn_two_workers):
    url, folder = gunicorn_two_workers
    sent = 0
    with ThreadPoolExecutor(8) as pool:
        # Concurrent requests until both workers have answered some.
        while len(_worker_files(folder)) < 2 and sent < 800:
            assert set(pool.map(lambda _: _get(f"{url}/healthz")[0], range(40))) == {200}
            sent += 40
    assert len(_worker_files(folder)) >= 2  # a worker replaced under load adds a file

    # Every scrape, answered by either worker, counts every worker's requests.
    for _ in range(6):
        status, body = _get(f"{url}/metrics")
        assert status == 200
        assert _count(body, "/healthz") >= sent
