"""The shared card fixtures (tests/fixtures/cards.py) do what colleagues rely on."""

from __future__ import annotations

import pytest
from cryptography import x509

from core.my_number import check_digit
from seed.cards import issue_virtual_card


def my_number(seed: int) -> str:
    first = f"{seed:011d}"
    return first + str(check_digit(first))


def test_issue_card_registers_with_the_identity_platform(app, issue_card):
    from identity import LICENSING_AGENCY, get_identity_platform

    number = my_number(12345678901)
    card = issue_card(number)
    unregistered = issue_card()

    with app.app_context():
        platform = get_identity_platform()
        assert platform.code_for_certificate(LICENSING_AGENCY, card.certificate) == (
            platform.code_for_my_number(LICENSING_AGENCY, number)
        )
        assert platform.code_for_certificate(LICENSING_AGENCY, unregistered.certificate) is None
    assert card.my_number == number and unregistered.my_number is None


def test_issued_cards_are_complete_and_distinct(issue_card, card_authority):
    first, second = issue_card(), issue_card(pin="9876")
    assert first.private_key.public_key() == first.certificate.public_key()
    assert first.certificate.public_key() != second.certificate.public_key()
    assert first.serial != second.serial
    assert first.chain == [card_authority.issuing_certificate]
    assert first.card.certificate == first.certificate
    assert first.path.exists() and first.serial_hex == format(first.serial, "x")
    assert second.pin == "9876"
    second.sign(nonce="n", audience="a")


def test_each_test_starts_with_an_empty_authority(card_authority, foreign_card_authority):
    assert card_authority.cards() == []
    number = card_authority.make_crl().extensions.get_extension_for_class(x509.CRLNumber)
    assert number.value.crl_number == 1
    assert foreign_card_authority.root_certificate != card_authority.root_certificate


def test_publish_crl_imports_into_the_service(app, publish_crl, issue_card, card_authority):
    from core.db import get_session
    from verification.models import CardCrl

    card = issue_card()
    card_authority.report_lost(card.serial)
    publish_crl()
    crl = publish_crl()

    assert crl.get_revoked_certificate_by_serial_number(card.serial) is not None
    with app.app_context():
        assert int(get_session().query(CardCrl).one().crl_number) == 2


def test_a_failed_registration_leaves_no_valid_card(card_authority, tmp_path):
    def register(_cert):
        raise RuntimeError("identity platform down")

    with pytest.raises(RuntimeError):
        issue_virtual_card(card_authority, tmp_path / "card.json", "1234", register=register)

    (record,) = card_authority.cards()
    assert record.status == "revoked"
    assert record.reason == x509.ReasonFlags.cessation_of_operation
    assert not (tmp_path / "card.json").exists()
