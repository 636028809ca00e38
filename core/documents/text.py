"""Text helpers shared by the document readers: folding, lines from word boxes, dates."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from saoy.core.model import Word

_DIGIT_LOOKALIKES = str.maketrans({"O": "0", "o": "0", "D": "0", "Q": "0", "I": "1", "l": "1",
                                   "|": "1", "i": "1", "S": "5", "s": "5", "B": "8", "Z": "2",
                                   "z": "2", "G": "6", "g": "9", "T": "7"})  # fmt: skip


def fold(text: str) -> str:
    """Lower-case ASCII letters and digits only: "Họ và tên / Full name:" → "hovatenfullname".
    Labels are matched on this form so a misread accent or slash does not break them."""
    text = text.replace("Đ", "D").replace("đ", "d")
    decomposed = unicodedata.normalize("NFD", text)
    return "".join(ch for ch in decomposed.lower() if ch.isascii() and ch.isalnum())


def ascii_upper(text: str) -> str:
    """Upper-case ASCII with single spaces, as a name is written in an MRZ."""
    text = text.replace("Đ", "D").replace("đ", "d")
    stripped = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return " ".join(re.sub(r"[^A-Za-z ]", " ", stripped).upper().split())


def digits_of(token: str) -> str:
    """``token`` with look-alike letters read as digits (O→0, I→1, ...), then digits only,
    when it is mostly digits already; else ""."""
    core = re.sub(r"[^0-9A-Za-z|]", "", token)
    if not core or sum(ch.isdigit() for ch in core) < 0.7 * len(core):
        return ""
    return re.sub(r"\D", "", core.translate(_DIGIT_LOOKALIKES))


@dataclass(frozen=True)
class Line:
    """Words that sit on one text line, left to right."""

    words: tuple[Word, ...]

    @property
    def text(self) -> str:
        return " ".join(w.text for w in self.words)

    @property
    def folded(self) -> str:
        return fold(self.text)

    @property
    def top(self) -> int:
        return min(w.top for w in self.words)

    @property
    def bottom(self) -> int:
        return max(w.bottom for w in self.words)

    @property
    def left(self) -> int:
        return min(w.left for w in self.words)

    @property
    def right(self) -> int:
        return max(w.right for w in self.words)

    @property
    def height(self) -> int:
        return self.bottom - self.top

    @property
    def confidence(self) -> float:
        """The lowest word confidence, 0-1."""
        return min(w.confidence for w in self.words) / 100.0


LINE_HEIGHT_RATIO = 2.5  # words of one line differ in height by at most this much
SURE_WORD = 80.0  # the confidence of a word read surely
FULL_OVERLAP = 0.8  # a word overlapping a row's last word this much lies on that row


def _beside(a: Word, b: Word) -> bool:
    """Whether ``b`` follows ``a`` within the smaller one's height, the taller one read surely
    and centred on the shorter's row: a word whose box took in a mark of the background is
    still its row's word, where a tall speck (a photograph's edge, read unsurely) is not."""
    short, tall = sorted((a, b), key=lambda w: w.bottom - w.top)
    centre = (tall.top + tall.bottom) / 2
    near = b.left - a.right <= max(1, short.bottom - short.top)
    return near and tall.confidence >= SURE_WORD and short.top <= centre <= short.bottom


def group_lines(words: Iterable[Word], gap: float = 1.8) -> list[Line]:
    """Group words into lines: a word joins a line whose last word it overlaps vertically
    by half the smaller height, follows closely (a horizontal gap under ``gap`` line heights)
    and is not far taller or shorter than, unless right beside it (a label and its larger
    value are one line; a tall speck from a photograph's edge does not join three rows into
    one). Of several such lines it joins one it lies fully on, and of those the one it
    follows most closely: on a tilted capture a word overlaps the row above it too, and a
    speck left of the text (a photograph's edge) reaches over two rows. Columns stay
    apart."""
    every: list[list[Word]] = []  # in the order they were begun
    open_lines: list[list[Word]] = []
    reach = gap * LINE_HEIGHT_RATIO  # line heights past a line's end no word can join it
    for w in sorted(words, key=lambda w: (w.left, w.top)):
        h = _height(w)
        best, best_key = None, (0.0, 0.0, 0.0)
        if len(open_lines) > 16:
            # Words come left to right: a line ended further back than any word may follow
            # (a word far taller joins only right beside it) takes no more.
            open_lines = [
                ln for ln in open_lines if w.left - ln[-1].right <= reach * _height(ln[-1])
            ]
        for line in open_lines:
            last = line[-1]
            if last.bottom <= w.top or last.top >= w.bottom:
                continue  # no overlap at all
            last_h = _height(last)
            if max(h, last_h) > LINE_HEIGHT_RATIO * min(h, last_h) and not _beside(last, w):
                continue
            overlap = (min(last.bottom, w.bottom) - max(last.top, w.top)) / min(h, last_h)
            room = gap * max(h, last_h)
            step = max(0, w.left - last.right)
            if overlap <= 0.5 or step > room:
                continue
            # A row it lies fully on first, then the nearest (in steps of a quarter line
            # height), then the most overlapped.
            near = -float(step // max(1, 0.25 * min(h, last_h)))
            key = (float(overlap >= FULL_OVERLAP), near, overlap)
            if best is None or key > best_key:
                best, best_key = line, key
        if best is None:
            open_lines.append([w])
            every.append(open_lines[-1])
        else:
            best.append(w)
    lines = [Line(tuple(ws)) for ws in every]
    lines.sort(key=lambda ln: (ln.top, ln.left))
    return lines


def _height(w: Word) -> int:
    return max(1, w.bottom - w.top)


_DATE = re.compile(r"(\d{1,2})\s*[/.\-]\s*(\d{1,2})\s*[/.\-]\s*(\d{4})")


def find_date(text: str) -> tuple[date, str] | None:
    """The first dd/mm/yyyy date in ``text`` (look-alike letters read as digits), with the
    exact string it was read from."""
    found = _first_date(text)
    return None if found is None else (found[0], found[1])


def short_date(text: str) -> bool:
    """Whether the first date in ``text`` was read with a one-digit day or month: on a
    document that prints both with two digits (an ID card), a digit was lost."""
    found = _first_date(text)
    return found is not None and found[2]


def _first_date(text: str) -> tuple[date, str, bool] | None:
    fixed = " ".join(_fix_date_token(t) if digits_of(t) else t for t in text.split())
    for m in _DATE.finditer(fixed):
        day, month, year = (int(g) for g in m.groups())
        try:
            found = date(year, month, day)
        except ValueError:
            continue
        return found, f"{day:02d}/{month:02d}/{year:04d}", min(len(m[1]), len(m[2])) < 2
    return None


def _fix_date_token(token: str) -> str:
    return "".join(ch.translate(_DIGIT_LOOKALIKES) if ch.isalpha() or ch == "|" else ch
                   for ch in token)  # fmt: skip


def after_label(line: Line, keys: Sequence[str]) -> tuple[Word, ...] | None:
    """The words after the first label in ``line`` matching one of ``keys`` (folded), the
    label ending at its colon when it has one; None when no key is in the line."""
    running = ""
    end = None
    for i, w in enumerate(line.words):
        running += fold(w.text)
        if any(k in running for k in keys):
            end = i
            break
    if end is None:
        return None
    for j in range(end, min(end + 6, len(line.words))):
        if line.words[j].text.endswith(":"):
            return line.words[j + 1 :]
    # No colon read: the label runs on to the last word that completes one of its keys (the
    # English half after the Vietnamese one), with the marks read in place of the colon.
    for j in range(end + 1, min(end + 6, len(line.words))):
        running += fold(line.words[j].text)
        if any(running.endswith(k) for k in keys):
            end = j
    return line.words[end + 1 :]


def words_text(words: Sequence[Word]) -> str:
    return " ".join(w.text for w in words)


def words_confidence(words: Sequence[Word]) -> float:
    """The lowest confidence among ``words``, 0-1; 0 when there are none."""
    return min((w.confidence for w in words), default=0.0) / 100.0


def below(lines: Sequence[Line], i: int) -> list[Line]:
    """The lines under ``lines[i]`` in its column (overlapping it horizontally), top down."""
    ref = lines[i]
    return [
        ln
        for ln in lines[i + 1 :]
        if ln.top >= ref.top + ref.height // 2 and min(ln.right, ref.right) > max(ln.left, ref.left)
    ]


def right_of(lines: Sequence[Line], i: int, reach: float = 8.0) -> list[Line]:
    """Lines on the same row as ``lines[i]``, to its right within ``reach`` line heights."""
    ref = lines[i]
    h = max(1, ref.height)
    out = []
    for j, ln in enumerate(lines):
        if j == i or ln.left < ref.right - h or ln.left - ref.right > reach * h:
            continue
        overlap = min(ln.bottom, ref.bottom) - max(ln.top, ref.top)
        if overlap >= 0.5 * min(h, max(1, ln.height)):
            out.append(ln)
    return sorted(out, key=lambda ln: ln.left)
