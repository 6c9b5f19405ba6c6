"""``flask card-authority ...``, ``flask card ...`` and ``flask seed population-csv``."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from card_app.virtual_card import VirtualCard
from core import jws
from core.my_number import check_digit
from seed.card_authority import CardAuthority, parse_serial, serial_hex


def my_number(seed: int) -> str:
    first = f"{seed:011d}"
    return first + str(check_digit(first))


ALICE = my_number(31415926535)
BOB = my_number(27182818284)


@pytest.fixture
def cli(app):
    runner = app.test_cli_runner()

    def invoke(*args: str, ok: bool = True):
        result = runner.invoke(args=list(args), catch_exceptions=False)
        if ok:
            assert result.exit_code == 0, result.output
        return result

    return invoke


def platform_code(app, *, certificate=None, number=None) -> str | None:
    from identity import LICENSING_AGENCY, get_identity_platform

    with app.app_context():
        platform = get_identity_platform()
        if certificate is not None:
            return platform.code_for_certificate(LICENSING_AGENCY, certificate)
        return platform.code_for_my_number(LICENSING_AGENCY, number)


def issue(cli, tmp_path, number=ALICE, name="alice"):
    out = tmp_path / f"{name}.json"
    result = cli(
        "card-authority", "issue", "--my-number", number, "--name", name, "--pin", "1234",
        "--out", str(out),
    )  # fmt: skip
    lines = dict(line.split(": ", 1) for line in result.output.strip().splitlines())
    assert Path(lines["card"]) == out.resolve()
    assert number not in result.output
    return out, parse_serial(lines["serial"]), result


@pytest.fixture
def initialised(cli, app):
    cli("card-authority", "init")
    return CardAuthority.load(Path(app.config["CARD_AUTHORITY_DIR"]))


def test_init_prints_the_default_trust_bundle_and_is_idempotent(cli, app):
    first = cli("card-authority", "init").output.strip()
    assert first == app.config["CARD_TRUST_ANCHORS"]
    root = CardAuthority.load(Path(app.config["CARD_AUTHORITY_DIR"])).root_certificate
    assert cli("card-authority", "init").output.strip() == first
    assert CardAuthority.load(Path(app.config["CARD_AUTHORITY_DIR"])).root_certificate == root


def test_commands_before_init_say_what_to_do(cli, tmp_path):
    result = cli("card-authority", "report-lost", "--serial", "1f", ok=False)
    assert result.exit_code == 1
    assert "card_authority_missing" in result.output
    assert "card-authority init" in result.output
    assert "Traceback" not in result.output


def test_issue_writes_a_card_and_registers_the_person(cli, app, initialised, tmp_path):
    out, serial, result = issue(cli, tmp_path)

    card = VirtualCard.load(out)
    assert card.certificate.serial_number == serial
    assert serial_hex(serial) == result.output.split("serial: ")[1].strip()
    assert card.holder_name == "alice"
    assert "alice" not in card.certificate.subject.rfc4514_string()
    assert card.chain == [initialised.issuing_certificate]
    assert initialised.card(serial).status == "valid"
    code = platform_code(app, certificate=card.certificate)
    assert code is not None and code == platform_code(app, number=ALICE)


def test_issue_rejects_a_bad_my_number_without_echoing_it(cli, initialised, tmp_path):
    bad = ALICE[:-1] + str((int(ALICE[-1]) + 1) % 10)
    result = cli(
        "card-authority", "issue", "--my-number", bad, "--pin", "1234",
        "--out", str(tmp_path / "x.json"), ok=False,
    )  # fmt: skip
    assert result.exit_code == 2
    assert "not a valid My Number" in result.output
    assert bad not in result.output
    assert initialised.cards() == []


def test_issue_never_overwrites_a_card_file(cli, initialised, tmp_path):
    out, _, _ = issue(cli, tmp_path)
    before = out.read_bytes()
    result = cli(
        "card-authority", "issue", "--my-number", BOB, "--pin", "1234", "--out", str(out),
        ok=False,
    )  # fmt: skip
    assert result.exit_code == 1 and "never overwritten" in result.output
    assert out.read_bytes() == before


def test_card_sign_prints_only_the_assertion(cli, app, initialised, tmp_path):
    out, serial, _ = issue(cli, tmp_path)

    token = cli(
        "card", "sign", "--card", str(out), "--pin", "1234", "--nonce", "abc", "--aud", "urn:x"
    ).output
    assert re.fullmatch(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\n", token)
    parsed = jws.parse_compact(token.strip())
    assert parsed.header["typ"] == "card-assertion+jwt"
    assert parsed.payload["aud"] == "urn:x" and parsed.payload["nonce"] == "abc"
    assert parsed.payload["exp"] - parsed.payload["iat"] == 300

    # --aud defaults to this service's audience.
    token = cli("card", "sign", "--card", str(out), "--pin", "1234", "--nonce", "n").output
    assert jws.parse_compact(token.strip()).payload["aud"] == app.config["SERVICE_AUDIENCE"]


def test_card_sign_wrong_pins_then_locked(cli, initialised, tmp_path):
    out, _, _ = issue(cli, tmp_path)
    sign = ("card", "sign", "--card", str(out), "--nonce", "n", "--pin")

    first = cli(*sign, "0000", ok=False)
    assert first.exit_code == 1 and "Wrong PIN: 2 attempts left" in first.output
    assert "1 attempt left" in cli(*sign, "0000", ok=False).output
    locked = cli(*sign, "0000", ok=False)
    assert "locked" in locked.output and "cannot sign" in locked.output
    assert "locked" in cli(*sign, "1234", ok=False).output
    assert "pin: locked" in cli("card", "info", "--card", str(out)).output


def test_lifecycle_commands_and_publish_crl_file(cli, initialised, tmp_path):
    _, lost, _ = issue(cli, tmp_path, ALICE, "alice")
    _, stolen, _ = issue(cli, tmp_path, BOB, "bob")

    assert "on hold" in cli("card-authority", "report-lost", "--serial", serial_hex(lost)).output
    cli("card-authority", "revoke", "--serial", serial_hex(stolen))
    crl_file = tmp_path / "crl.der"
    out = cli("card-authority", "publish-crl", "--no-import", "--out", str(crl_file)).output
    assert out.startswith("CRL #1: 2 entries")
    crl = x509.load_der_x509_crl(crl_file.read_bytes())
    assert crl.is_signature_valid(initialised.issuing_certificate.public_key())
    reasons = {
        entry.serial_number: entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
        for entry in crl
    }
    assert reasons == {
        lost: x509.ReasonFlags.certificate_hold,
        stolen: x509.ReasonFlags.key_compromise,
    }

    cli("card-authority", "resume", "--serial", serial_hex(lost).upper())
    out = cli("card-authority", "publish-crl", "--no-import").output
    assert out.startswith("CRL #2: 1 entry,")

    listing = cli("card-authority", "list").output
    assert f"{serial_hex(lost)}\tvalid" in listing
    assert f"{serial_hex(stolen)}\trevoked\tkeyCompromise" in listing


def test_lifecycle_errors_are_one_clear_line(cli, initialised, tmp_path):
    _, serial, _ = issue(cli, tmp_path)
    result = cli("card-authority", "resume", "--serial", serial_hex(serial), ok=False)
    assert result.exit_code == 1
    assert (
        result.output.strip()
        == "Error: invalid_card_transition: Only a card on hold can be resumed."
    )
    result = cli("card-authority", "revoke", "--serial", "abc123", ok=False)
    assert "unknown_card" in result.output
    result = cli("card-authority", "revoke", "--serial", "not-hex", ok=False)
    assert result.exit_code == 2 and "hexadecimal" in result.output


def test_reissue_keeps_the_person(cli, app, initialised, tmp_path):
    old_path, old_serial, _ = issue(cli, tmp_path)
    cli("card-authority", "report-lost", "--serial", serial_hex(old_serial))

    new_path = tmp_path / "alice-2.json"
    result = cli(
        "card-authority", "reissue", "--serial", serial_hex(old_serial), "--my-number", ALICE,
        "--pin", "5678", "--out", str(new_path),
    )  # fmt: skip
    assert ALICE not in result.output
    new_card = VirtualCard.load(new_path)
    assert f"serial: {serial_hex(new_card.serial)}" in result.output

    old_cert = VirtualCard.load(old_path).certificate
    assert platform_code(app, certificate=new_card.certificate) == platform_code(
        app, certificate=old_cert
    )
    assert initialised.card(old_serial).status == "revoked"
    assert initialised.card(old_serial).reason == x509.ReasonFlags.superseded
    assert initialised.card(new_card.serial).status == "valid"
    new_card.sign_assertion("5678", nonce="n", audience="a")


def test_reissue_for_someone_else_is_refused(cli, app, initialised, tmp_path):
    _, serial, _ = issue(cli, tmp_path, ALICE)
    result = cli(
        "card-authority", "reissue", "--serial", serial_hex(serial), "--my-number", BOB,
        "--pin", "5678", "--out", str(tmp_path / "bob.json"), ok=False,
    )  # fmt: skip
    assert result.exit_code == 1 and "another person" in result.output
    assert BOB not in result.output and ALICE not in result.output
    assert initialised.card(serial).status == "valid"
    assert len(initialised.cards()) == 1


def test_register_a_certificate_from_another_ca(
    cli, app, foreign_card_authority, card_key_pool, tmp_path
):
    cert = foreign_card_authority.issue_card_certificate(card_key_pool.key(0).public_key())
    pem = tmp_path / "other.pem"
    pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))

    result = cli("card-authority", "register", "--cert", str(pem), "--my-number", BOB)

    assert f"registered serial {serial_hex(cert.serial_number)}" in result.output
    assert BOB not in result.output
    assert platform_code(app, certificate=cert) == platform_code(app, number=BOB)


def test_publish_crl_feeds_the_service(cli, app, initialised, tmp_path):
    from verification.models import CardCrl

    _, serial, _ = issue(cli, tmp_path)
    cli("card-authority", "report-lost", "--serial", serial_hex(serial))

    result = cli("card-authority", "publish-crl")

    assert "imported into the service" in result.output
    from core.db import get_session

    with app.app_context():
        stored = get_session().query(CardCrl).one()
        assert int(stored.crl_number) == 1


def test_population_csv(cli, tmp_path):
    out = tmp_path / "bulk.csv"
    result = cli("seed", "population-csv", "--rows", "1200", "--out", str(out), "--seed", "3")
    assert re.match(r"wrote 1,200 rows to .* in [0-9.]+ s \([0-9,]+ rows/s\)", result.output)
    with open(out, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["profession", "my_number", "name", "registration_number", "registered_on"]
    assert len(rows) == 1201
    for row in rows[1:]:  # no My Number leaked into the command's output
        assert row[1] not in result.output
