"""``make demo``: the story of the product, told against the running service.

Uses the demo population that ``seed demo`` wrote (``instance/demo.json``) and talks to
the service over HTTP like any client would. Each step says in plain words what
happens and checks that the service answered as it must; the script exits non-zero
when an answer is wrong.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization

from core import jws
from core.my_number import is_valid_my_number
from seed.card_authority import CardAuthority, generate_card_key
from seed.demo import DEMO_FILE
from seed.virtual_card import VirtualCard, issue_virtual_card

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


class Story:
    def __init__(self, service: Service, state: dict[str, Any]) -> None:
        self.service = service
        self.state = state
        self.audience = state["audience"]
        self.hr = state["clients"]["hospital"]
        self.regulator = state["clients"]["regulator"]
        self.card_feed = state["clients"]["card_authority"]
        self.authority = CardAuthority.load(Path(state["card_authority_dir"]))
        self.failures = 0

    def card(self, role: str) -> tuple[dict[str, Any], VirtualCard]:
        entry = next(c for c in self.state["cards"] if c["role"] == role)
        return entry, VirtualCard.load(Path(entry["path"]))

    def challenge(self, profession: str) -> str:
        answer = self.service.call(
            "POST", "/v1/challenges", self.hr["token"], {"profession": profession}
        )
        if answer.status != 201:
            raise SystemExit(f"could not get a challenge: {answer.status} {answer.body}")
        return answer.body["nonce"]

    def verify(self, assertion: str) -> Answer:
        return self.service.call(
            "POST", "/v1/verifications", self.hr["token"], {"assertion": assertion}
        )

    def expect(self, answer: Answer, want: str, story: str) -> None:
        got = answer.body.get("outcome") or answer.body.get("code")
        mark = "ok " if got == want else "FAIL"
        if got != want:
            self.failures += 1
        print(f"[{mark}] {story}\n       -> {answer.status} {got} (expected {want})")
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

        nonce = self.challenge("doctor")
        assertion = card.sign_assertion(pin, nonce=nonce, audience=self.audience)
        self.expect(
            self.verify(assertion),
            "licensed",
            "1. The doctor signs HR's challenge with their own card (PIN).",
        )

        self.expect(
            self.verify(assertion),
            "invalid_nonce",
            "2. Someone replays that signed assertion: the nonce was used once.",
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
            "3. An impostor presents the doctor's real certificate, signed with their own key.",
        )

        with tempfile.TemporaryDirectory() as folder:
            fake = CardAuthority.init(Path(folder) / "fake-authority")
            fake_card = issue_virtual_card(fake, Path(folder) / "fake-card.json", "0000")
            nonce = self.challenge("doctor")
            self.expect(
                self.verify(fake_card.sign_assertion("0000", nonce=nonce, audience=self.audience)),
                "untrusted_certificate",
                "4. A forger makes a card with a fake authority that copies the real "
                "authority's names.",
            )

        serial = card.certificate.serial_number
        self.authority.report_lost(serial)
        self.publish_crl()
        nonce = self.challenge("doctor")
        self.expect(
            self.verify(card.sign_assertion(pin, nonce=nonce, audience=self.audience)),
            "card_suspended",
            "5. The doctor reports the card lost (24/7 line); a thief who saw the PIN tries it.",
        )

        self.authority.resume(serial)
        self.publish_crl()
        nonce = self.challenge("doctor")
        self.expect(
            self.verify(card.sign_assertion(pin, nonce=nonce, audience=self.audience)),
            "licensed",
            "6. The card is found and the hold lifted: the owner is verified again.",
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
            "7. The regulator suspends the licence; the very next check shows it.",
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
            "8. The regulator reinstates it: licensed again.",
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
        # The thief used the real card: their attempt shows. The impostor's token was never
        # signed by the card, so it is nobody's attempt and stays out of the log.
        ok = (
            log.status == 200
            and {"card_suspended", "licensed", "signed_in"} <= set(outcomes)
            and "invalid_assertion" not in outcomes
        )
        self.failures += 0 if ok else 1
        print(
            f"[{'ok ' if ok else 'FAIL'}] 9. {doctor['name']} signs in with the card and sees "
            "who checked them, including the thief's attempt with the card:"
        )
        for entry in entries[:10]:
            print(f"       {entry['at']}  {entry['verifier']:<14} {entry['outcome']}")


def _times() -> dict[str, int]:
    import time

    now = int(time.time())
    return {"iat": now, "exp": now + 120}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--instance", default=os.environ.get("INSTANCE_PATH", "instance"))
    args = parser.parse_args(argv)
    state_file = Path(args.instance) / DEMO_FILE
    if not state_file.exists():
        print(f"{state_file} not found: run `make run` first (it seeds the demo).")
        return 2
    state = json.loads(state_file.read_text())
    return Story(Service(args.url), state).run()


if __name__ == "__main__":
    sys.exit(main())
