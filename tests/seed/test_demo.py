"""``seed demo`` builds a working population, and the ``make demo`` story holds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from clients.service import authenticate
from licensing.models import Licence
from seed.demo_walkthrough import Service, Story


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
    state = json.loads((Path(app.instance_path) / "demo.json").read_text())
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
    assert (Path(app.instance_path) / "demo.json").stat().st_mode & 0o077 == 0
    assert app.test_client().get("/readyz").status_code == 200
    assert "card sign --card" in result.output and "/v1/verifications" in result.output


def test_demo_refuses_a_non_empty_database_unless_if_empty(app, seeded):
    again = app.test_cli_runner().invoke(args=["seed", "demo", "--holders", "5"])
    assert again.exit_code != 0
    assert "already has licences" in again.output
    skipped = _seed(app, "--holders", "5", "--if-empty")
    assert skipped.exit_code == 0
    assert "nothing seeded" in skipped.output


def test_walkthrough_story_answers_as_it_must(app, seeded, capsys):
    _, state = seeded
    service = InProcessService(app.test_client())
    assert Story(service, state).run() == 0
    printed = capsys.readouterr().out
    assert printed.count("[ok ]") >= 9 and "FAIL" not in printed
    assert "St Luke" in printed.split("9. ")[1]
    assert service.leaks == 0


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
