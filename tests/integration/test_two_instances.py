"""Two service instances (separate gunicorn processes, two workers each, own ports) on one
PostgreSQL database and one Redis: one truth whichever instance a request reaches.

Runs in ``make test-postgres`` (and so in ``.ci/run``); skipped on SQLite, and when Redis
does not answer on 127.0.0.1:6379.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from jose import jwt

from bench.server import free_port

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = "redis://127.0.0.1:6379/13"
HOLDER_CHALLENGE_LIMIT = 6


@dataclass
class Answer:
    status: int
    body: dict

    @property
    def code(self) -> str | None:
        return self.body.get("code")


def _call(url: str, method: str = "GET", body: bytes | dict | None = None, headers=None) -> Answer:
    data, content_type = body, None
    if isinstance(body, dict):
        data, content_type = json.dumps(body).encode(), "application/json"
    request = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    if content_type:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback
            raw = response.read()
            status = response.status
    except urllib.error.HTTPError as error:
        raw, status = error.read(), error.code
    return Answer(status, json.loads(raw) if raw else {})


class Instance:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = log.open("wb")
        self.log_path = log
        self.process = subprocess.Popen(  # noqa: S603
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-c",
                "python:core.gunicorn_config",
                "--workers",
                "2",
                "--bind",
                f"127.0.0.1:{self.port}",
                "app:app",
            ],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=self._log,
            start_new_session=True,
        )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"instance exited: {self.log_path.read_text()[-2000:]}")
            try:
                if _call(f"{self.url}/healthz").status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.3)
        pytest.fail(f"instance not up: {self.log_path.read_text()[-2000:]}")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
        self._log.close()


def _redis_answers() -> bool:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=2).flushdb()
    except redis.RedisError:
        return False
    return True


@pytest.fixture
def shared_env(app, is_postgres):
    if not is_postgres:
        pytest.skip("several instances share one PostgreSQL database (make test-postgres)")
    if not _redis_answers():
        pytest.skip("needs Redis on 127.0.0.1:6379")
    env = {
        **os.environ,
        "DATABASE_URL": app.config["DATABASE_URL"],
        "INSTANCE_PATH": app.instance_path,
        "RATE_LIMIT_STORAGE_URI": REDIS_URL,
        "HOLDER_RATE_LIMIT_CHALLENGES": f"{HOLDER_CHALLENGE_LIMIT} per minute",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return env


@pytest.fixture
def instances(shared_env, tmp_path, licensed_holder):
    # The card authority and the keys exist before the instances start, as in production.
    licensed_holder("nurse")
    pair = [Instance(shared_env, tmp_path / f"instance-{n}.log") for n in "ab"]
    try:
        for instance in pair:
            instance.wait_ready()
        yield pair
    finally:
        for instance in pair:
            instance.stop()


def _verify(instance: Instance, headers, holder, profession: str = "doctor") -> Answer:
    issued = _call(f"{instance.url}/v1/challenges", "POST", {"profession": profession}, headers)
    assert issued.status == 201, issued.body
    assertion = holder.sign(issued.body["nonce"], issued.body["audience"])
    return _call(f"{instance.url}/v1/verifications", "POST", {"assertion": assertion}, headers)


def test_a_nonce_is_consumed_once_across_instances(instances, verifier, licensed_holder):
    a, b = instances
    _, headers = verifier
    holder = licensed_holder("doctor")
    issued = _call(f"{a.url}/v1/challenges", "POST", {"profession": "doctor"}, headers)
    assertion = holder.sign(issued.body["nonce"], issued.body["audience"])

    with ThreadPoolExecutor(6) as pool:
        answers = list(
            pool.map(
                lambda target: _call(
                    f"{target.url}/v1/verifications", "POST", {"assertion": assertion}, headers
                ),
                [a, b, a, b, a, b],
            )
        )

    assert sorted(answer.status for answer in answers) == [200, 401, 401, 401, 401, 401]
    assert {answer.code for answer in answers if answer.status == 401} == {"invalid_nonce"}


def test_rate_limits_are_shared_by_every_instance_and_worker(instances):
    a, b = instances
    statuses = [
        _call(f"{(a, b)[n % 2].url}/v1/holder/challenges", "POST", {}).status
        for n in range(HOLDER_CHALLENGE_LIMIT + 2)
    ]
    # Per instance (memory://) each would allow the limit: 2 x 6 requests.
    assert statuses[:HOLDER_CHALLENGE_LIMIT] == [201] * HOLDER_CHALLENGE_LIMIT
    assert statuses[HOLDER_CHALLENGE_LIMIT:] == [429, 429]


def test_a_crl_pushed_to_one_instance_is_used_by_the_other(
    instances, verifier, licensed_holder, card_authority, card_authority_client
):
    a, b = instances
    _, headers = verifier
    holder = licensed_holder("doctor")
    assert _verify(b, headers, holder).body["outcome"] == "licensed"

    card_authority.report_lost(holder.card.serial)
    crl = card_authority.make_crl().public_bytes(serialization.Encoding.DER)
    _, feed_headers = card_authority_client
    pushed = _call(
        f"{a.url}/v1/card-authority/crl",
        "PUT",
        crl,
        {**feed_headers, "Content-Type": "application/pkix-crl"},
    )
    assert pushed.status == 204, pushed.body

    answer = _verify(b, headers, holder)
    assert (answer.status, answer.code) == (403, "card_suspended")


def test_a_regulator_action_on_one_is_seen_by_the_next_verification_on_the_other(
    instances, verifier, regulator, licensed_holder
):
    a, b = instances
    _, headers = verifier
    _, regulator_headers = regulator
    holder = licensed_holder("doctor")
    licence_id = holder.licences[0].id
    until = (date.today() + timedelta(days=30)).isoformat()

    suspended = _call(
        f"{a.url}/v1/licences/{licence_id}/suspend",
        "POST",
        {"reason": "inquiry pending", "until": until},
        regulator_headers,
    )
    assert suspended.status == 200, suspended.body

    assert _verify(b, headers, holder).body["outcome"] == "suspended"


def test_receipts_of_either_instance_verify_with_one_jwks_also_across_a_rotation(
    instances, shared_env, verifier, licensed_holder
):
    a, b = instances
    _, headers = verifier
    holder = licensed_holder("doctor")

    def receipts() -> list[str]:
        return [_verify(target, headers, holder).body["receipt"] for target in (a, b, a, b)]

    def check(receipt: str) -> None:
        kid = jwt.get_unverified_header(receipt)["kid"]
        for target in (a, b):
            keys = {
                key["kid"]: key for key in _call(f"{target.url}/.well-known/jwks.json").body["keys"]
            }
            assert kid in keys
            jwt.decode(receipt, keys[kid], algorithms=["ES256"], options={"verify_aud": False})

    before = receipts()
    for receipt in before:
        check(receipt)
    assert len({jwt.get_unverified_header(r)["kid"] for r in before}) == 1

    rotated = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "flask", "--app", "app", "signing", "rotate"],
        cwd=ROOT,
        env=shared_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert rotated.returncode == 0, rotated.stderr

    after = receipts()
    new_kids = {jwt.get_unverified_header(r)["kid"] for r in after}
    assert len(new_kids) == 1 and new_kids.isdisjoint(
        {jwt.get_unverified_header(r)["kid"] for r in before}
    )
    for receipt in before + after:  # old receipts stay verifiable through the retention
        check(receipt)


def test_the_audit_chain_stays_one_valid_chain_under_concurrent_actions_on_both(
    instances, shared_env, regulator, register_licence
):
    a, b = instances
    _, regulator_headers = regulator
    licences = [register_licence(profession="nurse") for _ in range(6)]
    until = (date.today() + timedelta(days=10)).isoformat()

    def act(index: int) -> tuple[int, int]:
        target = (a, b)[index % 2]
        licence_id = licences[index % len(licences)].id
        suspended = _call(
            f"{target.url}/v1/licences/{licence_id}/suspend",
            "POST",
            {"reason": "review", "until": until},
            regulator_headers,
        )
        reinstated = _call(
            f"{(b, a)[index % 2].url}/v1/licences/{licence_id}/reinstate",
            "POST",
            {"reason": "review closed"},
            regulator_headers,
        )
        return suspended.status, reinstated.status

    with ThreadPoolExecutor(6) as pool:
        statuses = [status for pair in pool.map(act, range(24)) for status in pair]
    # Some requests lose a race for the same licence (409 invalid_transition): never a 5xx.
    assert set(statuses) <= {200, 409}, statuses
    assert statuses.count(200) >= 6

    verified = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "flask", "--app", "app", "audit", "verify"],
        cwd=ROOT,
        env=shared_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
