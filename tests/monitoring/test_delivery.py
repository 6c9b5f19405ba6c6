"""Delivery of Security Event Tokens: push with retries, the delivery log, polling, and
the worker's crash safety (issue 18, item 3)."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import select

from core import db, jws
from core.db import utcnow
from licensing.service import today
from monitoring import webhooks
from monitoring import worker as worker_module
from monitoring.models import DeliveryState, MonitoringEvent
from monitoring.worker import WorkerSettings, deliver_batch, retry_delay, run
from tests.fixtures.monitoring import regulator_action
from tests.fixtures.verification import problem

STATUS_CHANGED = "urn:licence-verification:event:status-changed"


@pytest.fixture
def suspended(http, register_licence, regulator, verifier, monitor):
    """A monitored licence, then suspended: one pending event for ``verifier``."""
    _, regulator_headers = regulator
    licence = register_licence(profession="nurse")
    _, subject = monitor(verifier, licence)
    until = (today() + timedelta(days=10)).isoformat()
    regulator_action(http, regulator_headers, licence.id, "suspend", until=until)
    return licence, subject, until


def test_receiver_failing_twice_gets_the_same_jti_three_times(
    app, http, verifier, suspended, receiver, webhook, run_worker, verify_set
):
    client, headers = verifier
    licence, subject, until = suspended
    receiver.script = [500, 503]
    webhook(headers, receiver)

    assert run_worker() == 3

    assert len(receiver.requests) == 3
    assert {r["content_type"] for r in receiver.requests} == {"application/secevent+jwt"}
    claims = [verify_set(token) for token in receiver.tokens()]
    assert len({c["jti"] for _, c in claims}) == 1
    header, payload = claims[-1]
    assert header["typ"] == "secevent+jwt" and header["alg"] == "ES256" and header["kid"]
    assert payload["iss"] == app.config["SERVICE_AUDIENCE"]
    assert payload["aud"] == client.id
    assert payload["sub"] == subject
    assert isinstance(payload["iat"], int)
    assert payload["events"] == {
        STATUS_CHANGED: {
            "profession": "nurse",
            "status": "suspended",
            "suspended_until": until,
            "effective_at": payload["events"][STATUS_CHANGED]["effective_at"],
        }
    }

    log = http.get("/v1/monitoring/deliveries", headers=headers).get_json()
    assert [(d["attempt"], d["outcome"], d["http_status"]) for d in log["deliveries"]] == [
        (1, "http_error", 500),
        (2, "http_error", 503),
        (3, "accepted", 202),
    ]
    assert {d["jti"] for d in log["deliveries"]} == {payload["jti"]}
    assert run_worker() == 0  # delivered: never pushed again


def test_redirects_are_not_followed(app, verifier, suspended, receiver, webhook, run_worker):
    _, headers = verifier
    receiver.script = [307]
    webhook(headers, receiver)
    app.config["MONITORING_RETRY_BASE_SECONDS"] = "3600"
    assert run_worker() == 1
    assert len(receiver.requests) == 1
    with app.app_context():
        event = db.get_session().scalar(select(MonitoringEvent))
        assert event.state == DeliveryState.PENDING and event.attempts == 1
        assert event.next_attempt_at > utcnow() + timedelta(minutes=29)


def test_a_crash_between_change_and_delivery_loses_nothing(
    app, http, regulator, register_licence, verifier, monitor, receiver, webhook, monkeypatch
):
    _, headers = verifier
    _, regulator_headers = regulator
    webhook(headers, receiver)
    licences = [register_licence() for _ in range(3)]
    for licence in licences:
        monitor(verifier, licence)
        regulator_action(http, regulator_headers, licence.id, "revoke")

    real_post = webhooks.Transport.post
    calls = []

    def dies_on_the_second_push(self, target, body):
        calls.append(body)
        if len(calls) == 2:
            raise KeyboardInterrupt  # the worker process is killed mid-batch
        return real_post(self, target, body)

    monkeypatch.setattr(webhooks.Transport, "post", dies_on_the_second_push)
    with pytest.raises(KeyboardInterrupt):
        run(app, threading.Event(), once=True)
    monkeypatch.setattr(webhooks.Transport, "post", real_post)
    with app.app_context():
        states = db.get_session().scalars(select(MonitoringEvent.state)).all()
        assert states == [DeliveryState.PENDING] * 3  # the batch never committed

    assert run(app, threading.Event(), once=True) == 3
    # The first event reached the receiver twice (at least once); receivers de-duplicate.
    jtis = [jws.parse_compact(token).payload["jti"] for token in receiver.tokens()]
    assert len(jtis) == 4 and len(set(jtis)) == 3 and jtis[0] == jtis[1]
    with app.app_context():
        states = db.get_session().scalars(select(MonitoringEvent.state)).all()
        assert states == [DeliveryState.DELIVERED] * 3


def test_pushes_stop_after_24_hours_and_polls_still_serve(
    app, http, verifier, suspended, receiver, webhook, run_worker
):
    _, headers = verifier
    receiver.default = 500
    webhook(headers, receiver)
    app.config["MONITORING_RETRY_BASE_SECONDS"] = "3600"
    assert run_worker() == 1
    with time_machine.travel(utcnow() + timedelta(hours=25), tick=False):
        assert run_worker() == 1  # claimed, found too old, marked expired without a push
    assert len(receiver.requests) == 1
    with app.app_context():
        assert db.get_session().scalar(select(MonitoringEvent.state)) == DeliveryState.EXPIRED
    assert len(http.get("/v1/monitoring/events", headers=headers).get_json()["events"]) == 1


def test_backoff_grows_exponentially_with_jitter_and_is_capped(app):
    settings = WorkerSettings.from_config(
        {**app.config, "MONITORING_RETRY_BASE_SECONDS": 10, "MONITORING_RETRY_MAX_SECONDS": 3600}
    )
    for attempt, ceiling in ((1, 10), (2, 20), (5, 160), (12, 3600), (400, 3600)):
        delays = {retry_delay(attempt, settings).total_seconds() for _ in range(20)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(delays) > 1


def test_events_of_a_verifier_without_webhook_wait_for_polls(
    app, http, verifier, suspended, run_worker, verify_set
):
    client, headers = verifier
    _, subject, _ = suspended
    assert run_worker() == 0
    body = http.get("/v1/monitoring/events", headers=headers).get_json()
    assert len(body["events"]) == 1
    _, claims = verify_set(body["events"][0])
    assert claims["sub"] == subject and claims["aud"] == client.id
    again = http.get(f"/v1/monitoring/events?after={body['next_cursor']}", headers=headers)
    assert again.get_json() == {"events": [], "next_cursor": body["next_cursor"]}
    # The same event polled twice keeps its jti.
    first = verify_set(http.get("/v1/monitoring/events", headers=headers).get_json()["events"][0])
    assert first[1]["jti"] == claims["jti"]


def test_poll_shows_only_the_callers_events(http, verifier, other_verifier, suspended, make_client):
    _, other_headers = other_verifier
    assert http.get("/v1/monitoring/events", headers=other_headers).get_json()["events"] == []
    _, regulator_headers = make_client("regulator")
    problem(http.get("/v1/monitoring/events", headers=regulator_headers), 403, "forbidden")
    problem(http.get("/v1/monitoring/events"), 401, "unauthenticated")


@pytest.mark.parametrize(
    "query",
    [
        "after=-1",
        "after=abc",
        "after=1e3",
        "after=" + "9" * 19,
        "after=%00",
        "limit=0",
        "limit=1001",
    ],
)
def test_poll_and_log_refuse_bad_cursors(http, verifier, query):
    _, headers = verifier
    for path in ("/v1/monitoring/events", "/v1/monitoring/deliveries"):
        problem(http.get(f"{path}?{query}", headers=headers), 400, "invalid_request")


def test_two_workers_never_push_one_event_twice(
    app, http, is_postgres, regulator, register_licence, verifier, monitor, receiver, webhook
):
    if not is_postgres:
        pytest.skip("several workers share the work on PostgreSQL only")
    _, headers = verifier
    _, regulator_headers = regulator
    webhook(headers, receiver)
    for _ in range(12):
        licence = register_licence()
        monitor(verifier, licence)
        regulator_action(http, regulator_headers, licence.id, "revoke")
    settings = WorkerSettings.from_config({**app.config, "MONITORING_BATCH_SIZE": 3})
    barrier = threading.Barrier(2)

    def work():
        transport = webhooks.Transport()
        barrier.wait()
        with app.app_context():
            while True:
                with app.extensions["db"].sessionmaker() as session:
                    if deliver_batch(app, session, transport, settings) == 0:
                        break
        transport.close()

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    jtis = [jws.parse_compact(token).payload["jti"] for token in receiver.tokens()]
    assert len(jtis) == 12 and len(set(jtis)) == 12


def test_the_worker_survives_a_failing_round(
    app, verifier, suspended, receiver, webhook, monkeypatch
):
    _, headers = verifier
    webhook(headers, receiver)
    real_subject = worker_module.verifier_subject
    failures = []

    def platform_down_once(subscription):
        if not failures:
            failures.append(1)
            raise ConnectionError("identity platform unreachable")
        return real_subject(subscription)

    monkeypatch.setattr(worker_module, "verifier_subject", platform_down_once)
    stop = threading.Event()
    thread = threading.Thread(target=run, args=(app, stop))
    thread.start()
    deadline = time.monotonic() + 20
    while not receiver.requests and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    thread.join(timeout=20)
    assert failures and len(receiver.requests) == 1


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MONITORING_RETRY_BASE_SECONDS", "soon"),
        ("MONITORING_BATCH_SIZE", "-5"),
        ("MONITORING_RETRY_FOR_SECONDS", "1e300"),
        ("MONITORING_ALLOWED_NETWORKS", "10.0.0.0/33"),
    ],
)
def test_malformed_settings_fail_at_start_up(tmp_path, database_url, name, value):
    from app import create_app
    from core.config import ConfigurationError

    with pytest.raises(ConfigurationError, match=name):
        create_app({"INSTANCE_PATH": str(tmp_path), "DATABASE_URL": database_url, name: value})
