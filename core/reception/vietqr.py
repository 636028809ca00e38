"""VietQR payloads: the fee of a dossier as a bank transfer any Vietnamese banking app can pay.

A VietQR code is an EMVCo merchant-presented QR (EMV QRCPS-MPM) whose merchant account
information (tag 38) is NAPAS's: the NAPAS GUID ``A000000727``, the beneficiary (the bank's
6-digit BIN and the account number) and the service code ``QRIBFTTA`` (a transfer to an
account). Every data object is ``ID (2 digits) + length (2 digits) + value``; the payload ends
with the CRC data object ``6304XXXX``, the CRC-16/CCITT-FALSE (polynomial 0x1021, initial value
0xFFFF, no reflection, no final XOR) of everything before the four hex digits, ``6304``
included, in upper case.

The transfer's message (tag 62, sub-tag 08, purpose of transaction) is the dossier code, so the
bank's notification names the dossier the payment is for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from saoy.core.errors import InvalidInput

NAPAS_GUID: Final = "A000000727"
SERVICE_TO_ACCOUNT: Final = "QRIBFTTA"
CURRENCY_VND: Final = "704"  # ISO 4217 numeric
COUNTRY: Final = "VN"
POINT_STATIC: Final = "11"  # the payer types the amount
POINT_DYNAMIC: Final = "12"  # the amount is in the code, for one payment

_BIN = re.compile(r"\d{6}")
_ACCOUNT = re.compile(r"[0-9A-Za-z]{1,19}")
# EMVCo's "ans" subset a bank's transfer message keeps: letters, digits, space and . - _ /
_PURPOSE = re.compile(r"[0-9A-Za-z .\-_/]{1,25}")


def crc16_ccitt(data: bytes, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE of ``data`` (check value of ``b"123456789"``: 0x29B1)."""
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def tlv(tag: str, value: str) -> str:
    """One data object: tag, two-digit length, value (at most 99 characters)."""
    if not re.fullmatch(r"\d{2}", tag):
        raise ValueError(f"EMVCo tags are two digits, got {tag!r}")
    if len(value) > 99:
        raise ValueError(f"data object {tag} is longer than 99 characters")
    return f"{tag}{len(value):02d}{value}"


def with_crc(body: str) -> str:
    """``body`` followed by its CRC data object."""
    head = body + "6304"
    return head + f"{crc16_ccitt(head.encode('ascii')):04X}"


@dataclass(frozen=True)
class Payee:
    """Where fees are paid: a bank (its NAPAS BIN) and an account there."""

    bank_bin: str
    account: str

    def __post_init__(self) -> None:
        if not _BIN.fullmatch(self.bank_bin):
            raise InvalidInput(
                f"bank BIN {self.bank_bin!r} must be the bank's 6-digit NAPAS BIN",
                field="payee.bank_bin",
            )
        if not _ACCOUNT.fullmatch(self.account):
            raise InvalidInput(
                "the account number must be 1-19 letters or digits", field="payee.account"
            )


def payment_payload(payee: Payee, amount_vnd: int | None, purpose: str) -> str:
    """The VietQR payload of a transfer to ``payee``: of ``amount_vnd`` (a dynamic code, for one
    payment) or of an amount the payer types (``None``: a static code), with ``purpose`` as the
    transfer's message."""
    if amount_vnd is not None and not 0 < amount_vnd <= 9_999_999_999_999:
        raise InvalidInput("the amount must be a positive number of dong", field="amount_vnd")
    if not _PURPOSE.fullmatch(purpose):
        raise InvalidInput(
            "the purpose must be 1-25 characters of letters, digits, space and . - _ /",
            field="purpose",
        )
    beneficiary = tlv("00", payee.bank_bin) + tlv("01", payee.account)
    account_info = tlv("00", NAPAS_GUID) + tlv("01", beneficiary) + tlv("02", SERVICE_TO_ACCOUNT)
    body = (
        tlv("00", "01")
        + tlv("01", POINT_STATIC if amount_vnd is None else POINT_DYNAMIC)
        + tlv("38", account_info)
        + tlv("53", CURRENCY_VND)
        + (tlv("54", str(amount_vnd)) if amount_vnd is not None else "")
        + tlv("58", COUNTRY)
        + tlv("62", tlv("08", purpose))
    )
    return with_crc(body)


def parse(payload: str) -> dict[str, str]:
    """The top-level data objects of an EMVCo payload by tag, after checking its structure and
    CRC; ValueError names what is wrong."""
    if not payload.startswith("000201"):
        raise ValueError("an EMVCo payload starts with the payload format indicator 000201")
    if len(payload) < 8 or payload[-8:-4] != "6304":
        raise ValueError("the payload does not end with its CRC data object (6304XXXX)")
    expected = f"{crc16_ccitt(payload[:-4].encode('ascii')):04X}"
    if payload[-4:].upper() != expected:
        raise ValueError(
            f"CRC mismatch: the payload says {payload[-4:]}, its bytes give {expected}"
        )
    return parse_objects(payload)


def parse_objects(text: str) -> dict[str, str]:
    """Data objects (tag → value) of a TLV string, in order; ValueError when it does not split
    exactly into objects."""
    objects: dict[str, str] = {}
    i = 0
    while i < len(text):
        tag, length = text[i : i + 2], text[i + 2 : i + 4]
        if not (re.fullmatch(r"\d{2}", tag) and re.fullmatch(r"\d{2}", length)):
            raise ValueError(f"malformed data object at offset {i}")
        end = i + 4 + int(length)
        if end > len(text):
            raise ValueError(f"data object {tag} runs past the end of the payload")
        if tag in objects:
            raise ValueError(f"data object {tag} appears twice")
        objects[tag] = text[i + 4 : end]
        i = end
    return objects


__all__ = [
    "NAPAS_GUID",
    "SERVICE_TO_ACCOUNT",
    "Payee",
    "crc16_ccitt",
    "parse",
    "parse_objects",
    "payment_payload",
    "tlv",
    "with_crc",
]
