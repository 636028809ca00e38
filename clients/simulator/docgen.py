"""Synthetic Vietnamese documents, as a kiosk scanner or camera would deliver them.

Every generator is deterministic for a given seed and returns a :class:`Rendered`: the image
and the exact text lines drawn on it, each with its box in image pixels, so OCR accuracy can
be measured against ground truth. Text is drawn in DejaVu fonts, which cover the precomposed
Vietnamese letters; layout uses Pillow's basic engine so output does not depend on libraqm.
"""

from __future__ import annotations

import io
import math
import random
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from functools import cache
from pathlib import Path

import numpy as np
import qrcode
from PIL import Image, ImageDraw, ImageFilter, ImageFont

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
SANS = "DejaVuSans.ttf"
SANS_BOLD = "DejaVuSans-Bold.ttf"
SANS_CONDENSED = "DejaVuSansCondensed.ttf"
SERIF = "DejaVuSerif.ttf"
SERIF_BOLD = "DejaVuSerif-Bold.ttf"
SERIF_CONDENSED = "DejaVuSerifCondensed.ttf"
MONO = "DejaVuSansMono.ttf"
SANS_CONDENSED_BOLD = "DejaVuSansCondensed-Bold.ttf"
SERIF_CONDENSED_BOLD = "DejaVuSerifCondensed-Bold.ttf"

CARD_SIZE = (1000, 640)  # about 300 dpi for an 85.6 x 54 mm card
A4_MM = (210, 297)

NATIONAL_NAME = "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"
NATIONAL_MOTTO = "Độc lập - Tự do - Hạnh phúc"

FAMILY_NAMES = (
    "Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng",
    "Bùi", "Đỗ", "Hồ", "Ngô", "Dương", "Lý", "Đinh", "Trương", "Lương", "Tạ",
)  # fmt: skip
MIDDLE_NAMES_MALE = ("Văn", "Đức", "Minh", "Quốc", "Hữu", "Thành", "Xuân", "Công", "Đình")
MIDDLE_NAMES_FEMALE = ("Thị", "Ngọc", "Thu", "Thanh", "Phương", "Mỹ", "Kim", "Bích", "Diệu")
GIVEN_NAMES_MALE = (
    "Anh", "Bảo", "Cường", "Dũng", "Đạt", "Hải", "Hiếu", "Hùng", "Khánh", "Long",
    "Nghĩa", "Phúc", "Quân", "Sơn", "Thắng", "Tuấn", "Việt", "Vĩnh", "Lộc", "Trường",
)  # fmt: skip
GIVEN_NAMES_FEMALE = (
    "Anh", "Châu", "Dung", "Giang", "Hà", "Hằng", "Hương", "Huyền", "Lan", "Linh",
    "Mai", "Ngân", "Nhung", "Oanh", "Phượng", "Thảo", "Trang", "Tuyết", "Yến", "Ánh",
)  # fmt: skip

# (province, its citizen-ID code, a few wards/communes with their district)
PLACES = (
    ("Hà Nội", "001", ("Phường Hàng Bạc, Quận Hoàn Kiếm", "Phường Kim Mã, Quận Ba Đình",
                      "Xã Đông Dư, Huyện Gia Lâm")),
    ("Hải Phòng", "031", ("Phường Máy Tơ, Quận Ngô Quyền", "Xã Đông Sơn, Huyện Thủy Nguyên")),
    ("Thừa Thiên Huế", "046", ("Phường Phú Hội, Thành phố Huế", "Xã Hương Toàn, Thị xã Hương Trà")),
    ("Đà Nẵng", "048", ("Phường Thạch Thang, Quận Hải Châu", "Xã Hòa Phước, Huyện Hòa Vang")),
    ("Nghệ An", "040", ("Phường Hưng Dũng, Thành phố Vinh", "Xã Nghĩa Đồng, Huyện Tân Kỳ")),
    ("Thành phố Hồ Chí Minh", "079", ("Phường Bến Nghé, Quận 1", "Phường Tân Định, Quận 1",
                                     "Xã Bình Mỹ, Huyện Củ Chi")),
    ("Cần Thơ", "092", ("Phường Tân An, Quận Ninh Kiều", "Xã Trường Long, Huyện Phong Điền")),
    ("Quảng Ninh", "022", ("Phường Hồng Gai, Thành phố Hạ Long",
                          "Xã Quảng Nghĩa, Thành phố Móng Cái")),
)  # fmt: skip
STREETS = ("Hàng Bạc", "Lê Lợi", "Trần Hưng Đạo", "Nguyễn Huệ", "Điện Biên Phủ", "Hai Bà Trưng")
MARKS = (
    "Nốt ruồi C:2cm trên sau cánh mũi phải",
    "Sẹo chấm C:1cm dưới trước đuôi mắt trái",
    "Nốt ruồi C:3cm dưới sau mép trái",
    "Sẹo chấm C:2cm trên đầu lông mày phải",
)


@dataclass(frozen=True)
class TextLine:
    """One line of text exactly as drawn, its box (left, top, right, bottom) and what it is."""

    text: str
    box: tuple[int, int, int, int]
    role: str = ""  # e.g. "full_name", "id_number", "mrz"; "" for labels and prose


@dataclass(frozen=True)
class Rendered:
    """A generated document image with its ground truth."""

    image: Image.Image
    lines: tuple[TextLine, ...]
    fields: dict[str, str] = field(default_factory=dict)  # field values drawn, by name

    @property
    def text(self) -> str:
        return "\n".join(line.text for line in self.lines)

    def line(self, role: str) -> TextLine:
        """The first line drawn for ``role``; KeyError when there is none."""
        for line in self.lines:
            if line.role == role:
                return line
        raise KeyError(role)


@dataclass(frozen=True)
class Person:
    family_name: str
    middle_name: str
    given_name: str
    id_number: str  # 12 digits: province code, century/sex digit, birth year, serial
    date_of_birth: date
    sex: str  # "Nam" | "Nữ"
    nationality: str
    place_of_origin: str
    place_of_residence: str
    issue_date: date
    expiry_date: date
    identifying_mark: str = field(default=MARKS[0])
    old_id_number: str = ""  # the 9-digit number of the earlier identity card, if any

    @property
    def full_name(self) -> str:
        return f"{self.family_name} {self.middle_name} {self.given_name}"


def random_person(seed: int) -> Person:
    """A plausible citizen with a diacritic-rich name; the same seed gives the same person."""
    rng = random.Random(f"person:{seed}")
    male = rng.random() < 0.5
    family = rng.choice(FAMILY_NAMES)
    middle = rng.choice(MIDDLE_NAMES_MALE if male else MIDDLE_NAMES_FEMALE)
    given = rng.choice(GIVEN_NAMES_MALE if male else GIVEN_NAMES_FEMALE)
    born = date(1950, 1, 1) + timedelta(days=rng.randrange(0, 365 * 55))
    origin_province, _, origin_wards = rng.choice(PLACES)
    home_province, home_code, home_wards = rng.choice(PLACES)
    century = 0 if born.year < 2000 else 2
    id_number = (
        home_code + str(century + (0 if male else 1)) + f"{born.year % 100:02d}"
        + f"{rng.randrange(10**6):06d}"
    )  # fmt: skip
    issued = date(2021, 1, 1) + timedelta(days=rng.randrange(0, 365 * 3))
    expiry = _expiry(born, issued)
    residence = (
        f"Số {rng.randrange(1, 200)} {rng.choice(STREETS)}, "
        f"{rng.choice(home_wards)}, {home_province}"
    )
    return Person(
        family_name=family,
        middle_name=middle,
        given_name=given,
        id_number=id_number,
        date_of_birth=born,
        sex="Nam" if male else "Nữ",
        nationality="Việt Nam",
        place_of_origin=f"{rng.choice(origin_wards)}, {origin_province}",
        place_of_residence=residence,
        issue_date=issued,
        expiry_date=expiry,
        identifying_mark=rng.choice(MARKS),
        old_id_number=f"{random.Random(f'old:{seed}').randrange(10**8, 10**9)}",
    )


def _expiry(born: date, issued: date) -> date:
    """Cards expire at the 25th, 40th or 60th birthday after issue (none after 60)."""
    for age in (25, 40, 60):
        birthday = _years_after(born, age)
        if birthday > issued:
            return birthday
    return date(9999, 12, 31)


def _years_after(d: date, years: int) -> date:
    try:
        return d.replace(year=d.year + years)
    except ValueError:  # 29 February
        return d.replace(year=d.year + years, day=28)


def _dmy(d: date) -> str:
    return "Không thời hạn" if d.year == 9999 else d.strftime("%d/%m/%Y")


@cache
def font(name: str, size: int) -> ImageFont.FreeTypeFont:
    """``name`` is a file in :data:`FONT_DIR` or an absolute path."""
    path = Path(name) if Path(name).is_absolute() else FONT_DIR / name
    return ImageFont.truetype(str(path), size, layout_engine=ImageFont.Layout.BASIC)


def _faces(*names: str) -> tuple[str, ...]:
    """The fonts among ``names`` installed here (DejaVu always is)."""
    found = tuple(
        n for n in names if (Path(n) if Path(n).is_absolute() else FONT_DIR / n).is_file()
    )
    return found or names[:1]


def fitted(name: str, size: int, text: str, width: float) -> ImageFont.FreeTypeFont:
    """The font ``name`` at ``size``, or smaller so that ``text`` fits in ``width`` pixels."""
    face = font(name, size)
    while size > 8 and face.getlength(text) > width:
        size -= 1
        face = font(name, size)
    return face


class _Canvas:
    """Draws text and records what it drew."""

    def __init__(self, size: tuple[int, int], background: tuple[int, int, int]) -> None:
        self.image = Image.new("RGB", size, background)
        self.draw = ImageDraw.Draw(self.image)
        self.lines: list[TextLine] = []

    def text(
        self,
        xy: tuple[float, float],
        text: str,
        face: ImageFont.FreeTypeFont,
        *,
        fill: tuple[int, int, int] = (20, 20, 20),
        role: str = "",
        anchor: str = "la",
    ) -> tuple[int, int, int, int]:
        self.draw.text(xy, text, font=face, fill=fill, anchor=anchor)
        left, top, right, bottom = (round(v) for v in self.draw.textbbox(xy, text, face, anchor))
        box = (left, top, right, bottom)
        self.lines.append(TextLine(text, box, role))
        return box

    def done(self) -> Rendered:
        return Rendered(self.image, tuple(self.lines))


def _guilloche(img: Image.Image, rng: random.Random, tint: tuple[int, int, int]) -> None:
    """A faint security-print pattern: light wavy lines that OCR must ignore."""
    draw = ImageDraw.Draw(img)
    w, h = img.size
    for i in range(0, h + 200, 18):
        phase = rng.random() * 6.28
        points = [(x, i - 100 + 12 * math.sin(x / 60 + phase)) for x in range(0, w + 20, 20)]
        draw.line(points, fill=tint, width=1)


def _emblem(draw: ImageDraw.ImageDraw, center: tuple[int, int], radius: int) -> None:
    """A simplified national emblem: a red disc with a yellow five-pointed star."""
    cx, cy = center
    draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=(200, 30, 40))
    draw.ellipse(
        (cx - radius, cy - radius, cx + radius, cy + radius), outline=(230, 190, 40), width=4
    )
    star = []
    for k in range(10):
        r = radius * (0.6 if k % 2 == 0 else 0.24)
        angle = -math.pi / 2 + k * math.pi / 5
        star.append((cx + r * math.cos(angle), cy + r * math.sin(angle)))
    draw.polygon(star, fill=(250, 215, 50))


CARD_VARIANTS = ("2021", "2024")


def cccd_qr_payload(person: Person) -> str:
    """What the QR code on the front of a chip card carries:
    number|old number|name|date of birth|sex|address|issue date (dates as ddmmyyyy)."""
    return "|".join(
        (
            person.id_number,
            person.old_id_number,
            person.full_name,
            person.date_of_birth.strftime("%d%m%Y"),
            person.sex,
            person.place_of_residence,
            person.issue_date.strftime("%d%m%Y"),
        )
    )


def qr_image(payload: str, size: int) -> Image.Image:
    """A QR code (error correction M, one-module quiet zone) scaled to ``size`` pixels."""
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=1, box_size=1)
    code.add_data(payload.encode("utf-8"))
    code.make(fit=True)
    small = code.make_image().get_image().convert("L")
    return small.resize((size, size), Image.Resampling.NEAREST).convert("RGB")


def _card_qr(
    c: _Canvas, payload: str | None, damaged: bool, rng: random.Random, box: tuple[int, int, int]
) -> None:
    if payload is None:
        return
    x, y, size = box
    c.image.paste(qr_image(payload, size), (x, y))
    if damaged:  # a scratch or sticker over the code: too much for its error correction
        cx, cy = x + size // 2 + rng.randrange(-10, 10), y + size // 2 + rng.randrange(-10, 10)
        c.draw.rectangle(
            (cx - size // 3, cy - size // 3, cx + size // 3, cy + size // 3), fill=(240,) * 3
        )


def id_card_front(
    person: Person,
    seed: int = 0,
    *,
    variant: str = "2021",
    qr: bool = True,
    qr_payload: str | None = None,
    qr_damaged: bool = False,
) -> Rendered:
    """The front of a citizen identity card, about 1000 x 640 pixels.

    ``variant`` "2021" is the chip "CĂN CƯỚC CÔNG DÂN" card (number, name, birth date, sex,
    nationality, origin, residence, expiry); "2024" is the "CĂN CƯỚC" card, whose front carries
    the personal identification number, name, birth date, sex and nationality only. Both carry
    a QR code (``qr_payload`` overrides what it holds; ``qr_damaged`` covers part of it).
    """
    if variant not in CARD_VARIANTS:
        raise ValueError(f"unknown card variant {variant!r}: use one of {CARD_VARIANTS}")
    rng = random.Random(f"front:{seed}")
    background = (236 + rng.randrange(8), 244 + rng.randrange(6), 240 + rng.randrange(8))
    c = _Canvas(CARD_SIZE, background)
    _guilloche(c.image, rng, (background[0] - 14, background[1] - 10, background[2] - 6))
    value_face = rng.choice(_faces(SANS_BOLD, SERIF_BOLD, SANS_CONDENSED_BOLD))
    label_face = rng.choice(_faces(SANS, SERIF, SANS_CONDENSED, SERIF_CONDENSED))
    _emblem(c.draw, (105, 95), 62)

    mid = 540
    c.text((mid, 38), NATIONAL_NAME, font(SANS_BOLD, 24), anchor="mt")
    c.text((mid, 74), NATIONAL_MOTTO, font(SANS_BOLD, 23), anchor="mt")
    title = "CĂN CƯỚC CÔNG DÂN" if variant == "2021" else "CĂN CƯỚC"
    c.text((mid, 118), title, font(SANS_BOLD, 40), fill=(190, 20, 30), anchor="mt")
    if qr:
        payload = cccd_qr_payload(person) if qr_payload is None else qr_payload
        _card_qr(c, payload, qr_damaged, rng, (838, 14, 150))

    # Photo placeholder: a grey box with a head-and-shoulders silhouette.
    photo = (40, 200, 250, 470)
    c.draw.rectangle(photo, fill=(170, 170, 172), outline=(110, 110, 110), width=2)
    c.draw.ellipse((100, 240, 190, 340), fill=(135, 135, 138))
    c.draw.pieslice((70, 340, 220, 520), 180, 360, fill=(135, 135, 138))

    labels = font(label_face, 22)
    values = font(value_face, 29)
    x = 285
    room = CARD_SIZE[0] - x - 25
    if variant == "2021":
        right = c.text((x, 185), "Số / No.:", labels)[2]
        c.text((right + 24, 178), person.id_number, font(SANS_BOLD, 36), role="id_number")
        top = 235
    else:
        c.text((x, 180), "Số định danh cá nhân / Personal identification number:", labels)
        c.text((x, 212), person.id_number, font(SANS_BOLD, 36), role="id_number")
        top = 275
    c.text((x, top), "Họ và tên / Full name:", labels)
    name = person.full_name.upper()
    c.text((x, top + 31), name, fitted(value_face, 29, name, room), role="full_name")
    right = c.text((x, top + 85), "Ngày sinh / Date of birth:", labels)[2]
    c.text((right + 16, top + 81), _dmy(person.date_of_birth), values, role="date_of_birth")
    right = c.text((x, top + 127), "Giới tính / Sex:", labels)[2]
    right = c.text((right + 16, top + 123), person.sex, values, role="sex")[2]
    # The nationality column, or further right than a wide sex value in a wide face.
    right = c.text((max(x + 255, right + 36), top + 127), "Quốc tịch / Nationality:", labels)[2]
    c.text((right + 14, top + 123), person.nationality, values, role="nationality")
    if variant == "2024":
        return c.done()
    c.text((x, 404), "Quê quán / Place of origin:", labels)
    origin = person.place_of_origin
    c.text((x, 434), origin, fitted(value_face, 25, origin, room), role="place_of_origin")
    c.text((x, 480), "Nơi thường trú / Place of residence:", labels)
    first, rest = _split_address(person.place_of_residence)
    c.text((x, 510), first, fitted(value_face, 25, first, room), role="place_of_residence")
    if rest:
        c.text((x, 546), rest, fitted(value_face, 25, rest, room), role="place_of_residence")
    c.text((40, 500), "Có giá trị đến:", font(label_face, 19))
    c.text((40, 528), _dmy(person.expiry_date), font(value_face, 22), role="expiry_date")
    return c.done()


def _split_address(address: str) -> tuple[str, str]:
    """Split an address after its first comma-separated part that fits one card line."""
    parts = address.split(", ")
    if len(parts) < 3:
        return address, ""
    return ", ".join(parts[:2]) + ",", ", ".join(parts[2:])


def mrz_check_digit(text: str) -> str:
    """ICAO 9303 check digit (weights 7, 3, 1)."""
    total = 0
    for i, ch in enumerate(text):
        if ch.isdigit():
            v = int(ch)
        elif ch.isalpha():
            v = ord(ch) - ord("A") + 10
        else:
            v = 0
        total += v * (7, 3, 1)[i % 3]
    return str(total % 10)


def _ascii_upper(text: str) -> str:
    text = text.replace("Đ", "D").replace("đ", "d")
    stripped = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return stripped.upper()


def mrz_lines(person: Person) -> tuple[str, str, str]:
    """A TD1 machine-readable zone (3 lines of 30 characters) for ``person``."""
    doc = person.id_number[3:]  # 9 characters
    line1 = f"IDVNM{doc}{mrz_check_digit(doc)}{person.id_number}".ljust(30, "<")[:30]
    born = person.date_of_birth.strftime("%y%m%d")
    expiry = person.expiry_date.strftime("%y%m%d")
    sex = "M" if person.sex == "Nam" else "F"
    line2 = f"{born}{mrz_check_digit(born)}{sex}{expiry}{mrz_check_digit(expiry)}VNM".ljust(29, "<")
    composite = line1[5:30] + line2[0:7] + line2[8:15] + line2[18:29]
    line2 += mrz_check_digit(composite)
    names = _ascii_upper(f"{person.middle_name} {person.given_name}").split()
    line3 = (_ascii_upper(person.family_name) + "<<" + "<".join(names)).ljust(30, "<")[:30]
    return line1, line2, line3


MRZ_DEFECTS = ("number_check", "birth_check", "expiry_check", "composite_check", "other_person")


def broken_mrz(person: Person, defect: str) -> tuple[str, str, str]:
    """A TD1 zone for ``person`` with one deliberate defect: a wrong check digit for the
    document number, birth date, expiry or the whole zone ("..._check"), or a zone whose check
    digits are all right but that belongs to someone else ("other_person")."""
    line1, line2, line3 = mrz_lines(person)

    def bump(line: str, i: int) -> str:
        return line[:i] + str((int(line[i]) + 1) % 10) + line[i + 1 :]

    def recomposed(l1: str, l2: str) -> tuple[str, str, str]:
        """The composite digit made right again, so that only the intended digit is wrong."""
        composite = l1[5:30] + l2[0:7] + l2[8:15] + l2[18:29]
        return l1, l2[:29] + mrz_check_digit(composite), line3

    if defect == "number_check":
        return recomposed(bump(line1, 14), line2)
    if defect == "birth_check":
        return recomposed(line1, bump(line2, 6))
    if defect == "expiry_check":
        return recomposed(line1, bump(line2, 14))
    if defect == "composite_check":
        return line1, bump(line2, 29), line3
    if defect == "other_person":
        other = replace(
            person, id_number=person.id_number[:6] + _rotate_digits(person.id_number[6:])
        )
        return mrz_lines(other)
    raise ValueError(f"unknown MRZ defect {defect!r}: use one of {MRZ_DEFECTS}")


def _rotate_digits(digits: str) -> str:
    return "".join(str((int(d) + 3) % 10) for d in digits)


ID_DEFECTS = ("province", "century", "birth_year")


def broken_id_number(person: Person, defect: str) -> Person:
    """``person`` with a 12-digit number that breaks one structural rule: a province code that
    is not on the official list, a gender/century digit that contradicts sex and birth year,
    or birth-year digits that differ from the date of birth."""
    n = person.id_number
    if defect == "province":
        n = "003" + n[3:]  # 003 is not assigned to any province
    elif defect == "century":
        n = n[:3] + str((int(n[3]) + 1) % 10 if int(n[3]) % 2 == 0 else int(n[3]) - 1) + n[4:]
    elif defect == "birth_year":
        n = n[:4] + f"{(int(n[4:6]) + 7) % 100:02d}" + n[6:]
    else:
        raise ValueError(f"unknown ID number defect {defect!r}: use one of {ID_DEFECTS}")
    return replace(person, id_number=n)


def id_card_back(
    person: Person,
    seed: int = 0,
    *,
    variant: str = "2021",
    mrz: Sequence[str] | None = None,
) -> Rendered:
    """The back of the card with a TD1 MRZ (``mrz`` overrides its three lines).

    "2021": identifying mark, issue date, issuer, fingerprints. "2024": place of residence,
    place of birth registration, issue and expiry dates, issuer.
    """
    if variant not in CARD_VARIANTS:
        raise ValueError(f"unknown card variant {variant!r}: use one of {CARD_VARIANTS}")
    rng = random.Random(f"back:{seed}")
    background = (238 + rng.randrange(8), 242 + rng.randrange(6), 236 + rng.randrange(8))
    c = _Canvas(CARD_SIZE, background)
    _guilloche(c.image, rng, (background[0] - 12, background[1] - 12, background[2] - 8))
    labels = font(rng.choice(_faces(SANS, SERIF, SERIF_CONDENSED)), 21)
    value_face = rng.choice(_faces(SANS_BOLD, SERIF_BOLD, SANS_CONDENSED_BOLD))
    values = font(value_face, 26)

    if variant == "2021":
        c.text((40, 36), "Đặc điểm nhân dạng / Personal identification:", labels)
        c.text((40, 68), person.identifying_mark, values, role="identifying_mark")
        c.text((40, 118), "Ngày, tháng, năm / Date, month, year:", labels)
        c.text((470, 114), _dmy(person.issue_date), values, role="issue_date")
        c.text((40, 168), "CỤC TRƯỞNG CỤC CẢNH SÁT", font(SANS_BOLD, 22))
        c.text((40, 198), "QUẢN LÝ HÀNH CHÍNH VỀ TRẬT TỰ XÃ HỘI", font(SANS_BOLD, 22))
        c.text((40, 300), "Tô Văn Huệ", values, role="issuer_signature")
        c.draw.line([(60, 262), (120, 240), (170, 270), (230, 238)], fill=(40, 40, 160), width=3)
        for i, label in enumerate(("Ngón trỏ trái", "Ngón trỏ phải")):
            left = 620 + i * 190
            c.draw.rectangle((left, 150, left + 160, 330), outline=(90, 90, 90), width=2)
            for r in range(8, 70, 8):
                c.draw.ellipse((left + 80 - r, 240 - r, left + 80 + r, 240 + r), outline=(150,) * 3)
            c.text((left + 80, 338), label, font(SANS, 17), anchor="mt")
    else:
        room = CARD_SIZE[0] - 80
        c.text((40, 20), "Nơi cư trú / Place of residence:", labels)
        first, rest = _split_address(person.place_of_residence)
        c.text((40, 48), first, fitted(value_face, 26, first, room), role="place_of_residence")
        if rest:
            c.text((40, 80), rest, fitted(value_face, 26, rest, room), role="place_of_residence")
        c.text((40, 122), "Nơi đăng ký khai sinh / Place of birth:", labels)
        origin = person.place_of_origin
        c.text((40, 150), origin, fitted(value_face, 26, origin, room), role="place_of_birth")
        right = c.text((40, 198), "Ngày, tháng, năm cấp / Date of issue:", labels)[2]
        c.text((right + 16, 194), _dmy(person.issue_date), values, role="issue_date")
        right = c.text((40, 236), "Ngày, tháng, năm hết hạn / Date of expiry:", labels)[2]
        c.text((right + 16, 232), _dmy(person.expiry_date), values, role="expiry_date")
        c.text((40, 280), "BỘ CÔNG AN", font(SANS_BOLD, 22))
        c.text((40, 350), "Tô Văn Huệ", values, role="issuer_signature")
        c.draw.line([(60, 322), (120, 300), (170, 330), (230, 298)], fill=(40, 40, 160), width=3)

    # MRZ band on plain white, in a monospace face, as OCR-B would be printed.
    c.draw.rectangle((0, 420, CARD_SIZE[0], CARD_SIZE[1]), fill=(252, 252, 250))
    mono = font(MONO, 33)
    for i, line in enumerate(mrz_lines(person) if mrz is None else mrz):
        c.text((40, 448 + i * 58), line, mono, fill=(10, 10, 10), role="mrz")
    return c.done()


def a4_page(title: str, paragraphs: Sequence[str], dpi: int = 300, seed: int = 0) -> Rendered:
    """An A4 administrative page (2480 x 3508 at 300 dpi): national header, title, prose."""
    c, _ = _a4(title, [(p, "") for p in paragraphs], dpi, seed)
    return c.done()


def _a4(
    title: str, paragraphs: Sequence[tuple[str, str]], dpi: int, seed: int
) -> tuple[_Canvas, int]:
    """Lay out an A4 page; each paragraph is (text, role). Returns the canvas and the y below
    the last line drawn."""
    rng = random.Random(f"a4:{seed}")
    size = (round(A4_MM[0] / 25.4 * dpi), round(A4_MM[1] / 25.4 * dpi))
    c = _Canvas(size, (255, 255, 255))
    pt = dpi / 72  # pixels per typographic point
    body_name = rng.choice(_faces(SERIF, SANS, SERIF_CONDENSED))
    body = font(body_name, round(13 * pt))
    margin_x = round(0.9 * dpi)
    width = size[0] - 2 * margin_x
    mid = size[0] // 2
    y = round(0.7 * dpi)
    header = font(SERIF_BOLD, round(13 * pt))
    y = c.text((mid, y), NATIONAL_NAME, header, anchor="mt")[3] + round(10 * pt)
    box = c.text((mid, y), NATIONAL_MOTTO, header, anchor="mt")
    c.draw.line([(box[0], box[3] + 10), (box[2], box[3] + 10)], fill=(0, 0, 0), width=3)
    y = box[3] + round(40 * pt)
    y = c.text((mid, y), title, font(SERIF_BOLD, round(18 * pt)), anchor="mt")[3]
    y += round(28 * pt)
    line_height = round(13 * pt * 1.5)
    for paragraph, role in paragraphs:
        first = True
        for line in _wrap(paragraph, body, width - (round(24 * pt) if first else 0)):
            x = margin_x + (round(24 * pt) if first else 0)
            c.text((x, y), line, body, fill=(15, 15, 15), role=role)
            first = False
            y += line_height
            if y > size[1] - round(0.8 * dpi):
                return c, y
        y += round(6 * pt)
    return c, y


def _wrap(text: str, face: ImageFont.FreeTypeFont, width: int) -> list[str]:
    lines: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}" if current else word
        if current and face.getlength(candidate) > width:
            lines.append(current)
            current = word
        else:
            current = candidate
    if current:
        lines.append(current)
    return lines


def birth_certificate(
    person: Person, seed: int = 0, dpi: int = 300, *, seal: bool = True
) -> Rendered:
    """An extract of a birth certificate ("GIẤY KHAI SINH") for ``person``, signed and, unless
    ``seal`` is False, stamped with the registering office's red circular seal. The field
    values drawn are in :attr:`Rendered.fields`."""
    rng = random.Random(f"birth:{seed}")
    mother = f"{rng.choice(FAMILY_NAMES)} Thị {rng.choice(GIVEN_NAMES_FEMALE)}".upper()
    father = (
        f"{person.family_name} {rng.choice(MIDDLE_NAMES_MALE)} {rng.choice(GIVEN_NAMES_MALE)}"
    ).upper()
    province = person.place_of_residence.rsplit(", ", 1)[-1]
    place_of_birth = f"Bệnh viện Đa khoa tỉnh, {province}"
    registered = person.date_of_birth + timedelta(days=20)
    number = f"{rng.randrange(1, 400)}/{registered.year}"
    ward = person.place_of_residence.split(", ")[1]
    fields = {
        "registration_number": number,
        "full_name": person.full_name.upper(),
        "date_of_birth": _dmy(person.date_of_birth),
        "sex": person.sex,
        "place_of_birth": place_of_birth,
        "mother": mother,
        "father": father,
        "id_number": person.id_number,
    }
    paragraphs = [
        (f"Số: {number}", "registration_number"),
        (f"Họ, chữ đệm, tên: {fields['full_name']}", "full_name"),
        (f"Ngày, tháng, năm sinh: {fields['date_of_birth']}", "date_of_birth"),
        (f"Giới tính: {person.sex}. Dân tộc: Kinh. Quốc tịch: {person.nationality}", "sex"),
        (f"Nơi sinh: {place_of_birth}", "place_of_birth"),
        (f"Quê quán: {person.place_of_origin}", ""),
        (f"Số định danh cá nhân: {person.id_number}", "id_number"),
        (f"Họ, chữ đệm, tên người mẹ: {mother}. Dân tộc: Kinh. Quốc tịch: Việt Nam", "mother"),
        (f"Họ, chữ đệm, tên người cha: {father}. Dân tộc: Kinh. Quốc tịch: Việt Nam", "father"),
        (f"Nơi đăng ký: Ủy ban nhân dân {ward}", ""),
        (f"Ngày, tháng, năm đăng ký: {_dmy(registered)}", ""),
    ]
    c, y = _a4("GIẤY KHAI SINH", paragraphs, dpi, seed)
    pt = dpi / 72
    right_col = round(c.image.width * 0.62)
    y += round(14 * pt)
    c.text((right_col, y), "NGƯỜI KÝ GIẤY KHAI SINH", font(SERIF_BOLD, round(12 * pt)), anchor="mt")
    signer = (
        f"{rng.choice(FAMILY_NAMES)} {rng.choice(MIDDLE_NAMES_MALE)} {rng.choice(GIVEN_NAMES_MALE)}"
    )
    sig_y = y + round(70 * pt)
    c.draw.line(
        [(right_col - 90, sig_y - 40), (right_col - 20, sig_y - 80), (right_col + 60, sig_y - 30)],
        fill=(30, 30, 120),
        width=max(2, round(pt)),
    )
    c.text((right_col, sig_y), signer, font(SERIF_BOLD, round(13 * pt)), anchor="mt")
    if seal:
        radius = round(17 * dpi / 25.4)  # a 34 mm seal
        center = (right_col - radius // 2 + rng.randrange(-20, 20), sig_y - radius // 3)
        draw_seal(c.image, center, radius, f"ỦY BAN NHÂN DÂN {_ascii_upper(ward)}", rng)
    return Rendered(c.image, tuple(c.lines), fields)


SEAL_RED = (210, 35, 45)


def draw_seal(
    image: Image.Image, center: tuple[int, int], radius: int, text: str, rng: random.Random
) -> None:
    """A red circular office seal: two rings, text around the rim, a star in the middle, laid
    over what is beneath it as stamp ink is (darkening, not covering)."""
    size = 2 * radius + 4
    ink = Image.new("L", (size, size), 0)
    d = ImageDraw.Draw(ink)
    cx = cy = size // 2
    ring = max(3, radius // 22)
    d.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), outline=255, width=ring)
    inner = round(radius * 0.62)
    d.ellipse(
        (cx - inner, cy - inner, cx + inner, cy + inner), outline=255, width=max(2, ring // 2)
    )
    star = []
    for k in range(10):
        r = inner * (0.45 if k % 2 == 0 else 0.18)
        angle = -math.pi / 2 + k * math.pi / 5
        star.append((cx + r * math.cos(angle), cy + r * math.sin(angle)))
    d.polygon(star, fill=255)
    glyph_font = font(SANS_BOLD, max(8, round(radius * 0.17)))
    rim = (radius + inner) / 2
    letters = text[:40]
    for i, ch in enumerate(letters):
        angle = math.pi + (i + 0.5) / len(letters) * 2 * math.pi * 0.9 + math.pi * 0.05
        g = round(glyph_font.size)
        glyph = Image.new("L", (g * 2, g * 2), 0)
        ImageDraw.Draw(glyph).text((g, g), ch, 255, glyph_font, "mm")
        glyph = glyph.rotate(-math.degrees(angle) - 90, resample=Image.Resampling.BILINEAR)
        gx = round(cx + rim * math.cos(angle) - glyph.width / 2)
        gy = round(cy + rim * math.sin(angle) - glyph.height / 2)
        ink.paste(255, (gx, gy), glyph)
    ink = ink.point(lambda v: round(v * (0.85 + 0.15 * rng.random())))
    region = (center[0] - cx, center[1] - cy)
    patch = image.crop((region[0], region[1], region[0] + size, region[1] + size))
    base = np.asarray(patch, dtype=np.float32)
    alpha = (np.asarray(ink, dtype=np.float32) / 255.0)[..., None]
    red = np.array(SEAL_RED, dtype=np.float32)
    stamped = base * (1 - alpha) + np.minimum(base, red) * alpha  # multiply-like ink
    image.paste(Image.fromarray(stamped.astype(np.uint8), "RGB"), region)


def confidential_stamp(doc: Rendered, seed: int = 0) -> Rendered:
    """``doc`` stamped "MẬT" (confidential) in a red frame near its top left, as a state
    secret document is marked; such a page may not be certified."""
    rng = random.Random(f"secret:{seed}")
    image = doc.image.convert("RGB").copy()
    draw = ImageDraw.Draw(image)
    size = max(28, image.width // 22)
    face = font(SANS_BOLD, size)
    x = round(image.width * (0.05 + 0.03 * rng.random()))
    y = round(image.height * (0.03 + 0.02 * rng.random())) + (size if image.width > 1500 else 0)
    box = draw.textbbox((x, y), "MẬT", face)
    pad = size // 4
    draw.rectangle(
        (box[0] - pad, box[1] - pad, box[2] + pad, box[3] + pad),
        outline=SEAL_RED,
        width=max(3, size // 10),
    )
    draw.text((x, y), "MẬT", font=face, fill=SEAL_RED)
    left, top, right, bottom = (round(v) for v in box)
    line = TextLine("MẬT", (left, top, right, bottom), "confidential")
    return Rendered(image, (*doc.lines, line), dict(doc.fields))


def rotated(doc: Rendered, degrees: int) -> Rendered:
    """``doc`` turned by 90, 180 or 270 degrees counter-clockwise, as a page put in the wrong
    way round; the ground-truth boxes are dropped (the text is unchanged)."""
    if degrees % 90 or degrees % 360 == 0:
        raise ValueError("degrees must be 90, 180 or 270")
    turned = doc.image.rotate(degrees, expand=True)
    return Rendered(
        turned, tuple(TextLine(t.text, (0, 0, 0, 0), t.role) for t in doc.lines), dict(doc.fields)
    )


def cut_off(doc: Rendered, keep: float = 0.5, side: str = "bottom") -> Rendered:
    """``doc`` with only ``keep`` of it left: the part beyond is missing, as when a card is
    half outside the scanner window ("bottom" or "right" is lost). Lines not wholly kept are
    dropped from the ground truth."""
    w, h = doc.image.size
    if side == "bottom":
        box = (0, 0, w, max(1, round(h * keep)))
    elif side == "right":
        box = (0, 0, max(1, round(w * keep)), h)
    else:
        raise ValueError("side must be 'bottom' or 'right'")
    lines = tuple(t for t in doc.lines if t.box[2] <= box[2] and t.box[3] <= box[3])
    return Rendered(doc.image.crop(box), lines, {})


def blank_page(size: tuple[int, int] = (1240, 1754), seed: int = 0) -> Rendered:
    """An empty sheet as a scanner sees it: off-white paper, faint noise, no text."""
    rng = np.random.default_rng(seed)
    w, h = size
    paper = 246 + rng.normal(0.0, 2.0, (h, w, 1)) + np.linspace(-3, 3, w)[None, :, None]
    arr = np.clip(np.repeat(paper, 3, axis=2), 0, 255).astype(np.uint8)
    return Rendered(Image.fromarray(arr, "RGB"), ())


def scene_photo(seed: int = 0, size: tuple[int, int] = (1200, 900)) -> Rendered:
    """A photograph of something that is not a document: sky, ground, a few shapes, noise."""
    rng = random.Random(f"scene:{seed}")
    w, h = size
    horizon = round(h * rng.uniform(0.4, 0.65))
    ys = np.arange(h, dtype=np.float32)[:, None, None]
    sky = np.array([110, 160, 230], np.float32) + ys / h * np.array([80, 60, 20], np.float32)
    ground = np.array([70, 120, 50], np.float32) + (ys - horizon) / h * 60
    arr = np.where(ys < horizon, sky, ground) * np.ones((1, w, 1), np.float32)
    image = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(rng.randrange(4, 9)):
        x, y = rng.randrange(w), rng.randrange(horizon - 80, h)
        r = rng.randrange(30, 160)
        colour = tuple(rng.randrange(30, 220) for _ in range(3))
        if rng.random() < 0.5:
            draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
        else:
            draw.rectangle((x - r, y - 2 * r, x + r, y), fill=colour)
    noisy = degrade(image, noise=6.0, blur=1.2, seed=seed)
    assert isinstance(noisy, Image.Image)
    return Rendered(noisy, ())


LETTER_PARAGRAPHS = (
    "Kính gửi: Ủy ban nhân dân phường nơi tôi đang cư trú.",
    "Tôi tên là {name}, sinh ngày {born}, số định danh cá nhân {number}, hiện thường trú tại "
    "{residence}.",
    "Căn cứ Nghị định số 23/2015/NĐ-CP của Chính phủ về cấp bản sao từ sổ gốc, chứng thực bản sao "
    "từ bản chính, chứng thực chữ ký và chứng thực hợp đồng, giao dịch, tôi đề nghị Ủy ban nhân "
    "dân phường chứng thực bản sao điện tử từ bản chính các giấy tờ kèm theo đơn này.",
    "Các giấy tờ gồm: căn cước công dân, giấy khai sinh và sổ hộ khẩu của gia đình. Tôi cam đoan "
    "các giấy tờ trên là bản chính do cơ quan có thẩm quyền cấp, không bị tẩy xóa, sửa chữa hay "
    "làm giả dưới bất kỳ hình thức nào.",
    "Bản sao được chứng thực sẽ dùng để hoàn thiện hồ sơ đăng ký nhập học cho con tôi tại trường "
    "tiểu học trên địa bàn. Tôi xin chịu hoàn toàn trách nhiệm trước pháp luật về tính hợp pháp "
    "của các giấy tờ đã xuất trình.",
    "Trân trọng cảm ơn.",
)


def admin_letter(person: Person, seed: int = 0, dpi: int = 300) -> Rendered:
    """A citizen's request letter to the ward, several paragraphs of Vietnamese prose."""
    fields = {
        "name": person.full_name,
        "born": _dmy(person.date_of_birth),
        "number": person.id_number,
        "residence": person.place_of_residence,
    }
    paragraphs = [p.format(**fields) for p in LETTER_PARAGRAPHS]
    return a4_page("ĐƠN ĐỀ NGHỊ CHỨNG THỰC BẢN SAO", paragraphs, dpi=dpi, seed=seed)


def _image(img: Image.Image | Rendered) -> Image.Image:
    return img.image if isinstance(img, Rendered) else img


def encode(
    img: Image.Image | Rendered, fmt: str = "jpeg", quality: int = 90, **info: object
) -> bytes:
    """Encode as a kiosk would send it: "jpeg", "png" or "tiff" (extra keywords go to Pillow)."""
    image = _image(img)
    fmt = fmt.lower()
    out = io.BytesIO()
    if fmt in ("jpeg", "jpg"):
        rgb = image if image.mode in ("RGB", "L", "CMYK") else image.convert("RGB")
        rgb.save(out, "JPEG", quality=quality, **info)
    elif fmt == "png":
        image.save(out, "PNG", **info)
    elif fmt in ("tiff", "tif"):
        image.save(out, "TIFF", compression=info.pop("compression", "tiff_lzw"), **info)
    else:
        raise ValueError(f"unsupported format {fmt!r}: use jpeg, png or tiff")
    return out.getvalue()


def degrade(
    img: Image.Image | Rendered,
    *,
    skew_deg: float = 0.0,
    noise: float = 0.0,
    blur: float = 0.0,
    shade: float = 0.0,
    jpeg_quality: int | None = None,
    seed: int = 0,
) -> Image.Image | bytes:
    """Make a clean render look captured: rotate, blur, light it unevenly (``shade``: the
    fraction of brightness lost in the darkest corner), add sensor noise (std dev in grey
    levels), and optionally JPEG-encode. Returns bytes when ``jpeg_quality`` is given."""
    image = _image(img).convert("RGB")
    if skew_deg:
        image = image.rotate(
            skew_deg, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=(255, 255, 255)
        )
    if blur:
        image = image.filter(ImageFilter.GaussianBlur(blur))
    if shade:
        w, h = image.size
        gx = np.linspace(0.0, 1.0, w, dtype=np.float32)[None, :]
        gy = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None]
        light = 1.0 - shade * (gx * 0.6 + gy * 0.4)
        arr = np.asarray(image, dtype=np.float32) * light[..., None]
        image = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")
    if noise:
        rng = np.random.default_rng(seed)
        arr = np.asarray(image, dtype=np.float32)
        arr = arr + rng.normal(0.0, noise, arr.shape).astype(np.float32)
        image = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")
    if jpeg_quality is not None:
        return encode(image, "jpeg", jpeg_quality)
    return image


def reference_dossier(seed: int = 0) -> list[tuple[str, bytes]]:
    """The benchmark's reference dossier: ID card front and back (JPEG, ~1000 x 640) and two
    A4 pages at 300 dpi (JPEG quality 90), slightly skewed, noisy and blurred as a kiosk camera
    captures them, as (filename, file bytes)."""
    return [(name, data) for name, data, _ in reference_dossier_with_truth(seed)]


def reference_dossier_with_truth(seed: int = 0) -> list[tuple[str, bytes, Rendered]]:
    """:func:`reference_dossier` with each page's ground truth."""
    person = random_person(seed)
    pages = [
        ("cccd_front.jpg", id_card_front(person, seed), {}),
        ("cccd_back.jpg", id_card_back(person, seed), {}),
        ("giay_khai_sinh.jpg", birth_certificate(person, seed), {"dpi": (300, 300)}),
        ("don_de_nghi.jpg", admin_letter(person, seed), {"dpi": (300, 300)}),
    ]
    # Captured as a kiosk camera would: a slight skew, sensor noise, a touch of blur, JPEG.
    rng = random.Random(seed)
    out = []
    for i, (name, rendered, info) in enumerate(pages):
        captured = degrade(
            rendered, skew_deg=rng.uniform(-0.8, 0.8), noise=3.0, blur=0.4, seed=seed + i
        )
        assert isinstance(captured, Image.Image)
        out.append((name, encode(captured, "jpeg", 90, **info), rendered))
    return out
