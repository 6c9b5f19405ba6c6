"""``seed demo`` builds a working population, and the ``make demo`` story holds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from app import create_app
from clients.service import authenticate
from core import db
from licensing.models import Licence
from seed.demo import demo_dir
from seed.demo_walkthrough import Service, Story, main

ROOT = Path(__file__).resolve().parents[2]


class InProcessService(Service):
    """The walkthrough's HTTP calls, sent to the app in-process."""

    def __init__(self, http) -> None:
        super().__init__("http://in-process")
        self.http = http

    def send(self, method, path, headers, data):
        response = self.http.open(path, method=method, headers=headers, data=data)
        return response.status_code, response.get_data()


def _seed(app, *args):
    return app.test_cli_runner().invoke(args=["seed", "demo", *args], catch_exceptions=False)


@pytest.fixture
def seeded(app):
    result = _seed(app, "--holders", "40", "--cards", "4")
    assert result.exit_code == 0, result.output
    state = json.loads((demo_dir(app.config) / "demo.json").read_text())
    return result, state


def test_demo_seeds_population_clients_cards_and_a_crl(app, seeded, db_session):
    result, state = seeded
    assert db_session.scalar(select(func.count()).select_from(Licence)) >= 40
    statuses = set(db_session.scalars(select(Licence.status)))
    assert {"active", "suspended", "revoked"} <= {str(s.value) for s in statuses}
    for role in ("regulator", "hospital", "platform", "card_authority"):
        token = state["clients"][role]["token"]
        assert token in result.output
        assert authenticate(db_session, token) is not None
    assert [c["role"] for c in state["cards"]] == ["doctor", "nurse", "suspended", "revoked"]
    assert all(Path(c["path"]).exists() for c in state["cards"])
    assert (demo_dir(app.config) / "demo.json").stat().st_mode & 0o077 == 0
    assert app.test_client().get("/readyz").status_code == 200
    # The cross-device walkthrough: HR asks, the card app answers, HR reads the result.
    doctor = state["cards"][0]
    assert "/v1/challenges" in result.output and "request_uri" in result.output
    assert f'licence-card sign "$REQUEST_URL" --card {doctor["path"]}' in result.output
    assert "/v1/challenges/$CHALLENGE_ID" in result.output
    assert "  make demo\n" in result.output


def test_demo_refuses_a_non_empty_database_unless_if_empty(app, seeded):
    again = app.test_cli_runner().invoke(args=["seed", "demo", "--holders", "5"])
    assert again.exit_code != 0
    assert "already has licences" in again.output
    skipped = _seed(app, "--holders", "5", "--if-empty")
    assert skipped.exit_code == 0
    assert "nothing seeded" in skipped.output
    # make run on an existing database says where its demo tokens and cards are.
    folder = demo_dir(app.config)
    assert f"demo: tokens in {folder / 'demo.json'}, cards in {folder / 'cards'}" in skipped.output
    assert "licence-card sign" in skipped.output
    elsewhere = _seed(app, "--if-empty", "--base-url", "http://10.0.0.5:8765")
    assert "http://10.0.0.5:8765/v1/challenges" in elsewhere.output
    assert "make demo HOST=10.0.0.5 PORT=8765" in elsewhere.output


def test_a_second_database_keeps_the_first_ones_demo_files(app, seeded, tmp_path):
    """Two databases under one INSTANCE_PATH: each has its own demo folder."""
    _, first_state = seeded
    first_folder = demo_dir(app.config)
    first_files = {p: p.read_bytes() for p in first_folder.rglob("*") if p.is_file()}
    second_url = f"sqlite:///{Path(app.instance_path) / 'second.sqlite3'}"
    db.upgrade(second_url)
    second = create_app(
        {"INSTANCE_PATH": app.instance_path, "DATABASE_URL": second_url, "TESTING": True}
    )
    try:
        result = _seed(second, "--holders", "12", "--cards", "2")
        assert result.exit_code == 0, result.output
        second_folder = demo_dir(second.config)
        assert second_folder == Path(app.instance_path) / "second-demo"
        assert second_folder != first_folder
        second_state = json.loads((second_folder / "demo.json").read_text())
        assert second_state["clients"] != first_state["clients"]
        assert all(Path(c["path"]).parent == second_folder / "cards" for c in second_state["cards"])
        assert {p: p.read_bytes() for p in first_folder.rglob("*") if p.is_file()} == first_files
    finally:
        second.extensions["db"].engine.dispose()


def test_demo_folder_names_follow_the_database(tmp_path):
    instance = str(tmp_path)
    sqlite = {"DATABASE_URL": f"sqlite:///{tmp_path}/x/lic.sqlite3", "INSTANCE_PATH": instance}
    assert demo_dir(sqlite) == tmp_path / "x" / "lic-demo"
    pg = {
        "DATABASE_URL": "postgresql://u:secret@db.example:5433/licensing",
        "INSTANCE_PATH": instance,
    }
    assert demo_dir(pg) == tmp_path / "demo-db.example-5433-licensing"
    assert "secret" not in str(demo_dir(pg))


@given(st.text(min_size=1, max_size=40).filter(lambda name: "\x00" not in name))
def test_a_server_database_name_never_leaves_the_instance_folder(name):
    from sqlalchemy.engine import URL

    url = URL.create("postgresql", host="h", database=name).render_as_string()
    folder = demo_dir({"DATABASE_URL": url, "INSTANCE_PATH": "/srv/instance"})
    assert folder.parent == Path("/srv/instance")
    assert folder.name.startswith("demo-") and "/" not in folder.name


def test_walkthrough_story_answers_as_it_must(app, seeded, live_service, capsys):
    """The whole story over real HTTP; the candidate answers with the card app."""
    _, state = seeded
    service = Service(live_service)
    assert Story(service, state).run() == 0
    printed = capsys.readouterr().out
    assert printed.count("[ok ]") >= 11 and "FAIL" not in printed
    assert "card app | St Luke's HR asks to verify your doctor licence." in printed
    assert "card app | Sent. Result: licensed (St Luke's HR)" in printed
    assert "St Luke" in printed.split("signs in with the card and sees")[1]
    assert service.leaks == 0


def test_ask_prints_the_request_url_and_its_qr_code(app, seeded, live_service, capsys):
    _, state = seeded
    demo_file = demo_dir(app.config) / "demo.json"
    assert main(["--url", live_service, "--demo-file", str(demo_file), "ask"]) == 0
    printed = capsys.readouterr().out
    assert f"{live_service}/r/" in printed
    assert "\u2588" in printed  # the QR code's full blocks
    assert "licence-card sign" in printed


def test_demo_without_a_service_is_one_line(tmp_path):
    """make demo where nothing listens: no traceback, how to start the service."""
    done = subprocess.run(
        [sys.executable, "-m", "seed.demo_walkthrough", "--url", "http://127.0.0.1:9"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
        env={**os.environ, "INSTANCE_PATH": str(tmp_path)},
    )
    assert done.returncode == 2
    assert done.stdout == "no service at http://127.0.0.1:9; start it with make run\n"
    assert "Traceback" not in done.stderr


def test_make_run_serves_and_links_where_it_is_told():
    """PUBLIC_BASE_URL defaults to the served address (credentials' status URIs, links)."""
    done = subprocess.run(
        ["make", "-n", "run", "demo", "HOST=10.1.2.3", "PORT=8765"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k != "PUBLIC_BASE_URL"},
    )
    assert "--bind 10.1.2.3:8765" in done.stdout
    assert "PUBLIC_BASE_URL=http://10.1.2.3:8765 .venv/bin/gunicorn" in done.stdout
    assert "seed demo --if-empty --base-url http://10.1.2.3:8765" in done.stdout
    assert "seed.demo_walkthrough --url http://10.1.2.3:8765" in done.stdout


def test_walkthrough_reports_a_wrong_answer(app, seeded, capsys):
    """The story fails loudly when the service answers wrongly (here: nobody is licensed)."""
    _, state = seeded
    state["audience"] = "urn:some-other-service"  # every assertion now has the wrong aud
    assert Story(InProcessService(app.test_client()), state).run() == 1
    assert "FAIL" in capsys.readouterr().out


def test_leak_check_flags_a_standalone_my_number_but_not_digits_inside_ids():
    from core.my_number import check_digit

    number = "12345678901" + str(check_digit("12345678901"))

    class Canned(Service):
        def __init__(self, body: str) -> None:
            super().__init__("http://in-process")
            self.body = body

        def send(self, method, path, headers, data):
            return 200, self.body.encode()

    inside_id = Canned('{"verification_id": "ab' + number + 'cd"}')
    inside_id.call("GET", "/")
    assert inside_id.leaks == 0
    standalone = Canned('{"holder": {"number": "' + number + '"}}')
    standalone.call("GET", "/")
    assert standalone.leaks == 1
