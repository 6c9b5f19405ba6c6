"""The demo card authority keeps its CRL fresh: ``flask card-authority refresh-crl``
(run by ``make run`` at start-up and, with ``--watch``, while it serves)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from cryptography import x509

from seed import cli as seed_cli
from seed.card_authority import crl_refresh_due

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


@pytest.fixture
def refresh(app):
    runner = app.test_cli_runner()

    def invoke(*args: str):
        result = runner.invoke(args=["card-authority", "refresh-crl", *args])
        assert result.exit_code == 0, result.output
        return result.output

    return invoke


def _crl_numbers(app) -> list[int]:
    from sqlalchemy import select

    from core.db import get_session
    from verification.models import CardCrl

    with app.app_context():
        return [int(n) for n in get_session().scalars(select(CardCrl.crl_number))]


@pytest.mark.parametrize(
    "this_update, next_update, due",
    [
        (None, None, True),  # never published
        (NOW - timedelta(hours=17), NOW + timedelta(hours=7), False),  # 7/24 h left
        (NOW - timedelta(hours=18), NOW + timedelta(hours=6), True),  # a quarter left
        (NOW - timedelta(hours=30), NOW - timedelta(hours=6), True),  # stale
    ],
)
def test_refresh_is_due_when_missing_stale_or_in_the_last_quarter(this_update, next_update, due):
    assert crl_refresh_due(this_update, next_update, NOW) is due


def test_start_up_publishes_only_when_needed(app, http, refresh, card_authority):
    assert http.get("/readyz").status_code == 503  # no CRL yet
    assert "demo CRL published" in refresh()
    assert http.get("/readyz").status_code == 200
    assert refresh() == ""  # fresh: nothing to do
    assert _crl_numbers(app) == [1]
    # A day later (the demo has been off overnight), start-up publishes again.
    with time_machine.travel(datetime.now(UTC) + timedelta(hours=25), tick=True):
        assert http.get("/readyz").status_code == 503
        assert "demo CRL published" in refresh()
        assert http.get("/readyz").status_code == 200
    assert _crl_numbers(app) == [2]


def test_watch_republishes_well_before_next_update(app, refresh, card_authority, monkeypatch):
    """A long-running make run: the watcher re-publishes once 75% of the CRL's day is
    over, and ends when its parent process (make run's shell) has gone."""
    start = datetime.now(UTC)
    moments = iter([start + timedelta(hours=h) for h in (1, 17, 18, 19)])
    parents = iter([100, 100, 100, 100, 100, 1])  # then orphaned
    monkeypatch.setattr(seed_cli.os, "getppid", lambda: next(parents))

    with time_machine.travel(start, tick=False) as clock:
        monkeypatch.setattr(seed_cli.time, "sleep", lambda _s: clock.move_to(next(moments)))
        output = refresh("--watch")

    assert output.count("demo CRL published") == 2  # at start, then at hour 18
    assert _crl_numbers(app) == [2]


def test_no_demo_authority_means_nothing_to_refresh(app, refresh, tmp_path):
    # Production: CARD_AUTHORITY_DIR holds no demo authority; the command does nothing.
    assert "nothing to refresh" in refresh()
    assert refresh("--watch").count("nothing to refresh") == 1  # and does not loop
    assert _crl_numbers(app) == []


def test_a_demo_authority_the_service_does_not_trust_is_left_alone(
    app, refresh, card_authority, foreign_card_authority
):
    app.config["CARD_TRUST_ANCHORS"] = str(foreign_card_authority.trust_bundle_path)
    assert "nothing to refresh" in refresh()
    assert not Path(card_authority.crl_path).exists()


def test_publish_crl_validity_is_capped_at_seven_days(app, card_authority):
    runner = app.test_cli_runner()
    too_long = runner.invoke(args=["card-authority", "publish-crl", "--validity-hours", "169"])
    assert too_long.exit_code == 2 and "168" in too_long.output
    week = runner.invoke(args=["card-authority", "publish-crl", "--validity-hours", "168"])
    assert week.exit_code == 0 and "imported into the service" in week.output
    crl = x509.load_der_x509_crl(Path(card_authority.crl_path).read_bytes())
    assert crl.next_update_utc - crl.last_update_utc == timedelta(days=7)


def test_watch_survives_a_database_outage(app, card_authority, monkeypatch):
    from sqlalchemy.exc import OperationalError

    real = seed_cli.refresh_demo_crl
    calls = iter([OperationalError("SELECT 1", {}, Exception("server closed")), None])

    def flaky(authority):
        if (error := next(calls)) is not None:
            raise error
        return real(authority)

    parents = iter([100, 100, 1])
    monkeypatch.setattr(seed_cli, "refresh_demo_crl", flaky)
    monkeypatch.setattr(seed_cli.os, "getppid", lambda: next(parents))
    monkeypatch.setattr(seed_cli.time, "sleep", lambda _s: None)
    result = app.test_cli_runner().invoke(args=["card-authority", "refresh-crl", "--watch"])
    assert result.exit_code == 0, result.output
    assert "demo CRL not refreshed (OperationalError); will retry" in result.output
    assert "demo CRL published" in result.output
    assert _crl_numbers(app) == [1]
