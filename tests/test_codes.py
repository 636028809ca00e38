"""Verification codes: format, forgiving input, error detection, randomness."""

from __future__ import annotations

import re
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from saoy.core.errors import InvalidInput
from saoy.core.reception import codes

CANONICAL = re.compile(r"^[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){4}$")


def _symbols(code: str) -> str:
    return code.replace("-", "")


def _grouped(symbols: str) -> str:
    return "-".join(symbols[i : i + 4] for i in range(0, 20, 4))


def _valid(symbols: str) -> bool:
    try:
        codes.normalize(symbols)
    except InvalidInput:
        return False
    return True


def test_alphabet_is_crockford_base32():
    assert len(codes.ALPHABET) == 32
    assert set(codes.ALPHABET) == set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ") - set("ILOU")
    assert codes.RANDOM_BITS == 95


def test_new_code_is_canonical_and_round_trips():
    for _ in range(200):
        code = codes.new_code()
        assert CANONICAL.match(code), code
        assert codes.normalize(code) == code
        assert codes.is_canonical(code)


def test_typed_variants_normalize_to_the_canonical_form():
    code = codes.new_code()
    compact = _symbols(code)
    variants = [
        code.lower(),
        compact,
        compact.lower(),
        " ".join(compact),
        f"  {code}  ",
        code.replace("-", " - "),
        "-".join(compact),
        code.replace("-", "\u2013"),  # an en dash, as pasted from a document
    ]
    for variant in variants:
        assert codes.normalize(variant) == code, variant


def test_confusable_letters_are_read_as_digits():
    data = "0101" + "1" * 15
    code = _grouped(data + codes.check_symbol(data))
    typed = code.replace("0", "O", 1).replace("1", "I", 1).replace("1", "l", 1).lower()
    assert typed != code.lower()
    assert codes.normalize(typed) == code
    assert not codes.is_canonical(typed)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "20 characters"),
        ("ABCD-EFGH", "20 characters"),
        ("0" * 21, "20 characters"),
        ("ABCD-EFGH-JKMN-PQRS-TVWU", "'U'"),
        ("ABCD-EFGH-JKMN-PQRS-TVW*", "'*'"),
        ("ABCD-EFGH-JKMN-PQRS-TVWı", "'ı'"),  # dotless i: not folded onto 'I'
        ("ABCD_EFGH-JKMN-PQRS-TVWX", "'_'"),
    ],
)
def test_malformed_codes_are_rejected_with_a_clear_message(text, message):
    with pytest.raises(InvalidInput) as caught:
        codes.normalize(text)
    assert caught.value.field == "code"
    assert message in caught.value.message


def test_a_wrong_check_symbol_is_a_typing_mistake():
    code = _symbols(codes.new_code())
    wrong = code[:-1] + next(s for s in codes.ALPHABET if s != code[-1])
    with pytest.raises(InvalidInput, match="typing mistake") as caught:
        codes.normalize(wrong)
    assert caught.value.field == "code"
    assert caught.value.status == "INVALID_ARGUMENT"


@pytest.mark.parametrize("seed", range(5))
def test_every_single_symbol_substitution_is_detected(seed):
    code = _symbols(codes.new_code()) if seed else "0" * 19 + codes.check_symbol("0" * 19)
    assert _valid(code)
    for position in range(codes.CODE_SYMBOLS):
        for symbol in codes.ALPHABET:
            if symbol == code[position]:
                continue
            typo = code[:position] + symbol + code[position + 1 :]
            assert not _valid(typo), (code, position, symbol)


def _code_with_pair(a: str, b: str, position: int) -> str:
    """A valid code (as symbols) with ``a`` and ``b`` at ``position`` and ``position + 1``."""
    if position + 1 < codes.DATA_SYMBOLS:
        data = "0" * position + a + b + "0" * (codes.DATA_SYMBOLS - position - 2)
        return data + codes.check_symbol(data)
    # The pair straddles the check symbol: pick the symbol before `a` so the check comes out `b`.
    for c in codes.ALPHABET:
        data = "0" * (codes.DATA_SYMBOLS - 2) + c + a
        if codes.check_symbol(data) == b:
            return data + b
    raise AssertionError("no data gives that check symbol")


def _undetected_transpositions() -> set[frozenset[str]]:
    """Pairs of distinct symbols whose adjacent swap goes unnoticed, found by trying every
    ordered pair at every position."""
    blind: set[frozenset[str]] = set()
    for a in codes.ALPHABET:
        for b in codes.ALPHABET:
            if a == b:
                continue
            for position in range(codes.CODE_SYMBOLS - 1):
                code = _code_with_pair(a, b, position)
                assert code[position : position + 2] == a + b
                swapped = code[:position] + b + a + code[position + 2 :]
                if _valid(swapped):
                    blind.add(frozenset((a, b)))
    return blind


def test_adjacent_transpositions_are_detected_except_0_and_z():
    # Luhn mod N misses a swap of adjacent values a, b exactly when
    # double(a) - a == double(b) - b (mod N); for N = 32 that is only {0, 31} = {"0", "Z"}.
    assert _undetected_transpositions() == {frozenset(("0", "Z"))}


@given(st.data())
def test_random_adjacent_swaps_are_detected(data):
    code = _symbols(codes.new_code())
    position = data.draw(st.integers(0, codes.CODE_SYMBOLS - 2))
    a, b = code[position], code[position + 1]
    swapped = code[:position] + b + a + code[position + 2 :]
    if a == b or {a, b} == {"0", "Z"}:
        assert _valid(swapped)
    else:
        assert not _valid(swapped)


def test_codes_do_not_repeat():
    drawn = {codes.new_code() for _ in range(10_000)}
    assert len(drawn) == 10_000


def test_symbols_are_uniform():
    # 10,000 codes x 19 data symbols = 190,000 draws over 32 symbols (5,937.5 expected each).
    # Chi-square with 31 degrees of freedom: mean 31, sd ~7.9. The bound 100 is ~8.8 sd out:
    # a fair source fails it with probability below 1e-9, while one stuck bit would score
    # in the tens of thousands.
    counts: Counter[str] = Counter()
    per_position: list[Counter[str]] = [Counter() for _ in range(codes.DATA_SYMBOLS)]
    for _ in range(10_000):
        data = _symbols(codes.new_code())[: codes.DATA_SYMBOLS]
        counts.update(data)
        for position, symbol in enumerate(data):
            per_position[position][symbol] += 1
    expected = sum(counts.values()) / 32
    chi2 = sum((counts[s] - expected) ** 2 / expected for s in codes.ALPHABET)
    assert chi2 < 100, chi2
    # Every position uses the whole alphabet (10,000 draws, 32 symbols: a symbol missing at a
    # position by chance has probability ~32 * (31/32)**10000, i.e. never).
    for position, seen in enumerate(per_position):
        assert set(seen) == set(codes.ALPHABET), position
