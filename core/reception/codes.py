"""Verification codes of issued copies: unguessable, and easy to read aloud and type back.

A code is 19 data symbols (95 bits from :mod:`secrets`) and one check symbol, written in
Crockford's base32 alphabet (``0-9 A-Z`` without ``I L O U``) as five groups of four::

    7Q2M-K9XD-3FBH-TN0A-4RWC

Codes are drawn at random and never derived from personal data, so a code says nothing about
the citizen or the document and cannot be guessed from either.

The check symbol is Luhn mod N (N = 32) over the same alphabet, not Crockford's own mod-37
check. Crockford's scheme needs five extra symbols (``* ~ $ = U``) for the values 32-36: they
are awkward to type on a phone, easy to confuse when read aloud, and outside the QR code
alphanumeric set, which would force the QR into byte mode. Luhn mod 32 stays within the 32
symbols and catches every single-symbol mistake and every swap of two adjacent symbols except
one: swapping adjacent ``0`` and ``Z`` (values 0 and 31) leaves the check unchanged, the mod-32
counterpart of Luhn's ``09``/``90`` blind spot.

Typed input is forgiving in the way Crockford intends: any case, spaces and dashes anywhere,
``O`` read as ``0`` and ``I``/``L`` read as ``1``.
"""

from __future__ import annotations

import secrets

from saoy.core.errors import InvalidInput

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
"""Crockford's base32 symbols, in value order."""

DATA_SYMBOLS = 19
CODE_SYMBOLS = DATA_SYMBOLS + 1
GROUP = 4
RANDOM_BITS = DATA_SYMBOLS * 5  # 95

_N = len(ALPHABET)
_VALUE = {symbol: value for value, symbol in enumerate(ALPHABET)}
_ALIASES = {"O": "0", "I": "1", "L": "1"}
# Separators people type or paste (from a PDF, a chat message) between groups.
_SEPARATORS = frozenset(" \t\r\n\u00a0-\u2010\u2011\u2012\u2013\u2014\u2212")


def _luhn_sum(values: list[int], double_rightmost: bool) -> int:
    """Luhn mod N: from the right, every other value is doubled and its base-N digits added."""
    total = 0
    double = double_rightmost
    for value in reversed(values):
        if double:
            value *= 2
            value = value // _N + value % _N
        total += value
        double = not double
    return total % _N


def check_symbol(data: str) -> str:
    """The Luhn mod 32 check symbol for ``data`` (canonical symbols, no separators)."""
    values = [_VALUE[s] for s in data]
    return ALPHABET[(_N - _luhn_sum(values, double_rightmost=True)) % _N]


def _check_ok(symbols: str) -> bool:
    return _luhn_sum([_VALUE[s] for s in symbols], double_rightmost=False) == 0


def _group(symbols: str) -> str:
    return "-".join(symbols[i : i + GROUP] for i in range(0, len(symbols), GROUP))


def new_code() -> str:
    """A fresh random code in canonical grouped form."""
    bits = secrets.randbits(RANDOM_BITS)
    data = "".join(ALPHABET[(bits >> (5 * i)) & 0x1F] for i in range(DATA_SYMBOLS))
    return _group(data + check_symbol(data))


def _describe(char: str) -> str:
    if char.isprintable() and not char.isspace():
        return f"'{char}'"
    return f"U+{ord(char):04X}"


def normalize(text: str) -> str:
    """The canonical grouped form of a typed code; raises InvalidInput saying what is wrong."""
    symbols: list[str] = []
    for char in text:
        if char in _SEPARATORS:
            continue
        # Only ASCII is case-folded: str.upper() maps some other letters onto ASCII ones
        # (the dotless 'ı' becomes 'I'), which would let a stray character pass as a symbol.
        upper = char.upper() if char.isascii() else char
        upper = _ALIASES.get(upper, upper)
        if upper not in _VALUE:
            raise InvalidInput(
                f"Mã có ký tự không hợp lệ {_describe(char)} / "
                f"The character {_describe(char)} is not used in verification codes",
                reason="BAD_CODE",
                field="code",
            )
        symbols.append(upper)
        if len(symbols) > CODE_SYMBOLS:
            break
    if len(symbols) != CODE_SYMBOLS:
        raise InvalidInput(
            f"Mã xác minh gồm {CODE_SYMBOLS} ký tự / "
            f"A code has {CODE_SYMBOLS} characters (groups of {GROUP}, dashes optional)",
            reason="BAD_CODE",
            field="code",
        )
    joined = "".join(symbols)
    if not _check_ok(joined):
        raise InvalidInput(
            "Mã bị gõ sai, xin kiểm tra lại / "
            "The code has a typing mistake; please check it against the copy",
            reason="BAD_CODE",
            field="code",
        )
    return _group(joined)


def is_canonical(text: str) -> bool:
    """Whether ``text`` is already a valid code in canonical grouped form."""
    if len(text) != CODE_SYMBOLS + CODE_SYMBOLS // GROUP - 1:
        return False
    try:
        return normalize(text) == text
    except InvalidInput:
        return False


__all__ = [
    "ALPHABET",
    "CODE_SYMBOLS",
    "DATA_SYMBOLS",
    "RANDOM_BITS",
    "check_symbol",
    "is_canonical",
    "new_code",
    "normalize",
]
