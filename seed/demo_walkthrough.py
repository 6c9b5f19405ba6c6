"""``make demo``: the story of the product, told against the running service.

Uses the demo population that ``seed demo`` wrote (``demo.json`` in the database's demo
folder, ``seed.demo.demo_dir``) and talks to the service over HTTP like any client
would; the candidate answers HR with the card app (``licence-card sign``), as on
their own phone or PC. Each step says in plain words what happens and checks that the
service answered as it must; the script exits non-zero when an answer is wrong.

    python -m seed.demo_walkthrough [--url URL]        # the whole story
    python -m seed.demo_walkthrough [--url URL] ask    # HR asks: request URL and QR code
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import re
import sys
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import click
import segno
from cryptography.hazmat.primitives import serialization

from card_app.cli import main as card_app_main
from card_app.service import ServiceUnreachable
from card_app.virtual_card import VirtualCard
from core import jws
from core.config import settings_from_env
from core.my_number import is_valid_my_number
from seed.card_authority import CardAuthority, generate_card_key
from seed.cards import issue_virtual_card
from seed.demo import DEMO_FILE, demo_dir

# A number standing on its own; ids and tokens (hex, base64url) may hold digit runs by
# chance, which are not numbers anyone could read as a My Number.
_STANDALONE_TWELVE_DIGITS = re.compile(r"(?<![0-9A-Za-z])\d{12}(?![0-9A-Za-z])")


@dataclass
class Answer:
    status: int
    body: dict[str, Any]


class Service:
    def __init__(self, base_url: str) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise SystemExit("--url must be an http(s) URL")
        self.base_url = base_url.rstrip("/")
        self.leaks = 0

    def call(
        self,
        method: str,
        path: str,
        token: str | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> Answer:
        data = None
        headers = {"Accept": "application/json"}
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            headers["Content-Type"] = content_type
        if token:
            headers["Authorization"] = f"Bearer {token}"
        status, raw = self.send(method, path, headers, data)
        text = raw.decode("utf-8", "replace")
        if any(is_valid_my_number(n) for n in _STANDALONE_TWELVE_DIGITS.findall(text)):
            self.leaks += 1
        return Answer(status, json.loads(text) if text else {})

    def send(
        self, method: str, path: str, headers: dict[str, str], data: bytes | None
    ) -> tuple[int, bytes]:
        request = urllib.request.Request(  # noqa: S310 - the scheme is checked above
            self.base_url + path, data=data, headers=headers, method=method
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()
        except (urllib.error.URLError, OSError):
            raise ServiceUnreachable(self.base_url) from None


class Story:
    def __init__(self, service: Service, state: dict[str, Any]) -> None:
        self.service = service
        self.state = state
        self.audience = state["audience"]
        self.hr = state["clients"]["hospital"]
        self.platform = state["clients"]["platform"]
        self.regulator = state["clients"]["regulator"]
        self.card_feed = state["clients"]["card_authority"]
        self.authority = CardAuthority.load(Path(state["card_authority_dir"]))
        self.failures = 0
        self.steps = 0

    def card(self, role: str) -> tuple[dict[str, Any], VirtualCard]:
        entry = next(c for c in self.state["cards"] if c["role"] == role)
        return entry, VirtualCard.load(Path(entry["path"]))

    def new_challenge(self, profession: str, client: dict[str, Any] | None = None) -> dict:
        answer = self.service.call(
            "POST", "/v1/challenges", (client or self.hr)["token"], {"profession": profession}
        )
        if answer.status != 201:
            raise SystemExit(f"could not get a challenge: {answer.status} {answer.body}")
        return answer.body

    def challenge(self, profession: str) -> str:
        return self.new_challenge(profession)["nonce"]

    def verify(self, assertion: str, client: dict[str, Any] | None = None) -> Answer:
        return self.service.call(
            "POST", "/v1/verifications", (client or self.hr)["token"], {"assertion": assertion}
        )

    def mark(self, ok: bool, story: str) -> None:
        self.steps += 1
        self.failures += 0 if ok else 1
        print(f"[{'ok ' if ok else 'FAIL'}] {self.steps}. {story}")

    def expect(self, answer: Answer, want: str, story: str) -> None:
        got = answer.body.get("outcome") or answer.body.get("code")
        self.mark(got == want, story)
        print(f"       -> {answer.status} {got} (expected {want})")
        holder = answer.body.get("holder")
        if holder:
            print(f"       holder: {holder['name']}, HR's own code {holder['subject'][:18]}...")

    def publish_crl(self) -> None:
        der = self.authority.make_crl().public_bytes(serialization.Encoding.DER)
        answer = self.service.call(
            "PUT",
            "/v1/card-authority/crl",
            self.card_feed["token"],
            der,
            content_type="application/pkix-crl",
        )
        if answer.status != 204:
            raise SystemExit(f"the CRL was not accepted: {answer.status} {answer.body}")

    def run(self) -> int:
        doctor, card = self.card("doctor")
        pin = doctor["pin"]
        print(f"{self.hr['name']} is hiring. {doctor['name']} says they are a doctor.\n")
        self.cross_device(doctor)
        self.relayed(doctor, card)

        nonce = self.challenge("doctor")
        assertion = card.sign_assertion(pin, nonce=nonce, audience=self.audience)
        self.expect(
            self.verify(assertion),
            "licensed",
            "The direct flow (integrations): HR submits an assertion the card signed.",
        )

        self.expect(
            self.verify(assertion),
            "invalid_nonce",
            "Someone replays that signed assertion: the nonce was used once.",
        )

        nonce = self.challenge("doctor")
        impostor_key = generate_card_key()
        forged = jws.sign(
            {"aud": self.audience, "nonce": nonce, **_times()},
            impostor_key,
            "RS256",
            headers={"typ": "card-assertion+jwt", "x5c": card.x5c()},
        )
        self.expect(
            self.verify(forged),
            "invalid_assertion",
            "An impostor presents the doctor's real certificate, signed with their own key.",
        )

        with tempfile.TemporaryDirectory() as folder:
            fake = CardAuthority.init(Path(folder) / "fake-authority")
            fake_card = issue_virtual_card(fake, Path(folder) / "fake-card.json", "0000")
            nonce = self.challenge("doctor")
            self.expect(
                self.verify(fake_card.sign_assertion("0000", nonce=nonce, audience=self.audience)),
                "untrusted_certificate",
                "A forger makes a card with a fake authority that copies the real "
                "authority's names.",
            )

        serial = card.certificate.serial_number
        self.authority.report_lost(serial)
        self.publish_crl()
        nonce = self.challenge("doctor")
        self.expect(
            self.verify(card.sign_assertion(pin, nonce=nonce, audience=self.audience)),
            "card_suspended",
            "The doctor reports the card lost (24/7 line); a thief who saw the PIN tries it.",
        )

        self.authority.resume(serial)
        self.publish_crl()
        nonce = self.challenge("doctor")
        self.expect(
            self.verify(card.sign_assertion(pin, nonce=nonce, audience=self.audience)),
            "licensed",
            "The card is found and the hold lifted: the owner is verified again.",
        )

        if self.service.leaks:
            print(f"\n{self.service.leaks} answer(s) contained something like a My Number!")
            return 1
        self.regulator_acts(doctor, card)
        self.holder_looks(doctor, card)

        print("\nNo answer above contained a My Number.")
        if self.failures:
            print(f"{self.failures} step(s) did not answer as expected.")
            return 1
        return 0

    def cross_device(self, doctor: dict[str, Any]) -> None:
        """HR asks; the candidate's card app answers from the request URL; HR reads it."""
        challenge = self.new_challenge("doctor")
        request_url = challenge.get("request_uri", "")
        print(f"{self.hr['name']} asks for a check; the candidate scans this request URL:")
        print(f"       {request_url}")
        with tempfile.TemporaryDirectory() as folder:
            pin_file = Path(folder) / "pin"
            pin_file.write_text(doctor["pin"])
            done = answer_with_card_app(
                request_url, doctor["path"], pin_file, self.service.base_url
            )
        for line in done.output.splitlines():
            print(f"       card app | {line}")
        result = self.service.call(
            "GET", f"/v1/challenges/{challenge['challenge_id']}", self.hr["token"]
        )
        verification = result.body.get("verification") or {}
        outcome = verification.get("outcome")
        self.mark(
            done.exit_code == 0
            and result.body.get("state") == "completed"
            and outcome == "licensed",
            "The doctor's card app shows who asks, signs with the PIN and answers the "
            "service directly; HR reads the result.",
        )
        print(
            f"       -> {result.status} {result.body.get('state')}: {outcome} (expected licensed)"
        )

    def relayed(self, doctor: dict[str, Any], card: VirtualCard) -> None:
        """Another verifier passes its own challenge off as HR's: the card names HR."""
        nonce = self.new_challenge("doctor", self.platform)["nonce"]
        relayed = card.sign_assertion(
            doctor["pin"], nonce=nonce, audience=self.audience, verifier=self.hr["id"]
        )
        self.expect(
            self.verify(relayed, self.platform),
            "invalid_assertion",
            f"{self.platform['name']} relays its challenge as if from {self.hr['name']}: "
            "the card signed for HR, so it fails.",
        )

    def regulator_acts(self, doctor: dict[str, Any], card: VirtualCard) -> None:
        pin, licence = doctor["pin"], f"/v1/licences/{doctor['licence_id']}"
        until = (date.today() + timedelta(days=30)).isoformat()
        answer = self.service.call(
            "POST",
            f"{licence}/suspend",
            self.regulator["token"],
            {"reason": "demo: under investigation", "until": until},
        )
        if answer.status != 200:
            raise SystemExit(f"the regulator could not suspend: {answer.status} {answer.body}")
        nonce = self.challenge("doctor")
        self.expect(
            self.verify(card.sign_assertion(pin, nonce=nonce, audience=self.audience)),
            "suspended",
            "The regulator suspends the licence; the very next check shows it.",
        )
        self.service.call(
            "POST",
            f"{licence}/reinstate",
            self.regulator["token"],
            {"reason": "demo: investigation closed"},
        )
        nonce = self.challenge("doctor")
        self.expect(
            self.verify(card.sign_assertion(pin, nonce=nonce, audience=self.audience)),
            "licensed",
            "The regulator reinstates it: licensed again.",
        )

    def holder_looks(self, doctor: dict[str, Any], card: VirtualCard) -> None:
        challenge = self.service.call("POST", "/v1/holder/challenges", body={})
        assertion = card.sign_assertion(
            doctor["pin"], nonce=challenge.body["nonce"], audience=challenge.body["audience"]
        )
        session = self.service.call("POST", "/v1/holder/sessions", body={"assertion": assertion})
        log = self.service.call("GET", "/v1/holder/access-log", session.body.get("session_token"))
        entries = log.body.get("entries", [])
        outcomes = [entry["outcome"] for entry in entries]
        # The thief and the relaying platform used the real card: their attempts show. The
        # impostor's token was never signed by the card, so it is nobody's attempt.
        ok = log.status == 200 and {"card_suspended", "licensed", "signed_in"} <= set(outcomes)
        self.mark(
            ok,
            f"{doctor['name']} signs in with the card and sees who checked them, including "
            "the relayed request and the thief's attempt with the card:",
        )
        for entry in entries[:10]:
            print(f"       {entry['at']}  {entry['verifier']:<14} {entry['outcome']}")


@dataclass
class CardAppRun:
    exit_code: int
    output: str


def answer_with_card_app(
    request_url: str, card: str, pin_file: Path, service_url: str
) -> CardAppRun:
    """``licence-card sign`` as the candidate runs it (scripted: PIN file, no prompt)."""
    arguments = [
        "sign",
        request_url,
        "--card",
        card,
        "--pin-file",
        str(pin_file),
        "--yes",
        "--service-url",
        service_url,
    ]
    output = io.StringIO()
    with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
        try:
            card_app_main.main(arguments, prog_name="licence-card", standalone_mode=False)
            exit_code = 0
        except SystemExit as stopped:
            exit_code = stopped.code if isinstance(stopped.code, int) else 1
        except click.ClickException as error:
            error.show()
            exit_code = error.exit_code
    return CardAppRun(exit_code, output.getvalue())


def ask(service: Service, state: dict[str, Any], profession: str) -> int:
    """HR's side of the cross-device check: a challenge, its request URL as a QR code,
    and what the candidate and HR run next."""
    hr = state["clients"]["hospital"]
    answer = service.call("POST", "/v1/challenges", hr["token"], {"profession": profession})
    if answer.status != 201:
        print(
            f"no challenge: {answer.status} {answer.body.get('code')}: {answer.body.get('detail')}"
        )
        return 1
    request_url = answer.body["request_uri"]
    doctor = next((c for c in state["cards"] if c["role"] == "doctor"), state["cards"][0])
    print(f"{hr['name']} asks for a check ({profession}). The candidate scans:\n")
    segno.make(request_url, error="m").terminal(compact=True)
    print(f"\n{request_url}\n")
    print("The candidate answers with their card (demo card, PIN " + doctor["pin"] + "):")
    print(
        f"  .venv/bin/licence-card sign {request_url} --card {doctor['path']} "
        f"--service-url {service.base_url}"
    )
    print("HR reads the result:")
    print(
        f"  curl -s {service.base_url}/v1/challenges/{answer.body['challenge_id']} "
        f'-H "Authorization: Bearer {hr["token"]}"'
    )
    return 0


def _times() -> dict[str, int]:
    import time

    now = int(time.time())
    return {"iat": now, "exp": now + 120}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument(
        "--demo-file",
        type=Path,
        default=None,
        help="demo.json of the database (default: the one DATABASE_URL's demo folder holds)",
    )
    parser.add_argument("action", nargs="?", choices=["story", "ask"], default="story")
    parser.add_argument("--profession", default="doctor")
    args = parser.parse_args(argv)
    service = Service(args.url)
    try:
        service.call("GET", "/healthz")
        state_file = args.demo_file or demo_dir(settings_from_env()) / DEMO_FILE
        if not state_file.exists():
            print(f"{state_file} not found: run `make run` first (it seeds the demo).")
            return 2
        state = json.loads(state_file.read_text())
        if args.action == "ask":
            return ask(service, state, args.profession)
        return Story(service, state).run()
    except ServiceUnreachable:
        print(f"no service at {service.base_url}; start it with make run")
        return 2


if __name__ == "__main__":
    sys.exit(main())
