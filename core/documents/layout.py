"""Labels and their values on a page, found by geometry rather than by one layout's positions.

A card's labels are matched fuzzily (a misread accent, letter or slash does not break them) in
Vietnamese and English, for every label variant of both editions of the citizen identity card
(Circular 06/2021/TT-BCA, Circular 16/2024/TT-BCA). A value stands right of its label on the
same row, or on the lines below it within the label's column; it ends where the next label or
another column begins, and a long value wraps onto the lines below.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass

from saoy.core.documents.text import Line, fold
from saoy.core.model import Word

# Folded label keys per field, Vietnamese and English: either half of a bilingual label is
# enough. Keys of labels that carry no field of their own ("" ) still end the value above them.
LABELS: dict[str, tuple[str, ...]] = {
    "id_number": ("sono", "sodinhdanhcanhan", "personalidentificationnumber"),
    "full_name": (
        "hovaten", "fullname", "hochudemvatenkhaisinh", "hochudemvaten",
        "surnamemiddlenameandgivenname", "middlenameandgivenname",
    ),
    "date_of_birth": ("ngaysinh", "dateofbirth", "ngaythangnamsinh"),
    "sex": ("gioitinh", "sex"),
    "nationality": ("quoctich", "nationality"),
    "place_of_origin": ("quequan", "placeoforigin"),
    "place_of_residence": ("noithuongtru", "placeofresidence", "noicutru"),
    "place_of_birth": ("noidangkykhaisinh", "placeofbirth"),
    "expiry_date": (
        "cogiatriden", "dateofexpiry", "ngaythangnamhethan", "cogiatri", "expiry", "hethan",
    ),
    "issue_date": ("ngaythangnamcap", "dateofissue", "ngaythangnam", "datemonthyear"),
    "": (
        "dacdiemnhandang", "personalidentification", "ngontrotrai", "ngontrophai",
        "leftindexfinger", "rightindexfinger", "cuctruongcuccanhsat", "quanlyhanhchinh",
        "bocongan", "ministryofpublicsecurity", "cancuoccongdan", "citizenidentitycard",
        "identitycard", "conghoaxahoichunghia", "socialistrepublicofvietnam",
        "doclaptudohanhphuc", "independencefreedomhappiness",
    ),
}  # fmt: skip

_KEYS: tuple[tuple[str, str], ...] = tuple(
    sorted(((f, k) for f, ks in LABELS.items() for k in ks), key=lambda fk: -len(fk[1]))
)
LABEL_TAIL = 7
"""Words after a label's match within which its colon is looked for: the other half of a
bilingual label read too badly to match ("Place of on gin:", a word read as two) is the
label's, not the value's."""
_FUZZY_MIN = 8  # keys shorter than this are matched exactly ("hethan" is in "Chi, Thành")


def _allowed_errors(key: str) -> int:
    return 0 if len(key) < _FUZZY_MIN else 1 + (len(key) - _FUZZY_MIN) // 7


@dataclass(frozen=True)
class Label:
    """A label found on a line: its field ("" for a label of no field), the words it covers
    (``first``..``last`` of ``lines[line]``) and the length of the key it matched."""

    field: str
    line: int
    first: int
    last: int
    strength: int

    def box(self, lines: Sequence[Line]) -> tuple[int, int, int, int]:
        words = lines[self.line].words[self.first : self.last + 1]
        return (
            min(w.left for w in words),
            min(w.top for w in words),
            max(w.right for w in words),
            max(w.bottom for w in words),
        )


def _approximate(key: str, text: str, errors: int) -> tuple[int, int] | None:
    """The (start, end) of the substring of ``text`` closest to ``key`` within ``errors``
    edits (Sellers' algorithm: the match may start anywhere), else None."""
    m = len(key)
    # One column per position of text; rows are key prefixes. start[i] tracks where the
    # alignment ending at (i, j) began.
    prev = list(range(m + 1))
    prev_start = [0] * (m + 1)
    best: tuple[int, int, int] | None = None  # (distance, start, end)
    for j, ch in enumerate(text, 1):
        cur = [0] * (m + 1)
        cur_start = [j] * (m + 1)
        for i in range(1, m + 1):
            sub = prev[i - 1] + (key[i - 1] != ch)
            ins = prev[i] + 1
            dele = cur[i - 1] + 1
            if sub <= ins and sub <= dele:
                cur[i], cur_start[i] = sub, prev_start[i - 1]
            elif dele <= ins:
                cur[i], cur_start[i] = dele, cur_start[i - 1]
            else:
                cur[i], cur_start[i] = ins, prev_start[i]
        if cur[m] <= errors and (best is None or cur[m] < best[0]):
            best = (cur[m], cur_start[m], j)
        prev, prev_start = cur, cur_start
    return None if best is None else (best[1], best[2])


def _bigram_share(key: str, text: str) -> float:
    grams = {key[i : i + 2] for i in range(len(key) - 1)}
    return sum(g in text for g in grams) / max(1, len(grams))


def _line_labels(li: int, line: Line) -> list[Label]:
    """Every label on one line, overlaps resolved in favour of the longer key, the two halves
    of a bilingual label joined, and a trailing colon taken in."""
    folded_words = [fold(w.text) for w in line.words]
    text = "".join(folded_words)
    if not text:
        return []
    owner: list[int] = []  # character -> word index
    for wi, f in enumerate(folded_words):
        owner.extend([wi] * len(f))
    found: list[Label] = []
    taken: set[int] = set()
    # Where each word begins and ends in ``text``.
    starts = {sum(len(f) for f in folded_words[:wi]) for wi in range(len(folded_words))}
    ends = {sum(len(f) for f in folded_words[: wi + 1]) for wi in range(len(folded_words))}
    for field, key in _KEYS:
        errors = _allowed_errors(key)
        pos = text.find(key)
        if not errors:
            # A short key, matched exactly, spans whole words: "hethan" ("hết hạn") is also
            # in a name's "THẾ THÀNH", starting and ending inside its words.
            while pos >= 0 and not (pos in starts and pos + len(key) in ends):
                pos = text.find(key, pos + 1)
        span = (pos, pos + len(key)) if pos >= 0 else None
        if span is None and errors and _bigram_share(key, text) >= 0.6:
            span = _approximate(key, text, errors)
        if span is None or span[1] <= span[0]:
            continue
        first, last = owner[span[0]], owner[span[1] - 1]
        words = set(range(first, last + 1))
        if words & taken:
            continue
        # A key matched inside a longer word is not a label ("sex" in "Essex", "sono" in a
        # name): the match must begin a word, give or take a misread character.
        start_in_word = span[0] - sum(len(f) for f in folded_words[:first])
        if start_in_word > 1:
            continue
        taken |= words
        found.append(Label(field, li, first, last, len(key)))
    found.sort(key=lambda lb: lb.first)
    merged: list[Label] = []
    for lb in found:
        # The two halves of a bilingual label: a slash and maybe a speck between them.
        if merged and merged[-1].field == lb.field and lb.first - merged[-1].last <= 3:
            prev = merged.pop()
            lb = Label(lb.field, li, prev.first, lb.last, prev.strength + lb.strength)
        merged.append(lb)
    out = []
    for k, lb in enumerate(merged):
        stop = merged[k + 1].first if k + 1 < len(merged) else len(line.words)
        last = lb.last
        # The label runs on to its colon, or over a half read too badly to match, when that
        # half ends in a colon within a few words and holds no digit.
        for j in range(lb.last, min(lb.last + LABEL_TAIL, stop)):
            t = line.words[j].text
            if j > lb.last and any(ch.isdigit() for ch in t):
                break
            if t.endswith(":"):
                last = j
                break
        # Separators alone ("/", ":", "-") right after the label belong to it.
        while last + 1 < stop and not folded_words[last + 1]:
            last += 1
        if last == lb.last or not folded_words[last]:
            last = _other_half(lb.field, folded_words, last, stop)
        out.append(Label(lb.field, li, lb.first, last, lb.strength))
    return out


OTHER_HALF = 0.8
"""How alike (0-1) the words after one half of a bilingual label must be to another key of
its field to be its other half, misread ("Quê quán / Place ot onigin)")."""


def _other_half(field: str, folded: Sequence[str], last: int, stop: int) -> int:
    """The last word of the other half of a bilingual label ending at word ``last``: the run
    of up to :data:`LABEL_TAIL` words after it, without digits, most alike one of the field's
    longer keys, when alike enough; else ``last``."""
    keys = [k for k in LABELS.get(field, ()) if len(k) >= _FUZZY_MIN]
    best, end = OTHER_HALF, last
    text = ""
    for j in range(last + 1, min(last + 1 + LABEL_TAIL, stop)):
        if any(ch.isdigit() for ch in folded[j]):
            break
        text += folded[j]
        score = max((difflib.SequenceMatcher(None, text, k).ratio() for k in keys), default=0.0)
        if score >= best:
            best, end = score, j
    return end


def _goes_on(line: Line, right: float, other: Line) -> bool:
    """Whether ``other`` continues ``line``'s row past ``right``: it begins within eight line
    heights right of it and shares half the smaller height with it."""
    h = max(1, line.height)
    if other.left < right - h or other.left - right > 8 * h:
        return False
    overlap = min(other.bottom, line.bottom) - max(other.top, line.top)
    return overlap >= 0.5 * min(h, max(1, other.height))


@dataclass(frozen=True)
class Page:
    """A page's lines and the labels found on them."""

    lines: tuple[Line, ...]
    labels: tuple[Label, ...]

    @classmethod
    def of(cls, lines: Sequence[Line]) -> Page:
        labels: list[Label] = []
        for li, line in enumerate(lines):
            labels.extend(_line_labels(li, line))
        return cls(tuple(lines), tuple(labels))

    def first(self, field: str) -> Label | None:
        return next((lb for lb in self.labels if lb.field == field), None)

    def has(self, field: str) -> bool:
        return self.first(field) is not None

    def _labels_on(self, li: int) -> list[Label]:
        return [lb for lb in self.labels if lb.line == li]

    def _label_words(self, li: int) -> set[int]:
        return {i for lb in self._labels_on(li) for i in range(lb.first, lb.last + 1)}

    def row_value(self, label: Label) -> list[Word]:
        """The words right of ``label`` on its row, up to the next label or column."""
        lines = self.lines
        line = lines[label.line]
        later = [lb.first for lb in self._labels_on(label.line) if lb.first > label.last]
        stop = min(later, default=len(line.words))
        words = list(line.words[label.last + 1 : stop])
        if stop < len(line.words):
            return words
        # The row may go on in lines split off by a wide gap.
        right = line.words[-1].right
        for j, other in enumerate(lines):
            if j == label.line or not _goes_on(line, right, other):
                continue
            starts = [lb.first for lb in self._labels_on(j)]
            cut = min(starts, default=len(other.words))
            words.extend(other.words[:cut])
            if cut < len(other.words):
                break
            right = other.right
        return words

    def _row_goes_on(self, li: int, field: str, left: float) -> bool:
        """Whether line ``li`` is the row of another field's label reaching right of ``left``
        gone on past a wide gap (a value in a larger print than its label is a line of its
        own)."""
        if self._labels_on(li):
            return False
        line = self.lines[li]
        return any(
            lb.field != field
            and lb.line != li
            and self.lines[lb.line].right >= left
            and _goes_on(self.lines[lb.line], self.lines[lb.line].right, line)
            for lb in self.labels
        )

    def column(self, label: Label) -> tuple[float, float]:
        """The x range of ``label``'s column: from a little left of it to the next label that
        begins to its right, beside it (on its row, or starting a little above or below)."""
        left, top, right, bottom = label.box(self.lines)
        h = max(1, bottom - top)
        # Not past the next label of this column below: a label beyond it (on the row after
        # the next) bounds another value.
        under = [
            ot
            for other in self.labels
            if other.line != label.line
            for ol, ot, orr, _ in (other.box(self.lines),)
            if ot > bottom and ol < right and orr > left
        ]
        limit = min(bottom + 2 * h, min(under, default=bottom + 2 * h) - 1)
        return left - 1.2 * h, self._bound(left, top - 0.7 * h, limit, h, label.field)

    def _bound(self, left: float, top: float, bottom: float, h: float, field: str) -> float:
        """The left edge of the nearest label right of ``left`` whose top lies between ``top``
        and ``bottom``, less a margin; infinity when there is none."""
        bound = float("inf")
        for other in self.labels:
            if other.field == field:
                continue
            ol, ot, _, _ = other.box(self.lines)
            if ol > left + 2 * h and top <= ot <= bottom:
                bound = min(bound, ol - 0.3 * h)
        return bound

    def below_value(
        self, label: Label, max_lines: int, start_left: float | None = None
    ) -> list[list[Word]]:
        """The lines of words under ``label`` within its column, top down: at most
        ``max_lines``, ending at the next label, at a wide gap, or where the column ends.
        ``start_left``: where the value began on the label's row, if it did (a wrapped value
        goes on under its own start, not under the label)."""
        lines = self.lines
        col_left, col_right = self.column(label)
        if start_left is not None:
            col_left = min(col_left, start_left - 1.2 * max(1, lines[label.line].height))
        _, top, _, bottom = label.box(lines)
        h = max(1, bottom - top)
        out: list[list[Word]] = []
        prev_bottom = bottom
        # Where each line stands in the column: a speck left of it (a photograph's edge read
        # as a tall word) joined to the line says nothing of its row, and may even sort the
        # line above its label.
        tops = {
            li: min((w.top for w in line.words if w.left >= col_left), default=line.top)
            for li, line in enumerate(lines)
        }
        below = sorted(
            (li for li in tops if li != label.line and tops[li] >= top + h // 2),
            key=lambda li: (tops[li], li),
        )
        for li in below:
            line = lines[li]
            line_top = tops[li]
            if line_top - prev_bottom > 1.6 * h and (out or line_top - bottom > 3.2 * h):
                break
            if self._row_goes_on(li, label.field, col_left):
                break  # the next label's value, on its row
            own = self._label_words(li)
            # Another label on this line's row, right of the column, ends it there too.
            right = min(col_right, self._bound(col_left, line.top - h, line.bottom, h, label.field))
            picked: list[Word] = []
            stopped = False
            for wi, w in enumerate(line.words):
                centre = (w.left + w.right) / 2
                if w.left < col_left or centre > right:
                    continue
                if wi in own:
                    lb = next(x for x in self._labels_on(li) if x.first <= wi <= x.last)
                    if lb.field == label.field or not fold(w.text):
                        # the other half of the same bilingual label, or a separator (the
                        # dash of a label of the column to the left reaching into this one)
                        continue
                    stopped = True
                    break
                picked.append(w)
            if picked:
                out.append(picked)
                prev_bottom = max(w.bottom for w in picked)
            if stopped or len(out) >= max_lines:
                break
        return out
