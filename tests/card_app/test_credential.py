"""``licence-card credential`` and ``present`` against the real service over HTTP; the
presentation verifies with examples/verify_credential.py, as a platform would."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from card_app.cli import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "verify_credential.py"
PLATFORM = "https://locum-agency.example"


@pytest.fixture
def pin_file(tmp_path):
    path = tmp_path / "pin"
    path.write_text("1234\n")
    return path


def _card_app(*args: str):
    return CliRunner().invoke(main, list(args), env={"LANG": "C"})


def _verify_offline(service_url: str, presentation: str, nonce: str, tmp_path: Path, issuer: str):
    (tmp_path / "presentation.txt").write_text(presentation)
    done = subprocess.run(
        [
            sys.executable,
            "-I",
            str(EXAMPLE),
            "--presentation",
            str(tmp_path / "presentation.txt"),
            "--jwks",
            f"{service_url}/.well-known/jwks.json",
            "--nonce",
            nonce,
            "--audience",
            PLATFORM,
            "--issuer",
            issuer,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.returncode, done.stdout, done.stderr


def test_credential_then_presentation_verified_by_the_example(
    live_service, licensed_holder, audience, pin_file, tmp_path
):
    holder = licensed_holder("doctor", name="鈴木 一郎")
    saved = tmp_path / "doctor.sdjwt"
    fetched = _card_app(
        "credential",
        "--profession",
        "doctor",
        "--out",
        str(saved),
        "--card",
        str(holder.card.path),
        "--pin-file",
        str(pin_file),
        "--service-url",
        live_service,
    )
    assert fetched.exit_code == 0, fetched.output
    assert f"Credential (doctor) saved to {saved}" in fetched.output
    assert saved.stat().st_mode & 0o777 == 0o600

    presented = _card_app(
        "present",
        "--credential",
        str(saved),
        "--nonce",
        "platform-nonce-1",
        "--aud",
        PLATFORM,
        "--disclose",
        "name",
        "--card",
        str(holder.card.path),
        "--pin-file",
        str(pin_file),
    )
    assert presented.exit_code == 0, presented.output
    presentation = presented.output.strip()

    status, out, err = _verify_offline(
        live_service, presentation, "platform-nonce-1", tmp_path, audience
    )
    assert status == 0, out + err
    result = json.loads(out)
    assert result["disclosed"] == {"name": "鈴木 一郎"}
    # Another platform's nonce: the example refuses the same presentation.
    status, _, _ = _verify_offline(live_service, presentation, "other-nonce", tmp_path, audience)
    assert status == 1


def test_present_refuses_another_card_and_unknown_claims(
    live_service, licensed_holder, issue_card, pin_file, tmp_path
):
    holder = licensed_holder("doctor")
    saved = tmp_path / "doctor.sdjwt"
    assert (
        _card_app(
            "credential",
            "--profession",
            "doctor",
            "--out",
            str(saved),
            "--card",
            str(holder.card.path),
            "--pin-file",
            str(pin_file),
            "--service-url",
            live_service,
        ).exit_code
        == 0
    )
    common = [
        "present",
        "--credential",
        str(saved),
        "--nonce",
        "n",
        "--aud",
        PLATFORM,
        "--pin-file",
        str(pin_file),
    ]

    other = _card_app(*common, "--disclose", "name", "--card", str(issue_card().path))
    assert other.exit_code == 1
    assert other.output.splitlines()[-1] == "Error: This credential is bound to another card."

    unknown = _card_app(*common, "--disclose", "my_number", "--card", str(holder.card.path))
    assert unknown.exit_code == 1
    assert "cannot disclose my_number; it can disclose:" in unknown.output

    garbage = tmp_path / "garbage"
    garbage.write_text("not~a~credential\x00")
    bad = _card_app(
        "present",
        "--credential",
        str(garbage),
        "--nonce",
        "n",
        "--aud",
        PLATFORM,
        "--disclose",
        "name",
        "--card",
        str(holder.card.path),
    )
    assert bad.exit_code == 1
    assert "not a licence credential" in bad.output


def test_credential_for_an_unregistered_card_shows_the_service_problem(
    live_service, issue_card, publish_crl, pin_file, tmp_path
):
    card = issue_card()
    publish_crl()
    result = _card_app(
        "credential",
        "--profession",
        "doctor",
        "--out",
        str(tmp_path / "c"),
        "--card",
        str(card.path),
        "--pin-file",
        str(pin_file),
        "--service-url",
        live_service,
    )
    assert result.exit_code == 1
    assert result.output.splitlines()[-1].startswith("Refused: unknown_holder (")
    assert not (tmp_path / "c").exists()
