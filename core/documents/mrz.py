"""The TD1 machine-readable zone (ICAO 9303 part 5): 3 lines of 30 characters on the back of
the card. Parsing reads look-alike characters by position (a digit field never holds an
``O``), and every check digit is verified, the composite one included."""

from __future__ import annotations

import difflib
import itertools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date

from saoy.core.ocr.tesseract import undouble_mrz_name

TD1_LINE = 30
_WEIGHTS = (7, 3, 1)
_TO_DIGIT = str.maketrans("OQDIJlLZSBGT", "000111125867")  # a "1" with its foot read "J"
_TO_ALPHA = str.maketrans("0125868", "OIZSBGB")
_FILLER_LOOKALIKES = str.maketrans({"«": "<<", "‹": "<", "(": "<", "{": "<", "[": "<",
                                    "£": "<", "¢": "<", "€": "<", " ": ""})  # fmt: skip
_MRZ_CHARS = re.compile(r"^[A-Z0-9<]+$")


def check_digit(field: str) -> int:
    """ICAO 9303 check digit: weights 7, 3, 1 over digits (value), letters (A=10 … Z=35) and
    fillers (0), modulo 10."""
    total = 0
    for i, ch in enumerate(field):
        if ch.isdigit():
            value = int(ch)
        elif "A" <= ch <= "Z":
            value = ord(ch) - ord("A") + 10
        else:
            value = 0
        total += value * _WEIGHTS[i % 3]
    return total % 10


@dataclass(frozen=True)
class MrzCheck:
    """One check digit: the field it protects, the digit printed, and whether it is right."""

    field: str  # "document_number" | "birth_date" | "expiry_date" | "composite"
    printed: str
    expected: int

    @property
    def ok(self) -> bool:
        return self.printed == str(self.expected)


@dataclass(frozen=True)
class Mrz:
    """A parsed TD1 zone."""

    lines: tuple[str, str, str]
    document_code: str
    issuing_state: str
    document_number: str
    optional_data: str  # on Vietnamese cards: the 12-digit personal identification number
    birth_date: date | None
    sex: str  # "M" | "F" | "<"
    expiry_date: date | None
    nationality: str
    surname: str
    given_names: str
    checks: tuple[MrzCheck, ...]

    @property
    def valid(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def failed(self) -> tuple[str, ...]:
        return tuple(c.field for c in self.checks if not c.ok)

    @property
    def id_number(self) -> str | None:
        """The 12-digit number from the optional data, when it holds one."""
        m = re.match(r"(\d{12})", self.optional_data)
        return m.group(1) if m else None

    @property
    def full_name(self) -> str:
        return f"{self.surname} {self.given_names}".strip()


def _yymmdd(text: str, *, future: bool, today: date | None = None) -> date | None:
    """A YYMMDD date: birth dates lie in the past century window, expiry dates after 2000."""
    if not re.fullmatch(r"\d{6}", text):
        return None
    yy, mm, dd = int(text[:2]), int(text[2:4]), int(text[4:6])
    if future:
        year = 2000 + yy
    else:
        pivot = (today or date.today()).year % 100
        year = (2000 if yy <= pivot else 1900) + yy
    try:
        return date(year, mm, dd)
    except ValueError:
        return None


def normalize_line(raw: str) -> str:
    """One OCR'd MRZ line made of MRZ characters only, fillers' look-alikes read as '<'."""
    text = raw.strip().upper().translate(_FILLER_LOOKALIKES)
    return re.sub(r"[^A-Z0-9<]", "", text)


def _fit(line: str) -> str:
    """Pad a short line with fillers or cut a long one's trailing fillers to 30."""
    if len(line) < TD1_LINE:
        return line + "<" * (TD1_LINE - len(line))
    if len(line) > TD1_LINE:
        excess = line[TD1_LINE:]
        if set(excess) <= {"<"}:
            return line[:TD1_LINE]
        stripped = line.rstrip("<")
        if len(stripped) <= TD1_LINE:
            return stripped.ljust(TD1_LINE, "<")
        return line[:TD1_LINE]
    return line


def _digits(s: str) -> str:
    return s.translate(_TO_DIGIT)


def _alpha(s: str) -> str:
    return s.translate(_TO_ALPHA)


def _line1_by_position(l1: str) -> str:
    """Line 1 of 30 characters with each read by what its position may hold (a look-alike
    read for a digit where only a digit may stand, and the other way round)."""
    l1 = _alpha(l1[:5]) + l1[5:14] + _digits(l1[14:15]) + l1[15:]
    l1 = l1[:1].replace("1", "I") + l1[1:]
    if l1[2:5] == "VNM":
        # A Vietnamese card's document number is the last 9 digits of its 12-digit personal
        # number, which the optional data holds: digits both, whatever ICAO allows elsewhere.
        l1 = l1[:5] + _digits(l1[5:14]) + l1[14] + _digits(l1[15:27]) + l1[27:]
    return l1


def _line2_by_position(l2: str) -> str:
    """Line 2 of 30 characters with each read by what its position may hold; on a Vietnamese
    card, which carries no optional data there, a "K" amid the fillers is a chevron misread
    (it weighs nothing in a check digit, so they cannot tell)."""
    optional = l2[18:29]
    if _alpha(l2[15:18]) == "VNM":
        optional = optional.replace("K", "<")
    return (
        _digits(l2[0:7]) + l2[7:8] + _digits(l2[8:15]) + _alpha(l2[15:18]) + optional
        + _digits(l2[29:30])
    )  # fmt: skip


def find_td1(lines: Sequence[str]) -> tuple[str, str, str] | None:
    """The three MRZ lines among OCR'd text lines: a line that starts like a TD1 line 1 (a
    document code then a 3-letter state, e.g. "IDVNM"), about 30 MRZ characters long, and
    the two lines after it, the next starting with a birth date. The name line may be read
    short: OCR drops runs of the fillers that end it ("LE<<NGOC<YEN<<<")."""
    cleaned = [c for c in (normalize_line(s) for s in lines) if c]
    zone = [k for k, c in enumerate(cleaned) if 24 <= len(c) <= 36 and _MRZ_CHARS.match(c)]
    for i, k in enumerate(zone[:-1]):
        c, after = cleaned[k], cleaned[zone[i + 1]]
        if c.startswith("TDVNM"):
            c = "I" + c[1:]  # the I of an ID card's code read as a T
        starts = re.match(r"^[IAC1][A-Z<][A-Z<]{3}", c) is not None
        born = sum(ch.isdigit() for ch in _digits(after[:7])) >= 6
        if not (starts and born):
            continue
        rest = cleaned[zone[i + 1] + 1 :]
        # A letter of the name read as the digit it looks like ("QU0C") is the letter.
        if rest and _NAME_LINE.fullmatch(rest[0].translate(_TO_ALPHA)):
            return c, after, rest[0].translate(_TO_ALPHA)
        if i + 2 < len(zone):
            return c, after, cleaned[zone[i + 2]]
    return None


def find_line2(lines: Sequence[str]) -> str | None:
    """A TD1 line 2 of exactly the zone's shape among OCR'd text lines, where the zone as a
    whole was not found (its line 1 missed or read into the text above): a reading of the
    birth date, sex and expiry, with their check digits, and nothing else."""
    for raw in lines:
        line = normalize_line(raw)
        if _line2_shaped(line):
            return line
    return None


# A name line read short: a surname, the double filler, a given name, maybe fillers.
_NAME_LINE = re.compile(r"[A-Z]+<<[A-Z<]{2,34}")


_TD1_LINE1 = re.compile(r"[A-Z][A-Z<][A-Z<]{3}[A-Z0-9<]{9}[0-9<][A-Z0-9<]{15}")
_TD1_LINE2 = re.compile(r"\d{7}[MF<](\d{6}|<{6})\d[A-Z<]{3}[A-Z0-9<]{11}\d")  # no expiry: fillers


def _line1_shaped(line: str) -> bool:
    """A TD1 line 1 as read has its shape; a Vietnamese card's also repeats its document
    number as the last 9 digits of the 12-digit personal number that follows it."""
    if not _TD1_LINE1.fullmatch(line):
        return False
    if line[2:5] != "VNM":
        return True
    return bool(re.fullmatch(r"\d{9}\d\d{12}<<<", line[5:])) and line[5:14] == line[18:27]


def _line2_shaped(line: str) -> bool:
    """A TD1 line 2 as read has its shape; a Vietnamese card's holds no optional data (a
    letter amid its fillers is a chevron misread: a "K" weighs nothing in a check digit)."""
    if not _TD1_LINE2.fullmatch(line) or _nationality_shifted(line):
        return False
    return line[15:18] != "VNM" or line[18:29] == "<" * 11


def _nationality_shifted(line: str) -> bool:
    """Line 2 holds "VNM" one place before or after the nationality's: a character read twice
    or lost before it, every field after it read a place off (a "QVN" nationality whose
    check digits may pass by chance)."""
    return line[15:18] != "VNM" and "VNM" in (line[14:17], line[16:19])


def well_formed(lines: Sequence[str]) -> bool:
    """Lines 1 and 2 of a TD1 zone as read have exactly the zone's shape: 30 characters each,
    digits and letters where they belong. A read with a character doubled, dropped or read
    across (a "B" for an "8") is damaged, so its check digits prove nothing either way."""
    if len(lines) != 3:
        return False
    l1, l2 = (normalize_line(s) for s in lines[:2])
    return _line1_shaped(l1) and _line2_shaped(l2)


# Where a digit read as its look-alike letter ("O" for "0") is confirmed by the field's own
# check digit: (line, first, end) of each field and the check that covers it. The document
# code and state are covered by none, a Vietnamese card's personal number repeats the
# document number in its last 9 digits (a line of the zone's shape has them alike), and its
# line 2 holds fillers only where others may hold optional data.
_CHECKED_FIELDS = (
    (0, 5, 15, "document_number"),
    (1, 0, 7, "birth_date"),
    (1, 8, 15, "expiry_date"),
)
_CONFIRMED_SPANS = (
    *_CHECKED_FIELDS,
    (0, 0, 5, ""),
    (0, 18, 27, "document_number"),
    (1, 18, 29, ""),
)


def checked_places(m: Mrz) -> list[tuple[int, int]]:
    """The (line, position) of every character of ``m``'s lines 1 and 2 in a field whose own
    check digit holds, the digit included: the document number, the birth and expiry dates."""
    ok = {c.field for c in m.checks if c.ok}
    return [
        (line, k)
        for line, first, end, check in _CHECKED_FIELDS
        if check in ok
        for k in range(first, end)
    ]


def sound(lines: Sequence[str], m: Mrz) -> bool:
    """Lines 1 and 2 as read give what ``m`` has, undamaged: of the zone's shape as read
    (see :func:`well_formed`), or once each letter read where a digit stands is read as the
    digit it looks like (and a look-alike read twice once, see :func:`_undoubled`), every such
    letter lying in a field whose own check digit holds in ``m``, or once a chevron read as a
    "K" amid a Vietnamese line 2's fillers is read as a filler (see
    :func:`_chevrons_read_as_k`). The check digit confirms which digit the letter was
    ("IDVNMO65…" with its document number's digit right), a "K" weighs nothing in any, and
    the read is as good as undamaged for the other checks."""
    if len(lines) != 3:
        return False
    ok = {"", *(c.field for c in m.checks if c.ok)}

    def confirmed(raw: str, line: int, kind: _ZoneLine) -> bool:
        if len(raw) != TD1_LINE:
            return False
        read = kind.by_position(raw)
        if read != m.lines[line] or not kind.shaped(read):
            return False
        return all(
            any(ln == line and a <= k < b and f in ok for ln, a, b, f in _CONFIRMED_SPANS)
            for k in range(TD1_LINE)
            if raw[k] != read[k]
        )

    def variants(raw: str, line: int, kind: _ZoneLine) -> list[str]:
        found = [raw, *_undoubled(raw, kind)]
        if line == 1 and "VNM" in raw[14:19]:
            found += _chevrons_read_as_k(raw)
        return found

    return all(
        any(confirmed(v, line, kind) for v in variants(raw, line, kind))
        for line, kind in ((0, _LINE1), (1, _LINE2))
        for raw in (normalize_line(lines[line]),)
    )


def _one_inserted(longer: str, shorter: str) -> bool:
    """``longer`` is ``shorter`` with one character inserted."""
    if len(longer) != len(shorter) + 1:
        return False
    return any(longer[:k] + longer[k + 1 :] == shorter for k in range(len(longer)))


def _speck_before(longer: str, shorter: str) -> bool:
    """``longer`` is ``shorter`` with one or two characters before it: a speck left of the
    name row (the card's edge, a mark) read as letters ("BETA<<" for "TA<<")."""
    return 0 < len(longer) - len(shorter) <= 2 and longer.endswith(shorter) and "<<" in shorter


MAX_SWAPS = 6  # places where two reads differ that are tried either way


_SAME_SHAPE = str.maketrans("OQDIBSZ", "0001852")  # characters OCR takes for one another


@dataclass(frozen=True)
class _ZoneLine:
    """What one line of the zone may hold: its shape as read, its characters read by position,
    and where only a digit may stand (on a line of 30)."""

    shaped: Callable[[str], bool]
    by_position: Callable[[str], str]
    digit_places: Callable[[str], Sequence[int]]


def _line1_digits(line: str) -> Sequence[int]:
    # A Vietnamese card's document number and personal number are digits; ICAO's are not.
    return range(5, 27) if line[2:5] == "VNM" else (14,)


def _line2_digits(line: str) -> Sequence[int]:
    return (*range(0, 7), *range(8, 15), 29)


_LINE1 = _ZoneLine(_line1_shaped, _line1_by_position, _line1_digits)
_LINE2 = _ZoneLine(_line2_shaped, _line2_by_position, _line2_digits)


def _undoubled(line: str, kind: _ZoneLine) -> list[str]:
    """A damaged read of a zone line (not shaped) with one or two characters read twice read
    once ("0O" for "0", "00" for "0"), each variant padded back to a line with fillers and
    kept only if it has the line's shape once each character is read by its position (an
    "O" where a digit stands is a "0" read round): OCR doubles a character and then loses
    the line's last one or a filler, or reads a speck past its end. A read of the right shape
    gets no variant, so a wrong check digit there stays wrong; nothing is added but fillers."""
    n = normalize_line(line)
    if kind.shaped(n):
        return []
    shape = n.translate(_SAME_SHAPE)
    # Either character of a pair that looks alike may be the one read twice ("O0": the "O").
    pairs = [k for k in range(1, len(n)) if shape[k] == shape[k - 1] and n[k] != "<"]
    spots = sorted({k for p in pairs for k in (p - 1, p)})
    out = []
    for i, a in enumerate(spots):
        out.append(n[:a] + n[a + 1 :])
        for b in spots[i + 1 :]:
            out.append(n[:a] + n[a + 1 : b] + n[b + 1 :])
    # Still too long once read once: what stands past the line's 30th character is the card's
    # edge or a speck beside it read as a character ("…<9Q"), not the line's.
    padded = (p for v in out for p in _refilled(v[:TD1_LINE]))
    return [v for v in dict.fromkeys(padded) if kind.shaped(kind.by_position(v))]


def _refilled(line: str) -> list[str]:
    """A line read short padded back to 30 with the fillers OCR lost: at its end, or, where it
    ends in a check digit after fillers (line 2), in that run of fillers before the digit."""
    out = [line.ljust(TD1_LINE, "<")]
    if len(line) < TD1_LINE and line[-1:].isdigit() and line[-2:-1] == "<":
        out.append(line[:-1].ljust(TD1_LINE - 1, "<") + line[-1])
    return out


# Letters read where only a digit may stand that look like more than one digit (the tail of a
# "Q" or a "G" is a 9's as much as the round of a 0 or a 6): the check digits choose.
_DIGIT_LOOK_ALIKES = {"Q": "09", "G": "69"}
MAX_LOOK_ALIKES = 3  # such letters on one line that are tried every way


def _look_alike_digits(line: str, kind: _ZoneLine, reads: Sequence[str]) -> list[str]:
    """A read with each letter that stands where a digit must and looks like two digits
    (:data:`_DIGIT_LOOK_ALIKES`) read as either, the usual reading first; none when the read
    has no such letter. Only where no read of the line gave a digit there: a digit read is
    evidence of which one is printed, and the check digits must not overrule it."""
    n = _fit(normalize_line(line))
    others = [_fit(normalize_line(r)) for r in reads]
    places = [
        k
        for k in kind.digit_places(n)
        if n[k] in _DIGIT_LOOK_ALIKES and not any(o[k].isdigit() for o in others)
    ]
    spots = places[:MAX_LOOK_ALIKES]
    if not spots:
        return []
    out = []
    for choice in itertools.product(*(_DIGIT_LOOK_ALIKES[n[k]] for k in spots)):
        chars = list(n)
        for k, digit in zip(spots, choice, strict=True):
            chars[k] = digit
        out.append("".join(chars))
    return out


def _with_hybrids(lines: Sequence[str], kind: _ZoneLine) -> list[str]:
    """The reads of one zone line, and the lines made of the first read with the places
    where another read differs (a character read otherwise, doubled or dropped) taken from
    that read, each read with a doubled character read once (see :func:`_undoubled`), and
    each with a letter that looks like two digits read as either (see
    :func:`_look_alike_digits`): every character comes from a read, so check digits choose
    among readings and never invent one."""
    out = list(dict.fromkeys(lines))
    first = normalize_line(lines[0]) if lines else ""
    for other in lines[1:]:
        second = normalize_line(other)
        matcher = difflib.SequenceMatcher(None, first, second, autojunk=False)
        swaps = [
            (i1, i2, second[j1:j2]) for op, i1, i2, j1, j2 in matcher.get_opcodes() if op != "equal"
        ]
        if len(swaps) > MAX_SWAPS:
            continue  # reads too unlike to be one line read twice
        for mask in range(1, 1 << len(swaps)):
            chars = list(first)
            for k in reversed(range(len(swaps))):  # right to left: earlier places stay put
                if mask >> k & 1:
                    i1, i2, text = swaps[k]
                    chars[i1:i2] = text
            out.append("".join(chars))
    undoubled = [v for line in lines for v in _undoubled(line, kind)]
    out.extend(undoubled)
    for line in [*lines, *undoubled]:
        out.extend(_look_alike_digits(line, kind, lines))
    out.extend(v for line in lines for v in _chevrons_read_as_k(line))
    return list(dict.fromkeys(out))


MAX_FILLER_KS = 3  # "K"s amid a line's fillers that are tried every way


def _chevrons_read_as_k(line: str) -> list[str]:
    """A read with each "K" that stands amid fillers (a "<" before it, a "<" or the line's
    last digit after it) read as a filler or as nothing: in a long run of chevrons the
    recognizer takes one, or two run together, for a "K" ("VNM<<<K<<<<<<<<2"), making the
    line a character too long. None when the read has no such "K"; the check digits
    choose."""
    n = normalize_line(line)
    spots = [
        k
        for k in range(1, len(n) - 1)
        if n[k] == "K" and n[k - 1] == "<" and (n[k + 1] == "<" or k == len(n) - 2)
    ][:MAX_FILLER_KS]
    out = []
    for choice in itertools.product(("K", "<", ""), repeat=len(spots)):
        if all(c == "K" for c in choice):
            continue
        chars = list(n)
        for k, c in zip(spots, choice, strict=True):
            chars[k] = c
        out.append("".join(chars))
    return out


def _single_edits(line: str, kind: _ZoneLine) -> list[str]:
    """A damaged read of a zone line one character too long or too short (not counting the
    fillers that end it) mended by one edit: each character left out, or a digit or a filler
    put in anywhere but at the end (the line's last character is a check digit, and a
    lost last filler is put back by :func:`_fit`), kept if the result has the line's shape
    once read by position. The check digits must then choose (see :func:`_repaired`)."""
    n = normalize_line(line)
    if kind.shaped(n):
        return []
    # A Vietnamese card's line 1 read with its document code and state in place is mended
    # after them (else a shifted header makes a foreign line whose digits pass by chance).
    start = 5 if n[2:5] == "VNM" else 0
    out = []
    if len(n) == TD1_LINE + 1:
        out = [n[:k] + n[k + 1 :] for k in range(start, len(n))]
    elif len(n) == TD1_LINE - 1:
        for k in range(start, len(n)):
            out.extend(n[:k] + c + n[k:] for c in "0123456789<")
    return [v for v in dict.fromkeys(out) if kind.shaped(kind.by_position(v))]


def _repaired(reads: Sequence[tuple[str, ...]], name: str, today: date | None) -> Mrz | None:
    """The zone mended by one character left out of, or put into, one damaged line of a
    read, when exactly one such mending makes all four check digits right (ICAO 9303's
    check digits locate a character read twice or lost); else None."""
    found: dict[tuple[str, str], Mrz] = {}
    for k, (own, other) in enumerate(((_LINE1, _LINE2), (_LINE2, _LINE1))):
        for read in reads:
            edits = _single_edits(read[k], own)
            if not edits:
                continue
            partners = _with_hybrids([r[1 - k] for r in reads], other)
            for edit in edits:
                for partner in partners:
                    pair = (edit, partner) if k == 0 else (partner, edit)
                    parsed = parse_td1((*pair, name), today)
                    if parsed is not None and parsed.valid:
                        found.setdefault((parsed.lines[0], parsed.lines[1]), parsed)
                        if len(found) > 1:
                            return None
    return next(iter(found.values()), None)


def _taken_for(read: str, parsed: str) -> int:
    """How many characters of a read line parsing took for others (look-alikes by position)."""
    return sum(a != b for a, b in zip(_fit(normalize_line(read)), parsed, strict=True))


def _checks_passed(m: Mrz) -> int:
    """How many of ``m``'s check digits pass, the composite not counted on a Vietnamese card's
    line 2 read a place off (:func:`_nationality_shifted`): it passes there by chance."""
    shifted = m.issuing_state == "VNM" and _nationality_shifted(m.lines[1])
    return sum(c.ok for c in m.checks if not (shifted and c.field == "composite"))


def combine_reads(reads: Sequence[Sequence[str]], today: date | None = None) -> Mrz | None:
    """The best zone from several reads of the same MRZ: lines 1 and 2 (which carry the
    check digits) from whichever reads, or characters of them, make the most check digits
    right, the first read's where they tie; the name line
    from the read without an inserted character (OCR tends to double a letter) or a speck
    read before it. Where no
    such zone has every check digit right, a read with a line one character too long or
    short is mended when exactly one edit makes them all right (see :func:`_repaired`)."""
    zones = [tuple(r) for r in reads if len(r) == 3]
    if not zones:
        return None
    best: Mrz | None = None
    best_score = (-1, -1, 0)
    names = [normalize_line(r[2]).rstrip("<") for r in zones]
    name = names[0]
    for other in names[1:]:
        if _one_inserted(name, other) or _speck_before(name, other):
            name = other
    for l1 in _with_hybrids([r[0] for r in zones], _LINE1):
        for l2 in _with_hybrids([r[1] for r in zones], _LINE2):
            parsed = parse_td1((l1, l2, name), today)
            if parsed is None:
                continue
            # Check digits right first; then, of readings they cannot tell apart (a damaged
            # read fails a digit as a mended one does), the lines of the zone's shape, and
            # those with fewer letters taken for digits (a digit read is the better evidence).
            score = (
                _checks_passed(parsed),
                _line1_shaped(parsed.lines[0]) + _line2_shaped(parsed.lines[1]),
                -_taken_for(l1, parsed.lines[0]) - _taken_for(l2, parsed.lines[1]),
            )
            if score > best_score:
                best, best_score = parsed, score
    if best is not None and not best.valid:
        best = _repaired(zones, name, today) or best
    return best


# What each check digit covers, as (line, characters from the line's start up to the end of
# the field and its digit), and the shape those characters have when read undamaged.
_CHECK_SPANS = {
    "document_number": ((0, 15),),
    "birth_date": ((1, 7),),
    "expiry_date": ((1, 15),),
    "composite": ((0, TD1_LINE), (1, TD1_LINE)),
}
_PREFIX_SHAPES = {
    (0, 15): re.compile(r"[A-Z][A-Z<][A-Z<]{3}[A-Z0-9<]{9}[0-9<]"),
    (1, 7): re.compile(r"\d{7}"),
    (1, 15): re.compile(r"\d{7}[MF<](\d{6}|<{6})\d"),
}


def _undamaged_to(read: str, line: int, end: int, m: Mrz) -> bool:
    """The read of zone line ``line`` is undamaged from its start to ``end`` and gives there
    exactly what ``m`` has: of the line's shape (the whole line's, to its end), no look-alike
    read for a digit, no character dropped before it, nor one doubled but a look-alike read
    twice ("0Q" for "0", see :func:`_undoubled`), which is the same reading."""
    n = normalize_line(read)
    kind = _LINE1 if line == 0 else _LINE2
    return any(_gives_to(v, line, end, m) for v in (n, *_undoubled(n, kind)))


def _gives_to(n: str, line: int, end: int, m: Mrz) -> bool:
    if end >= TD1_LINE:
        return (_line1_shaped if line == 0 else _line2_shaped)(n) and n == m.lines[line]
    head = n[:end]
    if head != m.lines[line][:end] or not _PREFIX_SHAPES[(line, end)].fullmatch(head):
        return False
    # A Vietnamese card's document number is digits only (see _line1_shaped).
    return line != 0 or head[2:5] != "VNM" or head[5:15].isdigit()


def proven_failures(reads: Sequence[Sequence[str]], m: Mrz) -> tuple[str, ...]:
    """The check digits ``m`` fails that are wrong on the card itself, not in the reading:
    those whose field and digit at least two reads gave undamaged and alike, as ``m`` has
    them (the composite: both lines whole). Damage after a field says nothing of it: a
    birth date and its digit read alike at the start of line 2 prove a wrong digit there
    though one read doubled a character further on."""
    reads = [tuple(r) for r in reads if len(r) == 3]
    if len(reads) < 2:
        return ()
    return tuple(
        c.field
        for c in m.checks
        if not c.ok
        and all(
            _undamaged_to(r[line], line, end, m)
            for line, end in _CHECK_SPANS[c.field]
            for r in reads
        )
    )


def _vietnamese_name_line(line: str) -> str:
    """A Vietnamese name line without the ``K`` a filler after a name was read as: no
    Vietnamese syllable ends in K (they end in a vowel or in c, ch, m, n, ng, nh, p, t), and a
    chevron's two strokes are read as one often enough. A name of several words read without
    the double filler that ends the surname ("TA<TUYET<QUYEN") has lost a chevron of it: a
    Vietnamese surname is the first word."""
    # Past a run of four fillers the name has ended: letters there are specks of the band.
    parts = re.split(r"(<+)", line.split("<<<<")[0])
    name = "".join(p if p.startswith("<") else p.rstrip("K") for p in parts).rstrip("<")
    if "<<" not in name.replace("<<<", "") and "<<<" in name:
        name = name.replace("<<<", "<<", 1)  # a chevron read twice after the surname
    if "<<" not in name and "<" in name:
        name = name.replace("<", "<<", 1)
    return _fit(name)


def parse_td1(lines: Sequence[str], today: date | None = None) -> Mrz | None:
    """Parse three TD1 lines; None when they cannot be a TD1 zone at all."""
    if len(lines) != 3:
        return None
    l1 = _line1_by_position(_fit(normalize_line(lines[0])))
    l2 = _line2_by_position(_fit(normalize_line(lines[1])))
    l3 = _fit(undouble_mrz_name(normalize_line(lines[2])))
    if not l1 or not l2:
        return None
    l3 = _alpha(l3)
    if l1[2:5] == "VNM":
        l3 = _vietnamese_name_line(l3)
    document_number = l1[5:14]
    optional = l1[15:30]
    sex = l2[7] if l2[7] in ("M", "F") else "<"
    checks = (
        MrzCheck("document_number", l1[14], check_digit(document_number)),
        MrzCheck("birth_date", l2[6], check_digit(l2[0:6])),
        MrzCheck("expiry_date", l2[14], check_digit(l2[8:14])),
        MrzCheck("composite", l2[29], check_digit(l1[5:30] + l2[0:7] + l2[8:15] + l2[18:29])),
    )
    names = l3.split("<<", 1)
    surname = names[0].replace("<", " ").strip()
    given = names[1].replace("<", " ").strip() if len(names) > 1 else ""
    given = " ".join(given.split())
    return Mrz(
        lines=(l1, l2, l3),
        document_code=l1[0:2].replace("<", ""),
        issuing_state=l1[2:5],
        document_number=document_number.replace("<", ""),
        optional_data=optional.replace("<", " ").strip(),
        birth_date=_yymmdd(l2[0:6], future=False, today=today),
        sex=sex,
        expiry_date=_yymmdd(l2[8:14], future=True),
        nationality=l2[15:18],
        surname=surname,
        given_names=given,
        checks=checks,
    )
