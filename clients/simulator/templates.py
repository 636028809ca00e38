"""Documents drawn from the official templates, with their ground truth.

The cards follow the printed templates of the 2021 chip citizen identity card (Circular
06/2021/TT-BCA) and of the 2024 identity card (Circular 16/2024/TT-BCA): the same labels in the
same places, within a few millimetres, and with the freedom that real cards show (a value right
of its label or on the line below, the residence wrapping where it wraps, several fonts).
A4 pages are a letter-like administrative document and a school transcript with a ruled table.

Everything is drawn at the document's own resolution (``dpi``) in millimetre coordinates, and
every text line drawn is recorded with its box in pixels, for scoring OCR. Capture (scanner,
camera) is :mod:`saoy.clients.simulator.capture`'s business.

Fonts come from Debian packages (see :data:`FONT_FAMILIES`); a missing file raises
:class:`MissingFont` naming the package to install.
"""

from __future__ import annotations

import math
import random
import unicodedata
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path

import numpy as np
import qrcode
from PIL import Image, ImageDraw, ImageFont

CARD_MM = (85.6, 53.98)
A4_MM = (210.0, 297.0)
NO_EXPIRY = "Không thời hạn"
EDITIONS = ("2021", "2024")

# --------------------------------------------------------------------------- fonts

_TT = "/usr/share/fonts/truetype"


@dataclass(frozen=True)
class FontFamily:
    name: str
    package: str  # the Debian package that ships it
    regular: str
    bold: str
    italic: str


FONT_FAMILIES: tuple[FontFamily, ...] = (
    FontFamily(
        "DejaVu Sans",
        "fonts-dejavu-core",
        f"{_TT}/dejavu/DejaVuSans.ttf",
        f"{_TT}/dejavu/DejaVuSans-Bold.ttf",
        f"{_TT}/dejavu/DejaVuSans-Oblique.ttf",
    ),
    FontFamily(
        "DejaVu Serif",
        "fonts-dejavu-core",
        f"{_TT}/dejavu/DejaVuSerif.ttf",
        f"{_TT}/dejavu/DejaVuSerif-Bold.ttf",
        f"{_TT}/dejavu/DejaVuSerif.ttf",
    ),
    FontFamily(
        "Liberation Sans",
        "fonts-liberation2",
        f"{_TT}/liberation2/LiberationSans-Regular.ttf",
        f"{_TT}/liberation2/LiberationSans-Bold.ttf",
        f"{_TT}/liberation2/LiberationSans-Italic.ttf",
    ),
    FontFamily(
        "Liberation Serif",
        "fonts-liberation2",
        f"{_TT}/liberation2/LiberationSerif-Regular.ttf",
        f"{_TT}/liberation2/LiberationSerif-Bold.ttf",
        f"{_TT}/liberation2/LiberationSerif-Italic.ttf",
    ),
    FontFamily(
        "FreeSans",
        "fonts-freefont-ttf",
        f"{_TT}/freefont/FreeSans.ttf",
        f"{_TT}/freefont/FreeSansBold.ttf",
        f"{_TT}/freefont/FreeSansOblique.ttf",
    ),
    FontFamily(
        "FreeSerif",
        "fonts-freefont-ttf",
        f"{_TT}/freefont/FreeSerif.ttf",
        f"{_TT}/freefont/FreeSerifBold.ttf",
        f"{_TT}/freefont/FreeSerifItalic.ttf",
    ),
    FontFamily(
        "Roboto",
        "fonts-roboto-unhinted",
        f"{_TT}/roboto/unhinted/RobotoTTF/Roboto-Regular.ttf",
        f"{_TT}/roboto/unhinted/RobotoTTF/Roboto-Bold.ttf",
        f"{_TT}/roboto/unhinted/RobotoTTF/Roboto-Italic.ttf",
    ),
    FontFamily(
        "Roboto Condensed",
        "fonts-roboto-unhinted",
        f"{_TT}/roboto/unhinted/RobotoCondensed-Regular.ttf",
        f"{_TT}/roboto/unhinted/RobotoCondensed-Bold.ttf",
        f"{_TT}/roboto/unhinted/RobotoCondensed-Italic.ttf",
    ),
)

# The machine-readable zone's own face (ICAO 9303 prints it in OCR-B), on half the cards,
# and other monospaced faces on the rest: a zone printed or reproduced otherwise.
OCR_B: tuple[str, str] = ("/usr/share/fonts/opentype/ocr-b/OCRB.otf", "fonts-ocr-b")
MRZ_FONTS: tuple[tuple[str, str], ...] = (
    (f"{_TT}/dejavu/DejaVuSansMono.ttf", "fonts-dejavu-core"),
    (f"{_TT}/liberation2/LiberationMono-Regular.ttf", "fonts-liberation2"),
    (f"{_TT}/freefont/FreeMonoBold.ttf", "fonts-freefont-ttf"),
)

FONT_PACKAGES: tuple[str, ...] = tuple(
    sorted({f.package for f in FONT_FAMILIES} | {p for _, p in (*MRZ_FONTS, OCR_B)})
)


class MissingFont(RuntimeError):
    """A font file the generator draws with is not installed."""


def _package_of(path: str) -> str:
    for fam in FONT_FAMILIES:
        if path in (fam.regular, fam.bold, fam.italic):
            return fam.package
    for p, pkg in (*MRZ_FONTS, OCR_B):
        if p == path:
            return pkg
    return "a font package"


@lru_cache(maxsize=512)
def load_font(path: str, size_px: int) -> ImageFont.FreeTypeFont:
    """The TrueType font at ``path`` in ``size_px`` pixels; :class:`MissingFont` if absent."""
    if not Path(path).is_file():
        pkg = _package_of(path)
        raise MissingFont(
            f"font file {path} is missing: install the Debian package {pkg} (apt-get install {pkg})"
        )
    return ImageFont.truetype(path, max(6, size_px))


def check_fonts() -> None:
    """Every font file the generator may use is installed, else :class:`MissingFont`."""
    for fam in FONT_FAMILIES:
        for path in (fam.regular, fam.bold, fam.italic):
            load_font(path, 12)
    for path, _ in (*MRZ_FONTS, OCR_B):
        load_font(path, 12)


# --------------------------------------------------------------------------- truth records


@dataclass(frozen=True)
class Line:
    """One text run as drawn: its text, its box (left, top, right, bottom) in pixels and its
    role ("label", "value", "header", "body", "table", "mrz", ...)."""

    text: str
    box: tuple[int, int, int, int]
    role: str = ""


@dataclass
class Document:
    """A rendered page and what is true of it."""

    image: Image.Image  # RGB
    kind: str  # "cccd_front" | "cccd_back" | "generic"
    edition: str  # "2021" | "2024" | "a4"
    layout: str  # "card" | "letter" | "table"
    dpi: int
    fields: dict[str, str] = field(default_factory=dict)
    lines: list[Line] = field(default_factory=list)
    defect: str = ""  # e.g. "mrz_check", "confidential"


@dataclass(frozen=True)
class Person:
    full_name: str  # as written, with diacritics, in title case
    sex: str  # "Nam" | "Nữ"
    date_of_birth: date
    id_number: str
    old_number: str  # the 9-digit number of an older card, or ""
    place_of_origin: str
    place_of_residence: str
    place_of_birth: str
    issue_date: date
    expiry_date: date | None  # None: no expiry
    nationality: str = "Việt Nam"


def dmy(d: date | None) -> str:
    return NO_EXPIRY if d is None else d.strftime("%d/%m/%Y")


# --------------------------------------------------------------------------- persons

FAMILY_NAMES = (
    "Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi", "Đỗ",
    "Hồ", "Ngô", "Dương", "Lý", "Đinh", "Trịnh", "Mai", "Lương", "Tạ", "Cao", "Kiều", "Quách",
)  # fmt: skip
MIDDLE_MALE = (
    "Văn", "Đức", "Minh", "Quốc", "Hữu", "Công", "Thành", "Xuân", "Đình", "Trọng", "Quang",
    "Tuấn", "Mạnh", "Thế", "Bá",
)  # fmt: skip
MIDDLE_FEMALE = (
    "Thị", "Thu", "Ngọc", "Thanh", "Mỹ", "Phương", "Bích", "Diệu", "Khánh", "Thùy", "Quỳnh",
    "Kim", "Hồng", "Tuyết",
)  # fmt: skip
GIVEN_MALE = (
    "An", "Bảo", "Cường", "Dũng", "Đạt", "Hùng", "Huy", "Khải", "Long", "Mạnh", "Nam", "Phúc",
    "Quân", "Sơn", "Thắng", "Tiến", "Trung", "Tùng", "Việt", "Vỹ", "Hiếu", "Lộc", "Nghĩa",
    "Đông", "Khoa", "Thịnh", "Kiên", "Hưng",
)  # fmt: skip
GIVEN_FEMALE = (
    "Anh", "Chi", "Dung", "Giang", "Hà", "Hằng", "Hương", "Lan", "Linh", "Mai", "Ngân",
    "Nhung", "Oanh", "Phượng", "Quyên", "Thảo", "Trang", "Uyên", "Vân", "Yến", "Huyền",
    "Thủy", "Ánh", "Nguyệt", "Loan", "Tuyết",
)  # fmt: skip

# Province -> districts -> wards/communes (names as the administrative units are written).
PLACES: dict[str, dict[str, tuple[str, ...]]] = {
    "Hà Nội": {
        "Quận Hoàn Kiếm": ("Phường Hàng Đào", "Phường Hàng Bạc", "Phường Tràng Tiền"),
        "Quận Ba Đình": ("Phường Kim Mã", "Phường Ngọc Hà", "Phường Liễu Giai"),
        "Quận Cầu Giấy": ("Phường Dịch Vọng", "Phường Nghĩa Đô", "Phường Quan Hoa"),
        "Huyện Hoài Đức": ("Xã An Khánh", "Xã Đức Thượng", "Thị trấn Trạm Trôi"),
        "Huyện Sóc Sơn": ("Xã Phù Linh", "Xã Mai Đình", "Xã Tiên Dược"),
    },
    "Hồ Chí Minh": {
        "Quận 1": ("Phường Bến Nghé", "Phường Đa Kao", "Phường Tân Định"),
        "Quận Bình Thạnh": ("Phường 25", "Phường 13", "Phường 2"),
        "Huyện Củ Chi": ("Xã Tân Thông Hội", "Xã Phước Vĩnh An"),
        "Thành phố Thủ Đức": ("Phường Linh Trung", "Phường Thảo Điền", "Phường Hiệp Phú"),
    },
    "Hải Phòng": {
        "Quận Lê Chân": ("Phường An Biên", "Phường Trại Cau"),
        "Huyện Thủy Nguyên": ("Xã Lập Lễ", "Xã Tam Hưng"),
    },
    "Đà Nẵng": {
        "Quận Hải Châu": ("Phường Thạch Thang", "Phường Hòa Thuận Tây"),
        "Huyện Hòa Vang": ("Xã Hòa Phong", "Xã Hòa Tiến"),
    },
    "Nghệ An": {
        "Thành phố Vinh": ("Phường Lê Lợi", "Phường Hưng Bình"),
        "Huyện Nghi Lộc": ("Xã Nghi Phong", "Xã Nghi Thạch"),
        "Huyện Diễn Châu": ("Xã Diễn Kỷ", "Thị trấn Diễn Châu"),
    },
    "Thanh Hóa": {
        "Thành phố Thanh Hóa": ("Phường Điện Biên", "Phường Ba Đình"),
        "Huyện Hoằng Hóa": ("Xã Hoằng Đức", "Xã Hoằng Quỳ"),
    },
    "Thái Bình": {
        "Huyện Vũ Thư": ("Xã Tự Tân", "Xã Song Lãng"),
        "Huyện Kiến Xương": ("Xã Quang Trung", "Xã Bình Nguyên"),
    },
    "Nam Định": {
        "Huyện Hải Hậu": ("Xã Hải Anh", "Thị trấn Yên Định"),
        "Huyện Giao Thủy": ("Xã Giao Thiện", "Xã Bạch Long"),
    },
    "Thừa Thiên Huế": {
        "Thành phố Huế": ("Phường Phú Hội", "Phường Vĩnh Ninh"),
        "Huyện Phú Vang": ("Xã Phú Thượng", "Xã Vinh Thanh"),
    },
    "Cần Thơ": {
        "Quận Ninh Kiều": ("Phường An Cư", "Phường Tân An"),
        "Huyện Phong Điền": ("Xã Nhơn Ái", "Xã Giai Xuân"),
    },
    "Quảng Ninh": {
        "Thành phố Hạ Long": ("Phường Bãi Cháy", "Phường Hồng Gai"),
        "Huyện Tiên Yên": ("Xã Đông Ngũ", "Xã Hải Lạng"),
    },
    "Bắc Ninh": {
        "Thành phố Bắc Ninh": ("Phường Suối Hoa", "Phường Kinh Bắc"),
        "Huyện Tiên Du": ("Xã Phật Tích", "Xã Liên Bão"),
    },
}
# The code each of those provinces has in citizen ID numbers (the first three digits).
PROVINCE_CODES = {
    "Hà Nội": "001", "Hồ Chí Minh": "079", "Hải Phòng": "031", "Đà Nẵng": "048",
    "Nghệ An": "040", "Thanh Hóa": "038", "Thái Bình": "034", "Nam Định": "036",
    "Thừa Thiên Huế": "046", "Cần Thơ": "092", "Quảng Ninh": "022", "Bắc Ninh": "027",
}  # fmt: skip
CITIES = {"Hà Nội", "Hồ Chí Minh", "Hải Phòng", "Đà Nẵng", "Cần Thơ"}
STREETS = (
    "phố Hàng Bạc", "đường Láng", "đường Nguyễn Trãi", "phố Huế", "đường Lê Duẩn",
    "đường Trần Hưng Đạo", "đường Hai Bà Trưng", "đường Lý Thường Kiệt", "phố Đội Cấn",
    "đường Võ Thị Sáu", "đường Điện Biên Phủ",
)  # fmt: skip
HAMLETS = (
    "Thôn Đông", "Xóm 5", "Thôn Thượng", "Ấp 3", "Tổ dân phố 7", "Khu phố 2", "Thôn Yên Phú",
    "Xóm Chùa", "Thôn Hạ", "Tổ 12",
)  # fmt: skip
MARKS = (
    "Nốt ruồi C:1cm trên sau cánh mũi trái",
    "Sẹo chấm C:2cm dưới trước đuôi mắt phải",
    "Nốt ruồi cách 1,5cm dưới mép trái",
    "Sẹo chấm C:3cm trên đầu lông mày trái",
    "Nốt ruồi C:2cm dưới sau dái tai phải",
)


def _province_full(province: str) -> str:
    return f"Thành phố {province}" if province in CITIES else f"Tỉnh {province}"


def _short(unit: str) -> str:
    """An administrative name without its kind ("Phường Hàng Đào" -> "Hàng Đào"), as many
    cards print it; numbered units keep their kind ("Phường 25", "Quận 1")."""
    for kind in ("Thành phố ", "Thị trấn ", "Phường ", "Quận ", "Huyện ", "Xã ", "Tỉnh "):
        if unit.startswith(kind):
            rest = unit[len(kind) :]
            return unit if rest.isdigit() else rest
    return unit


def _place(rng: random.Random, province: str, *, house: bool, full: bool) -> str:
    district = rng.choice(sorted(PLACES[province]))
    ward = rng.choice(PLACES[province][district])
    if full:
        parts = [ward, district, _province_full(province)]
    else:
        parts = [_short(ward), _short(district), province]
    if house:
        if rng.random() < 0.5 and ward.startswith("Phường"):
            street = rng.choice(STREETS)
            if rng.random() < 0.5:
                head = f"Số {rng.randint(1, 199)} ngõ {rng.randint(2, 120)} {street}"
            else:
                head = f"Số {rng.randint(1, 399)} {street}"
        else:
            head = rng.choice(HAMLETS)
        parts.insert(0, head)
    return ", ".join(parts)


def _birthday(born: date, years: int) -> date:
    try:
        return born.replace(year=born.year + years)
    except ValueError:  # 29 February
        return born.replace(year=born.year + years, day=28)


def expiry_for(born: date, issued: date) -> date | None:
    """The card's expiry: the 25th, 40th or 60th birthday, or the next one when the card was
    issued less than two years before it; none when issued from the age of 58."""
    for age in (25, 40, 60):
        at = _birthday(born, age)
        if issued < _birthday(born, age - 2):
            return at
    return None


def id_number_for(rng: random.Random, province_code: str, sex: str, born: date) -> str:
    """A structurally valid 12-digit personal identification number."""
    century = 0 if born.year < 2000 else 2
    digit = century + (1 if sex == "Nữ" else 0)
    tail = "".join(str(rng.randrange(10)) for _ in range(6))
    return f"{province_code}{digit}{born.year % 100:02d}{tail}"


def random_person(
    rng: random.Random, edition: str, *, born_between: tuple[int, int] = (1955, 2008)
) -> Person:
    sex = rng.choice(("Nam", "Nữ"))
    family = rng.choice(FAMILY_NAMES)
    middles = MIDDLE_MALE if sex == "Nam" else MIDDLE_FEMALE
    givens = GIVEN_MALE if sex == "Nam" else GIVEN_FEMALE
    middle = rng.sample(middles, 2 if rng.random() < 0.25 else 1)
    name = " ".join([family, *middle, rng.choice(givens)])
    year = rng.randint(*born_between)
    born = date(year, 1, 1) + timedelta(days=rng.randrange(365))
    if edition == "2021":
        first, last = date(2021, 1, 15), date(2024, 6, 30)
    else:
        first, last = date(2024, 7, 1), date(2025, 5, 31)
    first = max(first, _birthday(born, 14))
    if first > last:  # too young for this edition: issued on the 14th birthday's window
        first = last - timedelta(days=30)
    issued = first + timedelta(days=rng.randrange(max(1, (last - first).days)))
    origin_province = rng.choice(sorted(PLACES))
    home_province = origin_province if rng.random() < 0.5 else rng.choice(sorted(PLACES))
    full = rng.random() < 0.5
    origin = _place(rng, origin_province, house=False, full=full)
    residence = _place(rng, home_province, house=True, full=full)
    birth_place = _place(rng, origin_province, house=False, full=True)
    old = "" if year >= 2000 or rng.random() < 0.4 else f"{rng.randrange(10**8, 10**9)}"
    number = id_number_for(rng, PROVINCE_CODES[origin_province], sex, born)
    return Person(
        full_name=name,
        sex=sex,
        date_of_birth=born,
        id_number=number,
        old_number=old,
        place_of_origin=origin,
        place_of_residence=residence,
        place_of_birth=birth_place,
        issue_date=issued,
        expiry_date=expiry_for(born, issued),
    )


# --------------------------------------------------------------------------- MRZ (ICAO 9303)

_MRZ_WEIGHTS = (7, 3, 1)


def mrz_value(ch: str) -> int:
    if ch.isdigit():
        return int(ch)
    if "A" <= ch <= "Z":
        return ord(ch) - ord("A") + 10
    if ch == "<":
        return 0
    raise ValueError(f"not an MRZ character: {ch!r}")


def mrz_check(data: str) -> str:
    """The ICAO 9303 check digit of ``data`` (weights 7, 3, 1 repeating, modulo 10)."""
    return str(sum(mrz_value(c) * _MRZ_WEIGHTS[i % 3] for i, c in enumerate(data)) % 10)


def ascii_name(name: str) -> str:
    """Upper case, without diacritics; Đ becomes D."""
    name = name.replace("Đ", "D").replace("đ", "d")
    decomposed = unicodedata.normalize("NFD", name)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).upper()


def _pad(s: str, n: int = 30) -> str:
    return (s + "<" * n)[:n]


def _yymmdd(d: date | None) -> str:
    return "<<<<<<" if d is None else d.strftime("%y%m%d")


def mrz_lines(p: Person) -> tuple[str, str, str]:
    """The card's three 30-character TD1 lines."""
    doc = p.id_number[3:]
    line1 = _pad(f"IDVNM{doc}{mrz_check(doc)}{p.id_number}")
    birth = _yymmdd(p.date_of_birth)
    expiry = _yymmdd(p.expiry_date)
    head = (
        f"{birth}{mrz_check(birth)}{'M' if p.sex == 'Nam' else 'F'}{expiry}{mrz_check(expiry)}VNM"
    )
    head = _pad(head, 29)
    composite = line1[5:30] + head[0:7] + head[8:15] + head[18:29]
    line2 = head + mrz_check(composite)
    words = ascii_name(p.full_name).split()
    line3 = _pad(f"{words[0]}<<{'<'.join(words[1:])}")
    return line1, line2, line3


def mrz_checks_ok(lines: tuple[str, str, str] | list[str]) -> bool:
    l1, l2, _ = lines
    composite = l1[5:30] + l2[0:7] + l2[8:15] + l2[18:29]
    return (
        mrz_check(l1[5:14]) == l1[14]
        and mrz_check(l2[0:6]) == l2[6]
        and mrz_check(l2[8:14]) == l2[14]
        and mrz_check(composite) == l2[29]
    )


def break_mrz(lines: tuple[str, str, str], rng: random.Random) -> tuple[str, str, str]:
    """The same lines with one of the four check digits wrong."""
    l1, l2, l3 = lines
    where = rng.choice(((1, 14), (2, 6), (2, 14), (2, 29)))
    line = l1 if where[0] == 1 else l2
    pos = where[1]
    wrong = str((int(line[pos]) + rng.randint(1, 9)) % 10)
    line = line[:pos] + wrong + line[pos + 1 :]
    return (line, l2, l3) if where[0] == 1 else (l1, line, l3)


def qr_payload(p: Person, *, extra: bool = False, title_case: bool = True) -> str:
    """What the card's QR code holds: number|old number|name|birth|sex|residence|issue date;
    ``extra``: with the expiry date and a trailing separator, as some cards print it."""
    name = p.full_name if title_case else p.full_name.upper()
    parts = [
        p.id_number,
        p.old_number,
        name,
        p.date_of_birth.strftime("%d%m%Y"),
        p.sex,
        p.place_of_residence,
        p.issue_date.strftime("%d%m%Y"),
    ]
    if extra:
        parts += ["" if p.expiry_date is None else p.expiry_date.strftime("%d%m%Y"), ""]
    return "|".join(parts)


# --------------------------------------------------------------------------- drawing


class Canvas:
    """A page in millimetres over a pixel image; records every text run it draws."""

    def __init__(self, size_mm: tuple[float, float], dpi: int, paper: tuple[int, int, int]):
        self.dpi = dpi
        self.size_mm = size_mm
        self.image = Image.new("RGB", (self.px(size_mm[0]), self.px(size_mm[1])), paper)
        self.draw = ImageDraw.Draw(self.image)
        self.lines: list[Line] = []
        self.clipped = 0  # text runs drawn past the page's edge

    def px(self, mm: float) -> int:
        return round(mm * self.dpi / 25.4)

    def font(self, path: str, size_mm: float) -> ImageFont.FreeTypeFont:
        return load_font(path, self.px(size_mm))

    def width_mm(self, text: str, font: ImageFont.FreeTypeFont) -> float:
        return font.getlength(text) * 25.4 / self.dpi

    def text(
        self,
        x_mm: float,
        y_mm: float,
        text: str,
        font: ImageFont.FreeTypeFont,
        *,
        fill: tuple[int, int, int] = (25, 25, 30),
        role: str = "",
        anchor: str = "ls",
        underline: bool = False,
    ) -> tuple[int, int, int, int]:
        """Draw ``text`` with its baseline at ``y_mm`` (anchor "ls" left, "ms" centred, "rs"
        right) and record it."""
        xy = (self.px(x_mm), self.px(y_mm))
        self.draw.text(xy, text, font=font, fill=fill, anchor=anchor)
        left, top, right, bottom = (int(v) for v in self.draw.textbbox(xy, text, font, anchor))
        if underline:
            y = bottom + max(1, self.px(0.3))
            self.draw.line((left, y, right, y), fill=fill, width=max(1, self.px(0.15)))
        w, h = self.image.size
        if text.strip() and left >= 0 and top >= 0 and right <= w and bottom <= h:
            self.lines.append(Line(text, (left, top, right, bottom), role))
        elif text.strip():
            self.clipped += 1
        return left, top, right, bottom

    def rect(self, box_mm: tuple[float, float, float, float], **kw: object) -> None:
        x0, y0, x1, y1 = box_mm
        self.draw.rectangle((self.px(x0), self.px(y0), self.px(x1), self.px(y1)), **kw)  # type: ignore[arg-type]


def wrap(text: str, fits: list[float], width: Callable[[str], float]) -> list[str]:
    """``text`` broken at spaces into lines whose widths stay within ``fits`` (one limit per
    line, the last repeating)."""
    words = text.split()
    out: list[str] = []
    current = ""
    for w in words:
        limit = fits[min(len(out), len(fits) - 1)]
        trial = f"{current} {w}".strip()
        if current and width(trial) > limit:
            out.append(current)
            current = w
        else:
            current = trial
    if current:
        out.append(current)
    return out


def _tint(rng: random.Random, base: tuple[int, int, int], spread: int = 8) -> tuple[int, int, int]:
    return tuple(max(0, min(255, c + rng.randint(-spread, spread))) for c in base)  # type: ignore[return-value]


def guilloche(c: Canvas, rng: random.Random, colors: list[tuple[int, int, int]]) -> None:
    """Security-print background: a soft gradient, wave bands and rosettes in pale inks."""
    w, h = c.image.size
    arr = np.asarray(c.image, dtype=np.float32)
    ramp = np.linspace(0.0, 1.0, w, dtype=np.float32)[None, :, None]
    tint = np.array(rng.choice(colors), dtype=np.float32)[None, None, :]
    mix = 0.15 + 0.25 * rng.random()
    arr = arr * (1 - mix * ramp) + tint * (mix * ramp)
    c.image.paste(Image.fromarray(arr.clip(0, 255).astype(np.uint8)))
    draw = ImageDraw.Draw(c.image)
    lw = max(1, c.px(0.08))
    xs = np.linspace(0, w, 240)
    for _ in range(rng.randint(18, 34)):
        col = _tint(rng, rng.choice(colors), 10)
        y0 = rng.uniform(0, h)
        amp = rng.uniform(0.02, 0.08) * h
        period = rng.uniform(0.15, 0.6) * w
        phase = rng.uniform(0, 2 * math.pi)
        ys = y0 + amp * np.sin(2 * math.pi * xs / period + phase)
        draw.line(list(zip(xs.tolist(), ys.tolist(), strict=True)), fill=col, width=lw)
    for _ in range(rng.randint(1, 3)):
        cx, cy = rng.uniform(0.2, 0.8) * w, rng.uniform(0.2, 0.8) * h
        big, small, d = (
            rng.uniform(0.1, 0.2) * h,
            rng.uniform(0.02, 0.06) * h,
            rng.uniform(0.02, 0.08) * h,
        )
        t = np.linspace(0, 2 * math.pi * 12, 2400)
        px = cx + (big - small) * np.cos(t) + d * np.cos((big - small) / small * t)
        py = cy + (big - small) * np.sin(t) - d * np.sin((big - small) / small * t)
        col = _tint(rng, rng.choice(colors), 10)
        draw.line(list(zip(px.tolist(), py.tolist(), strict=True)), fill=col, width=lw)


def emblem(c: Canvas, cx: float, cy: float, r: float) -> None:
    """The national emblem, simplified: a red disc in a golden ring with a yellow star."""
    d = c.draw
    p = c.px
    d.ellipse((p(cx - r), p(cy - r), p(cx + r), p(cy + r)), fill=(214, 170, 40))
    r2 = r * 0.78
    d.ellipse((p(cx - r2), p(cy - r2), p(cx + r2), p(cy + r2)), fill=(200, 30, 35))
    star = []
    for k in range(10):
        rad = r2 * (0.62 if k % 2 == 0 else 0.25)
        a = -math.pi / 2 + k * math.pi / 5
        star.append((p(cx + rad * math.cos(a)), p(cy + rad * math.sin(a))))
    d.polygon(star, fill=(250, 215, 40))


def photo(c: Canvas, box: tuple[float, float, float, float], rng: random.Random) -> None:
    """A stand-in for the holder's portrait: a head and shoulders on a pale blue ground."""
    x0, y0, x1, y1 = box
    w, h = c.px(x1 - x0), c.px(y1 - y0)
    img = Image.new("RGB", (w, h), _tint(rng, (205, 222, 240), 12))
    d = ImageDraw.Draw(img)
    cx = w / 2
    skin = _tint(rng, (200, 170, 150), 20)
    d.ellipse((cx - w * 0.48, h * 0.72, cx + w * 0.48, h * 1.4), fill=_tint(rng, (70, 70, 85), 15))
    d.ellipse((cx - w * 0.22, h * 0.18, cx + w * 0.22, h * 0.68), fill=skin)
    d.chord((cx - w * 0.24, h * 0.12, cx + w * 0.24, h * 0.5), 180, 360, fill=(30, 25, 25))
    c.image.paste(img, (c.px(x0), c.px(y0)))


def chip(c: Canvas, box: tuple[float, float, float, float]) -> None:
    x0, y0, x1, y1 = box
    p = c.px
    c.draw.rounded_rectangle(
        (p(x0), p(y0), p(x1), p(y1)),
        radius=p(1.2),
        fill=(212, 180, 90),
        outline=(150, 120, 50),
        width=max(1, p(0.15)),
    )
    for f in (0.33, 0.66):
        c.draw.line(
            (p(x0), p(y0 + (y1 - y0) * f), p(x1), p(y0 + (y1 - y0) * f)),
            fill=(150, 120, 50),
            width=max(1, p(0.12)),
        )
    c.draw.line(
        (p((x0 + x1) / 2), p(y0), p((x0 + x1) / 2), p(y1)),
        fill=(150, 120, 50),
        width=max(1, p(0.12)),
    )


def signature(c: Canvas, x: float, y: float, w: float, rng: random.Random) -> None:
    pts = []
    for k in range(14):
        pts.append((c.px(x + w * k / 13 + rng.uniform(-1, 1)), c.px(y + rng.uniform(-2.0, 2.0))))
    c.draw.line(pts, fill=(30, 40, 120), width=max(1, c.px(0.25)), joint="curve")


def red_seal(c: Canvas, cx: float, cy: float, r: float, text: str, rng: random.Random) -> None:
    """A round red seal: two rings, text around the ring and a star in the centre."""
    ink = _tint(rng, (205, 35, 40), 12)
    layer = Image.new("L", c.image.size, 0)
    d = ImageDraw.Draw(layer)
    p = c.px
    for rr, wd in ((r, 0.5), (r * 0.72, 0.3)):
        d.ellipse(
            (p(cx - rr), p(cy - rr), p(cx + rr), p(cy + rr)), outline=255, width=max(1, p(wd))
        )
    font = load_font(FONT_FAMILIES[0].bold, p(r * 0.17))
    n = len(text)
    for k, ch in enumerate(text):
        a = math.pi + (k + 0.5) / n * 2 * math.pi * 0.92
        gx = cx + r * 0.86 * math.cos(a)
        gy = cy + r * 0.86 * math.sin(a)
        glyph = Image.new("L", (p(r * 0.3), p(r * 0.3)), 0)
        ImageDraw.Draw(glyph).text(
            (glyph.width // 2, glyph.height // 2), ch, font=font, fill=255, anchor="mm"
        )
        glyph = glyph.rotate(-math.degrees(a) - 90, resample=Image.Resampling.BILINEAR)
        layer.paste(glyph, (p(gx) - glyph.width // 2, p(gy) - glyph.height // 2), glyph)
    star = []
    for k in range(10):
        rad = r * (0.3 if k % 2 == 0 else 0.12)
        a = -math.pi / 2 + k * math.pi / 5
        star.append((p(cx + rad * math.cos(a)), p(cy + rad * math.sin(a))))
    d.polygon(star, fill=255)
    alpha = layer.point(lambda v: int(v * 0.85))
    c.image.paste(Image.new("RGB", c.image.size, ink), (0, 0), alpha)


def qr_image(payload: str, size_px: int) -> Image.Image:
    q = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=1)
    q.add_data(payload)
    q.make(fit=True)
    matrix = np.array(q.get_matrix(), dtype=np.uint8)
    img = Image.fromarray((1 - matrix) * 255).convert("RGB")
    return img.resize((size_px, size_px), Image.Resampling.NEAREST)


def _families(rng: random.Random) -> tuple[FontFamily, FontFamily]:
    """The label face and the value face (often the same family)."""
    label = rng.choice(FONT_FAMILIES)
    value = label if rng.random() < 0.6 else rng.choice(FONT_FAMILIES)
    return label, value


def _header(c: Canvas, fam: FontFamily, x_mid: float, y: float, size: float) -> float:
    f1 = c.font(fam.bold, size)
    f2 = c.font(fam.bold, size * 1.05)
    c.text(x_mid, y, "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", f1, anchor="ms", role="header")
    y2 = y + size * 1.45
    c.text(x_mid, y2, "Độc lập - Tự do - Hạnh phúc", f2, anchor="ms", role="header", underline=True)
    return y2


def _mrz(c: Canvas, lines: tuple[str, str, str], rng: random.Random, top: float) -> None:
    path, _pkg = rng.choice(MRZ_FONTS)
    if zlib.crc32(lines[0].encode()) % 2:
        path = OCR_B[0]  # chosen by the zone, not the draw: the other choices stay as they were
    width = rng.uniform(72.0, 77.0)
    probe = load_font(path, 100)
    size_px = max(8, int(100 * c.px(width) / probe.getlength("<" * 30)))
    font = load_font(path, size_px)
    x = (CARD_MM[0] - width) / 2 + rng.uniform(-1.0, 1.0)
    pitch = rng.uniform(4.1, 4.6)
    for k, line in enumerate(lines):
        c.text(x, top + k * pitch, line, font, fill=(20, 20, 20), role="mrz")


# --------------------------------------------------------------------------- cards


def _value_below_or_right(
    c: Canvas,
    rng: random.Random,
    x: float,
    y: float,
    label: str,
    value: str,
    lf: ImageFont.FreeTypeFont,
    vf: ImageFont.FreeTypeFont,
    right_edge: float,
    step: float,
    *,
    below: bool | None = None,
    role: str = "value",
) -> float:
    """A label and its value, on one row or the value on the next; the y of the last row."""
    c.text(x, y, label, lf, role="label")
    lw = c.width_mm(label + " ", lf)
    if below is None:
        below = rng.random() < 0.5
    if not below and x + lw + c.width_mm(value, vf) <= right_edge:
        c.text(x + lw, y, value, vf, role=role)
        return y
    widthf = lambda s: c.width_mm(s, vf)  # noqa: E731
    indent = rng.uniform(0, 2.0)
    for part in wrap(value, [right_edge - x - indent], widthf):
        y += step
        c.text(x + indent, y, part, vf, role=role)
    return y


def _fits(c: Canvas, margin_mm: float) -> bool:
    limit = c.px(c.size_mm[1] - margin_mm)
    return c.clipped == 0 and all(line.box[3] <= limit for line in c.lines)


def card_front_2021(p: Person, rng: random.Random, dpi: int, qr_extra: bool = False) -> Document:
    c = Canvas(CARD_MM, dpi, _tint(rng, (236, 240, 232), 6))
    guilloche(c, rng, [(205, 225, 205), (230, 215, 190), (200, 215, 235)])
    lab, val = _families(rng)
    dx, dy = rng.uniform(-1.2, 1.2), rng.uniform(-0.8, 0.8)
    emblem(c, 9.5 + dx, 9.0 + dy, rng.uniform(5.2, 6.2))
    _header(c, lab, 44.0 + dx, 5.2 + dy, rng.uniform(2.0, 2.3))
    # QR code, top right.
    qr_mm = rng.uniform(11.0, 13.0)
    qr = qr_image(qr_payload(p, extra=qr_extra, title_case=rng.random() < 0.8), c.px(qr_mm))
    c.image.paste(qr, (c.px(CARD_MM[0] - qr_mm - 2.0), c.px(2.0)))
    title = c.font(lab.bold, rng.uniform(3.0, 3.4))
    red = (200, 30, 35)
    c.text(44.0 + dx, 12.6 + dy, "CĂN CƯỚC CÔNG DÂN", title, anchor="ms", fill=red, role="header")
    c.text(
        44.0 + dx,
        15.6 + dy,
        "Citizen Identity Card",
        c.font(lab.bold, 2.0),
        anchor="ms",
        role="header",
    )
    photo(c, (3.5 + dx, 18.5 + dy, 21.5 + dx, 40.5 + dy), rng)
    base, drawn, state = c.image.copy(), list(c.lines), rng.getstate()
    label_mm, value_mm, step = rng.uniform(1.6, 1.85), rng.uniform(1.9, 2.3), rng.uniform(2.7, 3.1)
    for squeeze in (1.0, 0.94, 0.88, 0.82, 0.76, 0.7):
        c.image.paste(base)
        c.draw = ImageDraw.Draw(c.image)
        c.lines = list(drawn)
        c.clipped = 0
        rng.setstate(state)
        _front_2021_body(
            c, p, rng, lab, val, label_mm * squeeze, value_mm * squeeze, step * squeeze, dy
        )
        if _fits(c, 1.0):
            break
    fields = {
        "id_number": p.id_number,
        "full_name": p.full_name.upper(),
        "date_of_birth": dmy(p.date_of_birth),
        "sex": p.sex,
        "nationality": p.nationality,
        "place_of_origin": p.place_of_origin,
        "place_of_residence": p.place_of_residence,
        "expiry_date": dmy(p.expiry_date),
    }
    return Document(c.image, "cccd_front", "2021", "card", dpi, fields, c.lines)


def _front_2021_body(
    c: Canvas,
    p: Person,
    rng: random.Random,
    lab: FontFamily,
    val: FontFamily,
    label_mm: float,
    value_mm: float,
    step: float,
    dy: float,
) -> None:
    lf = c.font(lab.regular, label_mm)
    vf = c.font(val.bold, value_mm)
    x = rng.uniform(23.5, 25.5)
    right = CARD_MM[0] - 1.5
    y = 21.0 + dy + rng.uniform(-0.4, 0.4)
    c.text(x, y, "Số / No.:", lf, role="label")
    big = c.font(val.bold, value_mm * rng.uniform(1.35, 1.5))
    c.text(
        x + c.width_mm("Số / No.: ", lf) + rng.uniform(0.5, 3.0),
        y + 0.3,
        p.id_number,
        big,
        fill=(20, 20, 20),
        role="value",
    )
    y += step + 0.3
    c.text(x, y, "Họ và tên / Full name:", lf, role="label")
    y += step
    c.text(x + rng.uniform(0, 3.0), y, p.full_name.upper(), vf, role="value")
    y += step
    _value_below_or_right(
        c,
        rng,
        x,
        y,
        "Ngày sinh / Date of birth:",
        dmy(p.date_of_birth),
        lf,
        vf,
        right,
        step,
        below=False,
    )
    y += step
    if rng.random() < 0.7:  # sex and nationality on one row
        c.text(x, y, "Giới tính / Sex:", lf, role="label")
        sx = x + c.width_mm("Giới tính / Sex: ", lf)
        c.text(sx, y, p.sex, vf, role="value")
        nx = max(sx + c.width_mm(p.sex + "   ", vf), x + rng.uniform(20.0, 24.0))
        c.text(nx, y, "Quốc tịch / Nationality:", lf, role="label")
        c.text(nx + c.width_mm("Quốc tịch / Nationality: ", lf), y, p.nationality, vf, role="value")
    else:
        c.text(x, y, "Giới tính / Sex:", lf, role="label")
        c.text(x + c.width_mm("Giới tính / Sex: ", lf), y, p.sex, vf, role="value")
        y += step
        c.text(x, y, "Quốc tịch / Nationality:", lf, role="label")
        c.text(x + c.width_mm("Quốc tịch / Nationality: ", lf), y, p.nationality, vf, role="value")
    y += step
    y = _value_below_or_right(
        c, rng, x, y, "Quê quán / Place of origin:", p.place_of_origin, lf, vf, right, step
    )
    y += step
    # Residence: the label, the value's first part to its right (or below), the rest on the
    # rows under it, which the expiry date shares at the lower left under the photo.
    label = "Nơi thường trú / Place of residence:"
    c.text(x, y, label, lf, role="label")
    lw = c.width_mm(label + " ", lf)
    first_room = right - x - lw
    widthf = lambda s: c.width_mm(s, vf)  # noqa: E731
    if first_room > 14 and rng.random() < 0.65:
        parts = wrap(p.place_of_residence, [first_room, right - x - rng.uniform(0, 6)], widthf)
        c.text(x + lw, y, parts[0], vf, role="value")
        rest = parts[1:]
    else:
        rest = wrap(p.place_of_residence, [right - x - rng.uniform(0, 8)], widthf)
    rows = []
    for part in rest:
        y += step
        rows.append(y)
        c.text(x + rng.uniform(0, 1.0), y, part, vf, role="value")
    # Expiry, under the photo, on the rows of the residence's last lines.
    ex_f = c.font(lab.regular, label_mm * 0.9)
    ex_v = c.font(val.bold, value_mm * 0.92)
    ey = rows[0] if rows else y + step
    ey = min(max(ey, 43.5 + dy), CARD_MM[1] - 1.5 - step)
    c.text(3.0, ey, "Có giá trị đến:", ex_f, role="label")
    c.text(3.0, ey + step * 0.9, dmy(p.expiry_date), ex_v, role="value")
    both = "Có giá trị đến: Date of expiry"
    if rng.random() < 0.5 and 3.0 + c.width_mm(both, ex_f) < x - 1.0:
        c.text(3.0 + c.width_mm("Có giá trị đến: ", ex_f), ey, "Date of expiry", ex_f, role="label")


def _fingerprints(
    c: Canvas, x0: float, y0: float, w: float, h: float, lab: FontFamily, rng: random.Random
) -> None:
    f = c.font(lab.regular, 1.45)
    for k, (vi, en) in enumerate(
        (("Ngón trỏ trái", "Left index finger"), ("Ngón trỏ phải", "Right index finger"))
    ):
        bx = x0 + k * (w + 1.5)
        c.rect((bx, y0, bx + w, y0 + h), outline=(90, 90, 90), width=max(1, c.px(0.15)))
        cx, cy = bx + w / 2, y0 + h / 2
        for r in np.linspace(0.6, min(w, h) * 0.42, 9):
            rr = float(r)
            c.draw.arc(
                (c.px(cx - rr * 0.8), c.px(cy - rr), c.px(cx + rr * 0.8), c.px(cy + rr)),
                rng.randint(0, 40),
                rng.randint(300, 360),
                fill=(110, 110, 110),
                width=max(1, c.px(0.12)),
            )
        c.text(bx + w / 2, y0 + h + 2.0, vi, f, anchor="ms", role="label")
        c.text(bx + w / 2, y0 + h + 3.8, en, f, anchor="ms", role="label")


def card_back_2021(
    p: Person, rng: random.Random, dpi: int, mrz: tuple[str, str, str] | None = None
) -> Document:
    c = Canvas(CARD_MM, dpi, _tint(rng, (238, 238, 230), 6))
    guilloche(c, rng, [(215, 225, 210), (230, 220, 200), (210, 215, 235)])
    lab, val = _families(rng)
    dx, dy = rng.uniform(-1.0, 1.0), rng.uniform(-0.6, 0.6)
    lf = c.font(lab.regular, rng.uniform(1.6, 1.85))
    vf = c.font(val.regular, rng.uniform(1.8, 2.1))
    chip(c, (4.0 + dx, 4.0 + dy, 15.0 + dx, 12.5 + dy))
    x = 4.0 + dx
    y = 17.0 + dy
    c.text(x, y, "Đặc điểm nhân dạng / Personal identification:", lf, role="label")
    y += 2.8
    c.text(x + 1.0, y, rng.choice(MARKS), vf, role="value")
    y += 3.6
    _fingerprints(c, 55.0 + dx, 3.5 + dy, 12.5, 15.0, lab, rng)
    c.text(x, y, "Ngày, tháng, năm / Date, month, year:", lf, role="label")
    lw = c.width_mm("Ngày, tháng, năm / Date, month, year: ", lf)
    c.text(x + lw, y, dmy(p.issue_date), c.font(val.bold, 2.0), role="value")
    y += 3.0
    tf = c.font(lab.bold, rng.uniform(1.55, 1.75))
    title = "CỤC TRƯỞNG CỤC CẢNH SÁT QUẢN LÝ HÀNH CHÍNH VỀ TRẬT TỰ XÃ HỘI"
    tx = 30.0 + dx + rng.uniform(-2, 2)
    for part in wrap(title, [48.0], lambda s: c.width_mm(s, tf)):
        c.text(tx, y, part, tf, anchor="ms", role="header")
        y += 2.3
    red_seal(c, tx - 12.0, y + 2.5, 5.0, "BỘ CÔNG AN * CỤC CẢNH SÁT QLHC VỀ TTXH *", rng)
    signature(c, tx - 2.0, y + 1.5, 10.0, rng)
    lines = mrz or mrz_lines(p)
    _mrz(c, lines, rng, top=CARD_MM[1] - 11.0 + rng.uniform(-0.6, 0.4))
    fields = {"issue_date": dmy(p.issue_date), "mrz": "\n".join(lines)}
    return Document(
        c.image,
        "cccd_back",
        "2021",
        "card",
        dpi,
        fields,
        c.lines,
        "mrz_check" if mrz and not mrz_checks_ok(mrz) else "",
    )


def card_front_2024(p: Person, rng: random.Random, dpi: int) -> Document:
    c = Canvas(CARD_MM, dpi, _tint(rng, (242, 232, 232), 6))
    guilloche(c, rng, [(240, 205, 210), (205, 220, 240), (235, 225, 195)])
    lab, val = _families(rng)
    dx, dy = rng.uniform(-1.2, 1.2), rng.uniform(-0.8, 0.8)
    emblem(c, 9.0 + dx, 9.0 + dy, rng.uniform(5.0, 6.0))
    _header(c, lab, 46.0 + dx, 5.0 + dy, rng.uniform(1.9, 2.2))
    red = (190, 30, 40)
    c.text(
        46.0 + dx,
        12.8 + dy,
        "CĂN CƯỚC",
        c.font(lab.bold, rng.uniform(3.3, 3.8)),
        anchor="ms",
        fill=red,
        role="header",
    )
    c.text(46.0 + dx, 15.8 + dy, "IDENTITY CARD", c.font(lab.bold, 2.0), anchor="ms", role="header")
    photo(c, (3.5 + dx, 18.0 + dy, 22.0 + dx, 42.5 + dy), rng)
    chip(c, (CARD_MM[0] - 15.0, 41.0 + dy, CARD_MM[0] - 5.0, 49.0 + dy))
    lf = c.font(lab.regular, rng.uniform(1.6, 1.85))
    vf = c.font(val.bold, rng.uniform(2.2, 2.6))
    x = rng.uniform(24.0, 25.5)
    step = rng.uniform(3.0, 3.4)
    y = 20.5 + dy
    label = "Số định danh cá nhân / Personal identification number:"
    c.text(x, y, label, lf, role="label")
    y += step + 0.3
    c.text(
        x + rng.uniform(0, 2.0),
        y,
        p.id_number,
        c.font(val.bold, rng.uniform(3.0, 3.4)),
        role="value",
    )
    y += step + 0.3
    label = "Họ, chữ đệm và tên khai sinh / Surname, middle name and given name:"
    name_lf = lf if c.width_mm(label, lf) < CARD_MM[0] - x - 1.0 else c.font(lab.regular, 1.5)
    c.text(x, y, label, name_lf, role="label")
    y += step
    c.text(x + rng.uniform(0, 2.0), y, p.full_name.upper(), vf, role="value")
    y += step + 0.2
    label = "Ngày, tháng, năm sinh / Date of birth:"
    c.text(x, y, label, lf, role="label")
    c.text(x + c.width_mm(label + " ", lf), y, dmy(p.date_of_birth), vf, role="value")
    y += step
    c.text(x, y, "Giới tính / Sex:", lf, role="label")
    sx = x + c.width_mm("Giới tính / Sex: ", lf)
    c.text(sx, y, p.sex, vf, role="value")
    if rng.random() < 0.7:
        nx = max(sx + c.width_mm(p.sex + "   ", vf), x + rng.uniform(19.0, 24.0))
    else:
        nx = x
        y += step
    c.text(nx, y, "Quốc tịch / Nationality:", lf, role="label")
    c.text(nx + c.width_mm("Quốc tịch / Nationality: ", lf), y, p.nationality, vf, role="value")
    fields = {
        "id_number": p.id_number,
        "full_name": p.full_name.upper(),
        "date_of_birth": dmy(p.date_of_birth),
        "sex": p.sex,
        "nationality": p.nationality,
    }
    return Document(c.image, "cccd_front", "2024", "card", dpi, fields, c.lines)


def card_back_2024(
    p: Person,
    rng: random.Random,
    dpi: int,
    mrz: tuple[str, str, str] | None = None,
    qr_extra: bool = False,
) -> Document:
    c = Canvas(CARD_MM, dpi, _tint(rng, (240, 234, 236), 6))
    guilloche(c, rng, [(240, 210, 215), (210, 222, 240), (236, 228, 200)])
    lab, val = _families(rng)
    dx, dy = rng.uniform(-1.0, 1.0), rng.uniform(-0.6, 0.6)
    qr_mm = rng.uniform(13.0, 15.5)
    qr = qr_image(qr_payload(p, extra=qr_extra, title_case=rng.random() < 0.8), c.px(qr_mm))
    c.image.paste(qr, (c.px(3.0 + dx), c.px(3.0 + dy)))
    lf = c.font(lab.regular, rng.uniform(1.55, 1.8))
    vf = c.font(val.bold, rng.uniform(1.9, 2.2))
    x = 3.0 + dx + qr_mm + rng.uniform(2.0, 3.5)
    right = CARD_MM[0] - 2.5
    step = rng.uniform(2.8, 3.2)
    y = 5.5 + dy
    c.text(x, y, "Nơi cư trú / Place of residence:", lf, role="label")
    widthf = lambda s: c.width_mm(s, vf)  # noqa: E731
    for part in wrap(p.place_of_residence, [right - x - rng.uniform(0, 6)], widthf):
        y += step
        c.text(x, y, part, vf, role="value")
    y += step + 0.3
    c.text(x, y, "Nơi đăng ký khai sinh / Place of birth:", lf, role="label")
    for part in wrap(p.place_of_birth, [right - x - rng.uniform(0, 6)], widthf):
        y += step
        c.text(x, y, part, vf, role="value")
    y = max(y + step + 0.3, 3.0 + dy + qr_mm + 3.0)
    lx = 3.0 + dx
    for label, value in (
        ("Ngày, tháng, năm cấp / Date of issue:", dmy(p.issue_date)),
        ("Ngày, tháng, năm hết hạn / Date of expiry:", dmy(p.expiry_date)),
    ):
        c.text(lx, y, label, lf, role="label")
        c.text(lx + c.width_mm(label + " ", lf), y, value, vf, role="value")
        y += step
    tf = c.font(lab.bold, 1.8)
    sf = c.font(lab.regular, 1.5)
    half = c.width_mm("MINISTRY OF PUBLIC SECURITY", sf) / 2
    widest = max(line.box[2] for line in c.lines[-4:]) * 25.4 / dpi
    sx = max(widest + half + 2.0, CARD_MM[0] - 20.0 + rng.uniform(-2, 1))
    if sx + half > CARD_MM[0] - 1.0:  # no room beside the dates: under them
        sx = CARD_MM[0] - half - 3.0
        sy = y + 0.5
    else:
        sy = max(y - 2 * step, 24.0 + dy)
    c.text(sx, sy, "BỘ CÔNG AN", tf, anchor="ms", role="header")
    c.text(sx, sy + 2.3, "MINISTRY OF PUBLIC SECURITY", sf, anchor="ms", role="header")
    red_seal(c, sx - 6.0, sy + 7.0, 4.6, "BỘ CÔNG AN * BỘ CÔNG AN *", rng)
    signature(c, sx - 3.0, sy + 6.5, 9.0, rng)
    lines = mrz or mrz_lines(p)
    _mrz(c, lines, rng, top=CARD_MM[1] - 10.5 + rng.uniform(-0.4, 0.4))
    fields = {
        "place_of_residence": p.place_of_residence,
        "place_of_birth": p.place_of_birth,
        "issue_date": dmy(p.issue_date),
        "expiry_date": dmy(p.expiry_date),
        "mrz": "\n".join(lines),
    }
    defect = "mrz_check" if mrz and not mrz_checks_ok(mrz) else ""
    return Document(c.image, "cccd_back", "2024", "card", dpi, fields, c.lines, defect)


def card(
    p: Person,
    edition: str,
    rng: random.Random,
    dpi: int,
    *,
    broken_mrz: bool = False,
    qr_extra: bool = False,
) -> tuple[Document, Document]:
    """The card's front and back."""
    mrz = break_mrz(mrz_lines(p), rng) if broken_mrz else None
    if edition == "2021":
        return card_front_2021(p, rng, dpi, qr_extra), card_back_2021(p, rng, dpi, mrz)
    return card_front_2024(p, rng, dpi), card_back_2024(p, rng, dpi, mrz, qr_extra)


# --------------------------------------------------------------------------- A4 pages

AGENCIES = (
    ("ỦY BAN NHÂN DÂN", "PHƯỜNG HÀNG ĐÀO"),
    ("ỦY BAN NHÂN DÂN", "XÃ AN KHÁNH"),
    ("SỞ TƯ PHÁP", "THÀNH PHỐ HÀ NỘI"),
    ("CÔNG AN", "QUẬN CẦU GIẤY"),
    ("TRƯỜNG ĐẠI HỌC", "BÁCH KHOA HÀ NỘI"),
)
TITLES = ("GIẤY XÁC NHẬN", "THÔNG BÁO", "QUYẾT ĐỊNH", "GIẤY GIỚI THIỆU", "BIÊN BẢN")
SENTENCES = (
    "Căn cứ Luật Tổ chức chính quyền địa phương ngày 19 tháng 6 năm 2015",
    "Căn cứ Nghị định số 23/2015/NĐ-CP của Chính phủ về cấp bản sao từ sổ gốc",
    "Theo đề nghị của công dân và hồ sơ kèm theo đã được kiểm tra đầy đủ",
    "Xác nhận ông bà có tên trên hiện đang cư trú hợp pháp tại địa phương",
    "Trong thời gian cư trú chấp hành tốt chủ trương của Đảng và pháp luật của Nhà nước",
    "Giấy này có giá trị trong thời hạn sáu tháng kể từ ngày ký",
    "Các đơn vị có liên quan chịu trách nhiệm thi hành văn bản này",
    "Đề nghị cơ quan chức năng tạo điều kiện để công dân hoàn thành thủ tục",
    "Hồ sơ gồm đơn đề nghị, bản sao giấy khai sinh và sổ hộ khẩu",
    "Người được giới thiệu có trách nhiệm báo cáo kết quả sau khi hoàn thành công việc",
    "Việc tiếp nhận và trả kết quả được thực hiện tại bộ phận một cửa",
    "Mọi thắc mắc xin liên hệ văn phòng trong giờ hành chính các ngày làm việc",
    "Nội dung xác nhận đúng với thông tin lưu trữ tại cơ sở dữ liệu quốc gia về dân cư",
    "Lệ phí được nộp theo quy định hiện hành của Hội đồng nhân dân thành phố",
)
SUBJECTS = (
    "Toán", "Ngữ văn", "Tiếng Anh", "Vật lí", "Hóa học", "Sinh học", "Lịch sử", "Địa lí",
    "Giáo dục công dân", "Tin học", "Công nghệ", "Thể dục", "Giáo dục quốc phòng",
)  # fmt: skip


def _a4(rng: random.Random, dpi: int) -> Canvas:
    c = Canvas(A4_MM, dpi, _tint(rng, (250, 249, 245), 4))
    if rng.random() < 0.5:  # a faint watermark-like pattern
        guilloche(c, rng, [(238, 238, 232), (235, 238, 242)])
    return c


def _a4_header(c: Canvas, rng: random.Random, fam: FontFamily, size: float) -> float:
    """Agency at the left, national header at the right; the y under them."""
    top = rng.uniform(16.0, 22.0)
    agency = rng.choice(AGENCIES)
    left_mid = rng.uniform(48.0, 56.0)
    f = c.font(fam.regular, size)
    fb = c.font(fam.bold, size)
    c.text(left_mid, top, agency[0], f, anchor="ms", role="header")
    c.text(left_mid, top + size * 1.5, agency[1], fb, anchor="ms", role="header", underline=True)
    c.text(
        left_mid,
        top + size * 3.6,
        f"Số: {rng.randint(10, 999)}/{rng.choice(('UBND-VP', 'GXN', 'TB', 'QĐ-UBND'))}",
        f,
        anchor="ms",
        role="body",
    )
    _header(c, fam, rng.uniform(138.0, 146.0), top, size * 0.95)
    city = rng.choice(("Hà Nội", "Hải Phòng", "Đà Nẵng", "Vinh", "Huế"))
    d = date(2024, 1, 1) + timedelta(days=rng.randrange(500))
    c.text(
        rng.uniform(135.0, 142.0),
        top + size * 3.6,
        f"{city}, ngày {d.day:02d} tháng {d.month:02d} năm {d.year}",
        c.font(fam.italic, size),
        anchor="ms",
        role="body",
    )
    return top + size * 6.5


def _seal_and_sign(
    c: Canvas, rng: random.Random, fam: FontFamily, x_mid: float, y: float, size: float
) -> None:
    fb = c.font(fam.bold, size)
    c.text(
        x_mid,
        y,
        rng.choice(("TM. ỦY BAN NHÂN DÂN", "KT. GIÁM ĐỐC", "THỦ TRƯỞNG ĐƠN VỊ")),
        fb,
        anchor="ms",
        role="header",
    )
    c.text(
        x_mid,
        y + size * 1.5,
        rng.choice(("CHỦ TỊCH", "PHÓ GIÁM ĐỐC", "HIỆU TRƯỞNG")),
        fb,
        anchor="ms",
        role="header",
    )
    signature(c, x_mid - 12.0, y + 14.0, 24.0, rng)
    red_seal(
        c,
        x_mid - rng.uniform(10.0, 16.0),
        y + rng.uniform(10.0, 16.0),
        rng.uniform(17.0, 20.0),
        "ỦY BAN NHÂN DÂN * PHƯỜNG HÀNG ĐÀO *",
        rng,
    )
    person = random_person(rng, "2024")
    c.text(x_mid, y + 30.0, person.full_name, fb, anchor="ms", role="body")


def letter(rng: random.Random, dpi: int, *, confidential: bool = False) -> Document:
    """An administrative letter: headers, title, numbered paragraphs, signature and seal."""
    c = _a4(rng, dpi)
    fam = rng.choice(FONT_FAMILIES)
    size = rng.uniform(3.6, 4.4)  # ~ 13 pt
    y = _a4_header(c, rng, fam, size * 0.9)
    stamp_at = (rng.uniform(20.0, 40.0), y + 2.0)
    if confidential:
        y += 20.0
    y += rng.uniform(8.0, 14.0)
    c.text(105.0, y, rng.choice(TITLES), c.font(fam.bold, size * 1.3), anchor="ms", role="header")
    y += size * 2.6
    f = c.font(fam.regular, size)
    left = rng.uniform(25.0, 32.0)
    right = A4_MM[0] - rng.uniform(18.0, 25.0)
    spacing = size * rng.uniform(1.45, 1.8)
    width = lambda s: c.width_mm(s, f)  # noqa: E731
    for k in range(rng.randint(3, 5)):
        text = f"{k + 1}. " + ". ".join(rng.sample(SENTENCES, rng.randint(1, 3))) + "."
        indent = rng.uniform(0.0, 10.0)
        for j, part in enumerate(wrap(text, [right - left - indent, right - left], width)):
            c.text(left + (indent if j == 0 else 0.0), y, part, f, role="body")
            y += spacing
        y += spacing * rng.uniform(0.1, 0.5)
        if y > A4_MM[1] - 80:
            break
    _seal_and_sign(c, rng, fam, rng.uniform(140.0, 155.0), y + 8.0, size * 0.95)
    doc = Document(c.image, "generic", "a4", "letter", dpi, {}, c.lines)
    if confidential:
        doc = confidential_stamp(doc, rng, stamp_at)
    return doc


def transcript(rng: random.Random, dpi: int) -> Document:
    """A school transcript with a ruled table of subjects and scores."""
    c = _a4(rng, dpi)
    fam = rng.choice(FONT_FAMILIES)
    size = rng.uniform(3.4, 4.0)
    y = _a4_header(c, rng, fam, size * 0.9) + rng.uniform(6.0, 10.0)
    c.text(
        105.0,
        y,
        rng.choice(("BẢNG ĐIỂM", "KẾT QUẢ HỌC TẬP", "HỌC BẠ")),
        c.font(fam.bold, size * 1.3),
        anchor="ms",
        role="header",
    )
    y += size * 2.6
    f = c.font(fam.regular, size)
    fb = c.font(fam.bold, size)
    student = random_person(rng, "2024", born_between=(2006, 2009))
    left = rng.uniform(22.0, 30.0)
    c.text(left, y, f"Họ và tên học sinh: {student.full_name}", f, role="body")
    y += size * 1.7
    c.text(
        left,
        y,
        f"Lớp: {rng.randint(10, 12)}A{rng.randint(1, 9)}    Năm học: 2023 - 2024",
        f,
        role="body",
    )
    y += size * 2.0
    headers = ("STT", "Môn học", "Học kỳ I", "Học kỳ II", "Cả năm")
    total = A4_MM[0] - 2 * left
    shares = [0.09, rng.uniform(0.33, 0.4), 0.0, 0.0, 0.0]
    rest = (1.0 - sum(shares)) / 3
    shares[2:] = [rest, rest, rest]
    xs = [left]
    for s in shares:
        xs.append(xs[-1] + total * s)
    row_h = size * rng.uniform(1.7, 2.1)
    subjects = rng.sample(SUBJECTS, rng.randint(8, 12))
    rows: list[tuple[str, ...]] = [headers]
    for k, subject in enumerate(subjects):
        s1, s2 = round(rng.uniform(5.0, 10.0), 1), round(rng.uniform(5.0, 10.0), 1)
        rows.append((str(k + 1), subject, f"{s1:.1f}", f"{s2:.1f}", f"{(s1 + 2 * s2) / 3:.1f}"))
    line_w = max(1, c.px(0.25))
    top = y
    for r, row in enumerate(rows):
        base = y + row_h * 0.7
        for col, text in enumerate(row):
            font = fb if r == 0 else f
            if col == 1 and r > 0:
                c.text(xs[col] + 2.0, base, text, font, role="table")
            else:
                c.text((xs[col] + xs[col + 1]) / 2, base, text, font, anchor="ms", role="table")
        y += row_h
    for k in range(len(rows) + 1):
        yy = top + k * row_h
        c.draw.line(
            (c.px(xs[0]), c.px(yy), c.px(xs[-1]), c.px(yy)), fill=(30, 30, 30), width=line_w
        )
    for x in xs:
        c.draw.line((c.px(x), c.px(top), c.px(x), c.px(y)), fill=(30, 30, 30), width=line_w)
    y += size * 2.0
    c.text(
        left, y, "Xếp loại học lực: " + rng.choice(("Giỏi", "Khá", "Trung bình")), f, role="body"
    )
    _seal_and_sign(c, rng, fam, rng.uniform(140.0, 155.0), y + 10.0, size * 0.95)
    return Document(c.image, "generic", "a4", "table", dpi, {}, c.lines)


def confidential_stamp(
    doc: Document, rng: random.Random, at_mm: tuple[float, float] = (25.0, 45.0)
) -> Document:
    """The page with a red "MẬT" stamp (a framed word, slightly turned) at ``at_mm``."""
    img = doc.image.copy()
    px = doc.dpi / 25.4
    w, h = int(34 * px), int(17 * px)
    stamp = Image.new("L", (w, h), 0)
    d = ImageDraw.Draw(stamp)
    d.rectangle((2, 2, w - 3, h - 3), outline=255, width=max(2, int(1.0 * px)))
    fam = rng.choice(FONT_FAMILIES)
    d.text((w // 2, h // 2), "MẬT", font=load_font(fam.bold, int(10 * px)), fill=255, anchor="mm")
    stamp = stamp.rotate(rng.uniform(-8, 8), expand=True, resample=Image.Resampling.BILINEAR)
    x, y = int(at_mm[0] * px), int(at_mm[1] * px)
    ink = Image.new("RGB", stamp.size, (210, 30, 35))
    img.paste(ink, (x, y), stamp.point(lambda v: int(v * 0.9)))
    return replace(doc, image=img, defect="confidential")
