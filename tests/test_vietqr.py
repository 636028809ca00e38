"""VietQR payloads: EMVCo merchant-presented QR with NAPAS's account information and CRC."""

from __future__ import annotations

import binascii

import pytest
from hypothesis import given
from hypothesis import strategies as st

from saoy.core.errors import InvalidInput
from saoy.core.reception.vietqr import (
    NAPAS_GUID,
    Payee,
    crc16_ccitt,
    parse,
    parse_objects,
    payment_payload,
    tlv,
)

PAYEE = Payee(bank_bin="970436", account="0011001234567")


def test_crc_has_the_ccitt_false_check_value() -> None:
    assert crc16_ccitt(b"123456789") == 0x29B1  # the catalogue's check value
    assert crc16_ccitt(b"") == 0xFFFF


@given(st.binary(max_size=300))
def test_crc_agrees_with_the_standard_library(data: bytes) -> None:
    # binascii.crc_hqx is the same polynomial without reflection; 0xFFFF makes it CCITT-FALSE
    assert crc16_ccitt(data) == binascii.crc_hqx(data, 0xFFFF)


def test_a_fee_payload_carries_napas_account_amount_and_dossier_code() -> None:
    payload = payment_payload(PAYEE, 12_000, "000.00.01.H26-261207-0001")
    top = parse(payload)
    assert list(top) == ["00", "01", "38", "53", "54", "58", "62", "63"]
    assert top["00"] == "01" and top["01"] == "12"  # dynamic: the amount is set
    assert top["53"] == "704" and top["54"] == "12000" and top["58"] == "VN"
    account = parse_objects(top["38"])
    assert account["00"] == NAPAS_GUID and account["02"] == "QRIBFTTA"
    assert parse_objects(account["01"]) == {"00": "970436", "01": "0011001234567"}
    assert parse_objects(top["62"]) == {"08": "000.00.01.H26-261207-0001"}
    # the CRC covers everything up to and including its own tag and length
    assert payload[-8:-4] == "6304"
    assert int(payload[-4:], 16) == binascii.crc_hqx(payload[:-4].encode(), 0xFFFF)
    assert payload[-4:] == payload[-4:].upper()


def test_without_an_amount_the_code_is_static() -> None:
    top = parse(payment_payload(PAYEE, None, "LE PHI"))
    assert top["01"] == "11" and "54" not in top


def test_one_changed_character_fails_the_crc() -> None:
    payload = payment_payload(PAYEE, 5_000, "X-1")
    tampered = payload.replace("5000", "9000")
    with pytest.raises(ValueError, match="CRC mismatch"):
        parse(tampered)


def test_lengths_are_two_digits_of_the_value() -> None:
    assert tlv("54", "12000") == "540512000"
    with pytest.raises(ValueError):
        tlv("62", "x" * 100)


@pytest.mark.parametrize(
    ("bank_bin", "account", "field"),
    [
        ("97043", "1", "payee.bank_bin"),
        ("970436", "", "payee.account"),
        ("970436", "12 34", "payee.account"),
    ],
)
def test_a_bad_payee_names_its_field(bank_bin: str, account: str, field: str) -> None:
    with pytest.raises(InvalidInput) as error:
        Payee(bank_bin, account)
    assert error.value.field == field


def test_a_bad_amount_or_purpose_is_refused() -> None:
    with pytest.raises(InvalidInput):
        payment_payload(PAYEE, 0, "X")
    with pytest.raises(InvalidInput):
        payment_payload(PAYEE, 1000, "Lệ phí")  # outside the characters banks keep
