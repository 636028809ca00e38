"""The quality gate on captures as kiosks deliver them: tight crops, wrong DPI tags, glare over
text, camera blur. Each failure class is shown both ways: a capture that must pass, and one
that must be refused. Pages are drawn here: a card-like and an A4-like page with text lines in
DejaVu Sans, at a chosen resolution."""

from __future__ import annotations

import io
import random

import cv2
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from saoy.clients.sdk import PageRejectedError
from saoy.clients.simulator import docgen
from saoy.clients.simulator.corpus import a4_page, bad_capture, card_dossier
from saoy.core.pages.admission import (
    Limits,
    admit,
    quality_issues,
    resolution_for,
    resolution_issue,
)
from saoy.core.pages.imaging import frame_is_document, prepare
from tests.conftest import RunningServer

FONTS = "/usr/share/fonts/truetype/dejavu/"
CARD_MM = (85.6, 53.98)
A4_MM = (210.0, 297.0)
DESK = (38, 40, 46)
TEXT = (
    "Cộng hòa xã hội chủ nghĩa Việt Nam độc lập tự do hạnh phúc căn cước công dân họ và tên "
    "ngày sinh giới tính quốc tịch quê quán nơi thường trú có giá trị đến số định danh cá "
    "nhân Hà Nội Đống Đa phường Láng Hạ nguyễn trần lê phạm"
)
WORDS = TEXT.split()
LIMITS = Limits(min_side=100)  # the gate's own verdict on small images, not admission's


def _face(px: float, bold: bool = False) -> ImageFont.FreeTypeFont:
    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    return ImageFont.truetype(FONTS + name, max(6, round(px)))


def _qr(draw: ImageDraw.ImageDraw, x: float, y: float, size: float, rng: random.Random) -> None:
    """A QR-code-like block: finder squares and random modules, pure white between them."""
    n = 29
    m = size / n
    draw.rectangle((x, y, x + size, y + size), fill=(255, 255, 255))
    for r in range(n):
        for c in range(n):
            corner = (r < 7 or r >= n - 7) and (c < 7 or c >= n - 7) and not (r >= 7 and c >= 7)
            on = (
                max(abs(r % (n - 7) - 3), abs(c % (n - 7) - 3)) != 2
                if corner
                else rng.random() < 0.5
            )
            if on:
                box = (x + c * m, y + r * m, x + (c + 1) * m - 1, y + (r + 1) * m - 1)
                draw.rectangle(box, fill=(10, 10, 10))


def card(dpi: float, seed: int = 0) -> Image.Image:
    """A card-like page 85.6 x 53.98 mm at ``dpi``: tinted, a title, a photo, a QR code, text."""
    mm = dpi / 25.4
    img = Image.new("RGB", (round(CARD_MM[0] * mm), round(CARD_MM[1] * mm)), (226, 234, 232))
    d = ImageDraw.Draw(img)
    rng = random.Random(seed)
    w = img.width
    d.text((w / 2, 3 * mm), "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", font=_face(2.4 * mm, True),
           fill=(20, 20, 20), anchor="mt")  # fmt: skip
    d.text((w / 2, 10 * mm), "CĂN CƯỚC CÔNG DÂN", font=_face(3.4 * mm, True),
           fill=(190, 25, 35), anchor="mt")  # fmt: skip
    d.rectangle((4 * mm, 17 * mm, 24 * mm, 43 * mm), fill=(165, 165, 168))
    _qr(d, 66 * mm, 2.5 * mm, 16 * mm, rng)
    body = _face(2.1 * mm)
    for i in range(7):
        text = " ".join(rng.choice(WORDS) for _ in range(5))
        d.text((28 * mm, (17 + i * 4.8) * mm), text, font=body, fill=(25, 25, 25))
    return img


def a4(dpi: float, seed: int = 0) -> Image.Image:
    """An A4 page at ``dpi``: a title, paragraphs of justified 11 pt lines, a QR code below."""
    mm = dpi / 25.4
    img = Image.new("RGB", (round(A4_MM[0] * mm), round(A4_MM[1] * mm)), (238, 238, 234))
    d = ImageDraw.Draw(img)
    rng = random.Random(seed)
    d.text((img.width / 2, 20 * mm), "QUYẾT ĐỊNH VỀ VIỆC CẤP GIẤY CHỨNG NHẬN",
           font=_face(5 * mm, True), fill=(15, 15, 15), anchor="mt")  # fmt: skip
    body = _face(3.9 * mm)
    y = 40 * mm
    while y < 245 * mm:
        for _ in range(rng.randint(4, 8)):
            words: list[str] = []
            while d.textlength(" ".join(words), font=body) < 150 * mm:
                words.append(rng.choice(WORDS))
            d.text((25 * mm, y), " ".join(words[:-1]), font=body, fill=(15, 15, 15))
            y += 5.8 * mm
        d.text((25 * mm, y), " ".join(rng.choice(WORDS) for _ in range(3)), font=body,
               fill=(15, 15, 15))  # fmt: skip
        y += 9.8 * mm
    _qr(d, 160 * mm, 262 * mm, 25 * mm, rng)
    return img


def rounded(img: Image.Image, dpi: float, rim_px: int = 2) -> Image.Image:
    """The card's rounded corners (3.18 mm) and the dark rim its edge casts in a scanner."""
    w, h = img.size
    radius = 3.18 * dpi / 25.4
    out = Image.new("RGB", (w, h), DESK)
    mask = Image.new("L", (w, h), 0)
    ImageDraw.Draw(mask).rounded_rectangle((0, 0, w - 1, h - 1), radius, fill=255)
    out.paste(img, (0, 0), mask)
    if rim_px:
        ImageDraw.Draw(out).rounded_rectangle(
            (0, 0, w - 1, h - 1), radius, outline=(70, 72, 78), width=rim_px
        )
    return out


def tight(img: Image.Image, angle: float = 0.4) -> Image.Image:
    """Cropped edge to edge as a kiosk driver does: a hair of rotation leaves slivers of the
    scanner bed at the edges."""
    w, h = img.size
    bed = Image.new("RGB", (w + 40, h + 40), DESK)
    bed.paste(img, (20, 20))
    bed = bed.rotate(angle, resample=Image.Resampling.BICUBIC, fillcolor=DESK)
    return bed.crop((20, 20, 20 + w, 20 + h))


def on_desk(img: Image.Image, margin: float = 0.08) -> Image.Image:
    w, h = img.size
    mx, my = round(w * margin), round(h * margin)
    desk = Image.new("RGB", (w + 2 * mx, h + 2 * my), DESK)
    desk.paste(img, (mx, my))
    return desk


def glare(img: Image.Image, cx: float, cy: float, rx: float, ry: float) -> Image.Image:
    """A reflection: saturated inside the ellipse, fading over a halo of 0.6 of its radii."""
    arr = np.asarray(img, dtype=np.float32)
    yy, xx = np.mgrid[0 : arr.shape[0], 0 : arr.shape[1]]
    r = np.sqrt(((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2)
    alpha = np.clip((1.6 - r) / 0.6, 0, 1)[..., None]
    return Image.fromarray((arr * (1 - alpha) + 255 * alpha).astype(np.uint8))


def encode(img: Image.Image, dpi: float | None = None, quality: int = 92) -> bytes:
    out = io.BytesIO()
    params: dict[str, object] = {"quality": quality}
    if dpi:
        params["dpi"] = (dpi, dpi)
    img.save(out, "JPEG", **params)
    return out.getvalue()


def gate(img: Image.Image, dpi: float | None = None, quality: int = 92) -> list[str]:
    return _reasons(encode(img, dpi, quality))


def _reasons(data: bytes) -> list[str]:
    """The quality gate's reasons for a file as captured."""
    page = admit(0, data, LIMITS)
    return [issue.reason for issue in quality_issues(page, prepare(page))]


# 1. Tight crops ------------------------------------------------------------------------------


@pytest.mark.parametrize("dpi", [200, 300, 392, 600])
def test_a_card_cropped_edge_to_edge_is_not_cut_off(dpi: int) -> None:
    for angle in (0.4, -0.25):
        shot = tight(rounded(card(dpi), dpi, rim_px=max(1, 2 * dpi // 300)), angle)
        page = admit(0, encode(shot), LIMITS)
        prepared = prepare(page)
        assert not prepared.cut_off, (dpi, angle)
        assert prepared.document == "id_card"
        assert prepared.dpi_estimate == pytest.approx(dpi, rel=0.04)
        assert quality_issues(page, prepared) == [], (dpi, angle)


def test_a_card_with_a_margin_passes_and_is_cropped() -> None:
    page = admit(0, encode(on_desk(card(300))), LIMITS)
    prepared = prepare(page)
    assert quality_issues(page, prepared) == []
    assert prepared.quad is not None and prepared.document == "id_card"


def test_a_card_a_third_outside_the_photo_is_cut_off() -> None:
    shot = on_desk(card(300))
    w, h = shot.size
    cut = shot.crop((0, 0, w - round(w * 0.08) - card(300).width // 3, h))
    assert gate(cut)[0] == "CUT_OFF"


def test_a_card_cut_by_a_third_edge_to_edge_is_cut_off() -> None:
    whole = card(300)
    assert gate(whole.crop((0, 0, whole.width, whole.height * 2 // 3)))[0] == "CUT_OFF"


def test_a_frame_of_document_shape_showing_background_is_not_the_document() -> None:
    # Card-shaped frame, but the desk shows along three sides: the document runs off the
    # fourth, so it is not a tight crop.
    shot = on_desk(card(300), margin=0.2)
    w = shot.width
    frame = shot.crop((w // 3, 0, w, round((w - w // 3) / 1.586)))
    gray = np.ascontiguousarray(np.asarray(frame.convert("L")))
    assert not frame_is_document(gray, 120)
    assert frame_is_document(np.ascontiguousarray(np.asarray(card(300).convert("L"))), 120)


# 2. Resolution from the document's physical size ---------------------------------------------


def test_a_card_at_392_dpi_tagged_137_dpi_passes() -> None:
    assert gate(tight(rounded(card(392), 392)), dpi=137) == []


@pytest.mark.parametrize("dpi", [200, 300])
def test_a_card_at_200_dpi_and_more_passes(dpi: int) -> None:
    assert gate(card(dpi)) == []


def test_a_card_400_px_wide_has_low_resolution() -> None:
    small = card(392).resize((400, 252), Image.Resampling.LANCZOS)
    assert gate(small) == ["LOW_RESOLUTION"]
    assert gate(small, dpi=300) == ["LOW_RESOLUTION"]  # the tag does not save it either


def test_an_a4_page_at_100_dpi_has_low_resolution_and_at_200_passes() -> None:
    assert gate(a4(100)) == ["LOW_RESOLUTION"]
    assert gate(a4(200)) == []


def test_resolution_for_a_known_document_type() -> None:
    assert resolution_for("cccd_front", 1321, 833) == pytest.approx(392, abs=0.5)
    assert resolution_for("cccd_back", 833, 1321) == pytest.approx(392, abs=0.5)
    assert resolution_for("birth_certificate", 2480, 3508) == pytest.approx(300, abs=0.5)
    assert resolution_for("generic", 2480, 3508) is None
    assert resolution_issue("cccd_front", 1321, 833) is None
    low = resolution_issue("cccd_front", 400, 252)
    assert low is not None and low.reason == "LOW_RESOLUTION" and "about 119 dpi" in low.message
    assert resolution_issue("birth_certificate", 827, 1169) is not None
    with pytest.raises(ValueError):
        resolution_for("cccd_front", 0, 10)


# 3. Glare over text, wherever it sits --------------------------------------------------------

MM300 = 300 / 25.4


@pytest.fixture(scope="module")
def page300() -> Image.Image:
    return a4(300)


@pytest.mark.parametrize(
    ("cx", "cy", "rx", "ry"),
    [
        (105, 148, 8, 17),  # six lines of the body, in the middle, narrow
        (105, 148, 30, 17),  # six lines, wide
        (60, 90, 10, 17),  # higher up and to the left, still in the body
        (170, 150, 15, 17),  # over the ends of the lines, on the right
        (30, 150, 12, 17),  # over the starts of the lines, on the left
    ],
)
def test_glare_over_text_is_refused_wherever_it_sits(
    page300: Image.Image, cx: float, cy: float, rx: float, ry: float
) -> None:
    shot = glare(page300, cx * MM300, cy * MM300, rx * MM300, ry * MM300)
    assert gate(shot) == ["GLARE"]


@pytest.mark.parametrize(
    ("cx", "cy", "rx", "ry"),
    [
        (12, 148, 9, 20),  # the left margin
        (12, 148, 11, 40),  # the left margin, large
        (105, 10, 60, 8),  # the top margin
        (140, 256, 12, 3),  # between the body and the QR code
    ],
)
def test_glare_over_a_blank_margin_passes(
    page300: Image.Image, cx: float, cy: float, rx: float, ry: float
) -> None:
    shot = glare(page300, cx * MM300, cy * MM300, rx * MM300, ry * MM300)
    assert gate(shot) == []


def test_a_qr_codes_white_modules_are_not_glare() -> None:
    # Large modules, pure white between them, on a page of text.
    page = a4(300, seed=4)
    _qr(ImageDraw.Draw(page), 70 * MM300, 120 * MM300, 70 * MM300, random.Random(4))
    assert gate(page) == []


def test_glare_on_a_card_small_highlight_passes_reflection_over_text_refused() -> None:
    shot = card(300)
    w, h = shot.size
    assert gate(glare(shot, w * 0.6, h * 0.45, h * 0.04, h * 0.04)) == []
    assert gate(glare(shot, w * 0.6, h * 0.45, h * 0.15, h * 0.15)) == ["GLARE"]


# Focus against camera-like captures ----------------------------------------------------------


def _motion(img: Image.Image, length: int) -> Image.Image:
    """Horizontal motion blur over ``length`` pixels."""
    arr = np.asarray(img, dtype=np.float32)
    out = np.zeros_like(arr)
    for dx in range(length):
        out += np.roll(arr, dx - length // 2, axis=1)
    return Image.fromarray((out / length).astype(np.uint8))


@pytest.mark.parametrize("blur", [0.6, 1.0])
def test_mild_blur_and_jpeg_75_pass(blur: float) -> None:
    assert gate(card(300).filter(ImageFilter.GaussianBlur(blur)), quality=75) == []
    assert gate(a4(300).filter(ImageFilter.GaussianBlur(blur)), quality=75) == []


@pytest.mark.parametrize("length", [12, 20])
def test_strong_motion_blur_is_refused(length: int) -> None:
    assert "BLURRED" in gate(_motion(card(300), length), quality=75)
    assert "BLURRED" in gate(_motion(a4(300), length), quality=75)


# Through a real server -----------------------------------------------------------------------


def test_the_server_accepts_a_tight_card_tagged_137_dpi_and_refuses_glare_over_text(
    server: RunningServer,
) -> None:
    shot = encode(tight(rounded(card(392), 392)), dpi=137)
    events = []
    with server.client(kiosk_id="kiosk-captures") as client:
        result = client.certify(
            [shot], session_token=server.token("kiosk-captures"), on_event=events.append
        )
    kinds = [e.WhichOneof("event") for e in events]
    assert "page_accepted" in kinds and "page_rejected" not in kinds, kinds
    assert result.state in ("ISSUED", "NEEDS_REVIEW", "REJECTED")

    page = a4(300)
    glared = encode(glare(page, 105 * MM300, 148 * MM300, 10 * MM300, 17 * MM300))
    with (
        server.client(kiosk_id="kiosk-captures") as client,
        pytest.raises(PageRejectedError) as refused,
    ):
        client.certify([glared], session_token=server.token("kiosk-captures"))
    assert refused.value.rejection.reason == "GLARE"
    assert "avoid glare" in refused.value.rejection.message


# 4. A camera shot cropped to the card: desk slivers at the frame's edges -----------------------


def _homography(src: list[tuple[float, float]], dst: list[tuple[float, float]]) -> np.ndarray:
    rows, rhs = [], []
    for (x, y), (u, v) in zip(src, dst, strict=True):
        rows += [[x, y, 1, 0, 0, 0, -u * x, -u * y], [0, 0, 0, x, y, 1, -v * x, -v * y]]
        rhs += [u, v]
    return np.append(np.linalg.solve(np.array(rows, float), np.array(rhs, float)), 1).reshape(3, 3)


def camera_crop(
    img: Image.Image, angle: float, pull: tuple[float, ...], inset: float = 0.005
) -> Image.Image:
    """A photo of ``img`` on the dark desk, turned ``angle`` degrees, in perspective (each corner
    pulled in by its ``pull`` fraction of the size), cropped to the corners' bounding box less
    ``inset`` of it: wedges of the desk are left along the frame's edges."""
    w, h = img.size
    t = np.radians(angle)
    quad = []
    for (ux, uy), k in zip(((-1, -1), (1, -1), (1, 1), (-1, 1)), pull, strict=True):
        x, y = ux * w / 2 * (1 - k), uy * h / 2 * (1 - k)
        quad.append((x * np.cos(t) - y * np.sin(t), x * np.sin(t) + y * np.cos(t)))
    xs, ys = [q[0] for q in quad], [q[1] for q in quad]
    x0, x1 = min(xs) + inset * (max(xs) - min(xs)), max(xs) - inset * (max(xs) - min(xs))
    y0, y1 = min(ys) + inset * (max(ys) - min(ys)), max(ys) - inset * (max(ys) - min(ys))
    frame = [(x - x0, y - y0) for x, y in quad]
    to_card = _homography(frame, [(0, 0), (w, 0), (w, h), (0, h)])
    size = (round(x1 - x0), round(y1 - y0))
    shot = img.transform(size, Image.Transform.PERSPECTIVE, tuple(to_card.ravel()[:8]),
                         Image.Resampling.BICUBIC, fillcolor=DESK)  # fmt: skip
    return shot.filter(ImageFilter.GaussianBlur(0.6))


CAMERA = [(3.0, (0.0, 0.02, 0.01, 0.0)), (-2.5, (0.015, 0.0, 0.0, 0.02)), (1.2, (0.01,) * 4)]


@pytest.mark.parametrize(("angle", "pull"), CAMERA)
def test_a_camera_shot_cropped_to_the_card_is_not_cut_off(
    angle: float, pull: tuple[float, ...]
) -> None:
    shot = camera_crop(rounded(card(300, seed=2), 300), angle, pull)
    page = admit(0, encode(shot, quality=85), LIMITS)
    prepared = prepare(page)
    assert not prepared.cut_off and prepared.document == "id_card"
    assert prepared.dpi_estimate == pytest.approx(300, rel=0.06)
    assert quality_issues(page, prepared) == []


@pytest.mark.parametrize("side", ["left", "right"])
def test_a_camera_shot_cropped_through_the_card_is_cut_off(side: str) -> None:
    shot = camera_crop(rounded(card(300, seed=2), 300), *CAMERA[0])
    w, h = shot.size
    box = (w // 3, 0, w, h) if side == "left" else (0, 0, w - w // 3, h)
    assert gate(shot.crop(box))[0] == "CUT_OFF"


def _smear(img: Image.Image, length: int) -> Image.Image:
    """Horizontal motion blur over ``length`` pixels, the frame's edge columns repeated (what
    lies beyond the frame is not the other edge's desk, as ``np.roll`` would make it)."""
    arr = np.pad(np.asarray(img, np.float32), ((0, 0), (length, length), (0, 0)), mode="edge")
    w = img.width
    out = sum(
        arr[:, length + dx - length // 2 : length + dx - length // 2 + w] for dx in range(length)
    )
    return Image.fromarray((np.asarray(out) / length).astype(np.uint8))


def test_motion_blur_on_a_camera_crop_is_blurred_not_cut_off() -> None:
    shot = camera_crop(rounded(card(300, seed=3), 300), *CAMERA[1])
    assert gate(shot) == []
    assert gate(_smear(shot, 14), quality=80) == ["BLURRED"]


def _smear_at(img: Image.Image, length: int, degrees: float) -> Image.Image:
    """Motion blur over ``length`` pixels along ``degrees`` (counter-clockwise from across),
    the frame's edges mirrored beyond it."""
    line = Image.new("F", (length + 2, length + 2), 0.0)
    a = np.radians(degrees)
    c, r = (length + 1) / 2, (length - 1) / 2
    end = (r * np.cos(a), -r * np.sin(a))
    ImageDraw.Draw(line).line((c - end[0], c - end[1], c + end[0], c + end[1]), fill=1.0)
    kernel = np.array(line, dtype=np.float32)
    kernel /= kernel.sum()
    arr = np.asarray(img, dtype=np.float32)
    out = np.stack(
        [cv2.filter2D(arr[..., k], -1, kernel, borderType=cv2.BORDER_REFLECT) for k in range(3)],
        axis=-1,
    )
    return Image.fromarray(np.clip(out, 0, 255).astype(np.uint8))


@pytest.mark.parametrize("degrees", [30.0, 45.0, 60.0, 120.0, 150.0])
def test_motion_blur_at_any_angle_is_refused_as_blurred(degrees: float) -> None:
    assert gate(_smear_at(card(300), 12, degrees), quality=80) == ["BLURRED"]
    assert gate(_smear_at(a4(300), 12, degrees), quality=80) == ["BLURRED"]
    # A smear of a pixel or two, as a steady hand leaves, passes.
    assert gate(_smear_at(card(300), 3, degrees), quality=80) == []


@pytest.mark.parametrize(("camera", "degrees", "length"), [(1, 0.0, 20), (0, 35.0, 30)])
def test_a_smeared_camera_crop_is_named_blurred_before_anything_else(
    camera: int, degrees: float, length: int
) -> None:
    """A smear drags the card's edge over the frame's: whether or not the card is cut off
    then, the citizen is asked to hold still first."""
    shot = camera_crop(rounded(card(300, seed=3), 300), *CAMERA[camera])
    assert gate(shot) == []
    assert gate(_smear_at(shot, length, degrees), quality=85)[0] == "BLURRED"


# 5. Content running off a frame with no background in it -------------------------------------


@pytest.mark.parametrize(("dpi", "side"), [(300, "left"), (300, "right"), (450, "left")])
def test_a_card_cut_by_a_third_across_its_lines_is_cut_off(dpi: int, side: str) -> None:
    whole = card(dpi, seed=5)
    w, h = whole.size
    cut = whole.crop((w // 3, 0, w, h) if side == "left" else (0, 0, w - w // 3, h))
    assert gate(cut, dpi=dpi)[0] == "CUT_OFF"


def test_a_card_cropped_through_its_margin_only_passes() -> None:
    whole = card(300, seed=5)
    w, h = whole.size
    mm = 300 / 25.4
    assert gate(whole.crop((round(1.5 * mm), 0, w, h - round(mm))), dpi=300) == []


# 6. A card on a light scanner platen ---------------------------------------------------------


def on_platen(
    img: Image.Image, dpi: float, margins_mm: tuple[float, ...], grey: int
) -> Image.Image:
    """The card on a flatbed's light platen (or under its white lid), turned a degree, with
    ``margins_mm`` (left, top, right, bottom) of platen around it and the scanner's noise."""
    mm = dpi / 25.4
    left, top, right, bottom = (round(m * mm) for m in margins_mm)
    w, h = img.size
    bed = Image.new("RGB", (w + left + right, h + top + bottom), (grey, grey, grey))
    mask = Image.new("L", img.size, 0)
    ImageDraw.Draw(mask).rounded_rectangle((0, 0, w - 1, h - 1), 3.18 * mm, fill=255)
    bed.paste(img, (left, top), mask)
    bed = bed.rotate(1.0, resample=Image.Resampling.BICUBIC, fillcolor=(grey, grey, grey))
    arr = np.asarray(bed, np.float32) + np.random.default_rng(1).normal(
        0, 1.5, (bed.height, bed.width, 1)
    )
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


@pytest.mark.parametrize(("dpi", "grey"), [(300, 246), (300, 215), (400, 232)])
def test_a_card_on_a_light_platen_passes_at_its_stated_dpi(dpi: int, grey: int) -> None:
    # The frame (97.6 x 68 mm) has an A4 page's shape: taken for A4 it would be ~100 dpi.
    shot = on_platen(card(dpi, seed=6), dpi, (6, 7, 6, 7), grey)
    assert gate(shot, dpi=dpi) == []


def test_a_stated_low_dpi_still_refuses_and_so_does_an_agreeing_estimate() -> None:
    shot = on_platen(card(300, seed=6), 300, (6, 7, 6, 7), 240)
    assert gate(shot, dpi=120) == ["LOW_RESOLUTION"]  # the file's own figure is trusted
    assert gate(a4(100), dpi=100) == ["LOW_RESOLUTION"]
    assert gate(a4(100), dpi=180) == ["LOW_RESOLUTION"]  # within twofold: the lower decides


# 7. White paper scanned at the edge of saturation ----------------------------------------------


def blotchy_white(img: Image.Image, level: int, cell: int, seed: int) -> Image.Image:
    """``img``'s paper replaced by white at ``level`` lit unevenly in patches of about ``cell``
    pixels (sigma 2 levels) plus sensor noise: some patches saturate, as noise decides."""
    rng = np.random.default_rng(seed)
    w, h = img.size
    field = rng.normal(0, 2.0, (h // cell + 1, w // cell + 1)).astype(np.float32)
    light = np.asarray(Image.fromarray(field, "F").resize((w, h), Image.Resampling.BILINEAR))
    arr = np.asarray(img, np.float32)
    paper = arr.min(axis=2, keepdims=True) > 200
    arr = np.where(paper, level + light[..., None], arr) + rng.normal(0, 1.0, (h, w, 1))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


@pytest.fixture(scope="module")
def white300() -> Image.Image:
    return blotchy_white(a4(300, seed=7), 251, 16, 2)


def test_white_paper_at_saturation_is_not_glare(white300: Image.Image) -> None:
    # Saturated patches between short lines and paragraphs are paper, not a reflection.
    assert gate(white300, dpi=300) == []
    assert gate(blotchy_white(a4(300, seed=7), 250, 32, 1), dpi=300) == []


def test_a_reflection_on_white_paper_is_still_glare(white300: Image.Image) -> None:
    shot = glare(white300, 105 * MM300, 148 * MM300, 30 * MM300, 17 * MM300)
    assert gate(shot, dpi=300) == ["GLARE"]


# 8. What a photograph's geometry leaves: foreshortening, wedge tips, desk strips -------------


def test_a_card_foreshortened_to_an_a4_pages_shape_is_not_refused_as_low_resolution() -> None:
    # Shot at an angle, the card's outline measures 1.44 (an A4 page's 1.414 within 3 %):
    # taken for A4 it would be about 100 dpi. Its shape tells neither document for sure.
    whole = rounded(card(300, seed=8), 300)
    squashed = whole.resize((round(whole.width * 0.91), whole.height), Image.Resampling.LANCZOS)
    page = admit(0, encode(on_desk(squashed, margin=0.15)), LIMITS)
    prepared = prepare(page)
    assert prepared.quad is not None and prepared.document == ""
    assert quality_issues(page, prepared) == []
    # The same page 3.5 times smaller is low even as a card.
    tiny = squashed.resize((squashed.width * 2 // 7, squashed.height * 2 // 7))
    assert gate(on_desk(tiny, margin=0.15)) == ["LOW_RESOLUTION"]


def test_a_wedge_of_desk_breaking_up_at_its_tip_is_not_content_cut_off() -> None:
    from saoy.core.pages.imaging import content_at_edge

    paper = np.full((400, 640), 235, np.uint8)
    paper[:3, 306:] = 60  # a wedge of desk along the top, deepening to the right
    for start, stop in ((276, 281), (282, 283), (284, 287), (289, 290), (294, 296), (299, 302)):
        paper[:2, start:stop] = 60  # its tip, flickering about the ink level
    for start in range(200, 260, 12):
        paper[0, start : start + 3] = 60  # specks of it further on, a pixel deep
    assert not content_at_edge(paper, 140)
    paper[:12, 100:104] = 60  # two strokes of text cut by the frame, clear of the wedge
    paper[:12, 120:125] = 60
    assert content_at_edge(paper, 140)


def _between_desk_strips(img: Image.Image, strip: float = 0.015) -> Image.Image:
    """A photo cropped tight to the page, a strip of desk left along its left and right."""
    w, h = img.size
    s = round(w * strip)
    out = img.copy()
    ImageDraw.Draw(out).rectangle((0, 0, s, h), fill=DESK)
    ImageDraw.Draw(out).rectangle((w - s, 0, w, h), fill=DESK)
    return out


@pytest.mark.parametrize(
    ("cx", "cy", "rx", "ry"),
    [(12, 148, 9, 20), (140, 256, 12, 3), (105, 10, 60, 8)],
)
def test_glare_on_blank_paper_between_desk_strips_passes(
    page300: Image.Image, cx: float, cy: float, rx: float, ry: float
) -> None:
    # The desk at both edges is not text on both sides of the reflection.
    shot = glare(page300, cx * MM300, cy * MM300, rx * MM300, ry * MM300)
    assert gate(_between_desk_strips(shot)) == []


def test_glare_over_text_between_desk_strips_is_still_refused(page300: Image.Image) -> None:
    shot = glare(page300, 105 * MM300, 148 * MM300, 30 * MM300, 17 * MM300)
    assert gate(_between_desk_strips(shot)) == ["GLARE"]


@pytest.mark.parametrize("dpi", [300, 450, 600])
def test_focus_is_judged_at_the_documents_size_whatever_the_resolution(dpi: int) -> None:
    # The same blur on the card (in millimetres) gets the same verdict at any resolution:
    # at 600 dpi a slight softness spans twice the pixels it does at 300.
    k = dpi / 300
    assert gate(card(dpi, seed=1).filter(ImageFilter.GaussianBlur(0.8 * k))) == []
    assert gate(card(dpi, seed=1).filter(ImageFilter.GaussianBlur(1.6 * k))) == ["BLURRED"]


def test_a_camera_shot_of_a_foreshortened_card_cropped_to_it_is_not_cut_off() -> None:
    # Turned 4 degrees, foreshortened to an outline between a card's and an A4 page's shape,
    # cropped through the corners' box: desk wedges on all four sides, nothing cut.
    whole = rounded(card(300, seed=9), 300)
    squashed = whole.resize((round(whole.width * 0.92), whole.height), Image.Resampling.LANCZOS)
    shot = camera_crop(squashed, 4.0, (0.0, 0.02, 0.01, 0.0))
    page = admit(0, encode(shot, quality=85), LIMITS)
    prepared = prepare(page)
    assert prepared.quad is not None and not prepared.cut_off
    assert quality_issues(page, prepared) == []


def test_glare_at_a_photographed_cards_edge_over_its_last_lines_is_refused() -> None:
    # The card found on the desk and straightened: its last lines run close to its edge, and
    # the reflection reaches the edge. Those lines are text, not background.
    shot = card(300, seed=10)
    mm = 300 / 25.4
    for top in (46.5, 51.2):  # two lines more, the last a hair above the card's edge
        ImageDraw.Draw(shot).text(
            (28 * mm, top * mm), " ".join(WORDS[3:8]), font=_face(2.1 * mm), fill=(25, 25, 25)
        )
    shot = glare(shot, shot.width * 0.55, 50 * mm, 10 * mm, 5 * mm)
    page = admit(0, encode(on_desk(shot)), LIMITS)
    prepared = prepare(page)
    assert prepared.quad is not None
    assert [i.reason for i in quality_issues(page, prepared)] == ["GLARE"]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_glare_captures_of_the_template_generator_are_refused(seed: int) -> None:
    # The second generator's reflections land anywhere, over the card's last lines at its
    # edge included (where the card, found on the desk, is cropped and straightened).
    from saoy.clients.simulator.capture import capture
    from saoy.clients.simulator.templates import card as template_card
    from saoy.clients.simulator.templates import random_person

    rng = random.Random(seed * 1_000_003 + 50_002)
    person = random_person(rng, "2021")
    front, _ = template_card(person, "2021", rng, rng.randint(30, 60) * 10)
    shot = capture(front, "glare", seed * 7919 + 90_004)
    page = admit(0, shot.data, LIMITS)
    assert "GLARE" in [i.reason for i in quality_issues(page, prepare(page))]


def test_bright_paper_by_a_seal_on_a_photographed_letter_is_not_glare() -> None:
    # A letter of the template generator photographed tight (its corpus's fourth A4 page at
    # seed 6): its outline's shape lies between a card's and an A4 page's, and the light clips
    # the paper white around the seal and the signature. No line runs into that paper and
    # vanishes there, and print this small is no card's: it is not glare.
    from saoy.clients.simulator.capture import capture
    from saoy.clients.simulator.templates import letter

    rng = random.Random(6 * 1_000_003 + 70_000 + 3)
    doc = letter(rng, rng.choice((200, 250, 300)))
    shot = capture(doc, "camera_tight", 6 * 7919 + 95_000 + 3)
    page = admit(0, shot.data, LIMITS)
    assert quality_issues(page, prepare(page)) == []


def _lit(img: Image.Image, cx: float, cy: float, rx: float, ry: float, gain: float) -> Image.Image:
    """Light that multiplies (a lamp close by, a camera exposing for the page): brighter by up
    to ``gain`` about (cx, cy), clipping the paper white there while ink stays dark."""
    arr = np.asarray(img, dtype=np.float32)
    yy, xx = np.mgrid[0 : arr.shape[0], 0 : arr.shape[1]]
    r = np.sqrt(((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2)
    factor = 1.0 + (gain - 1.0) * np.clip(1.6 - r, 0, 1)
    return Image.fromarray(np.clip(arr * factor[..., None], 0, 255).astype(np.uint8))


def test_light_that_clips_the_paper_white_but_leaves_the_ink_dark_is_not_glare(
    page300: Image.Image,
) -> None:
    # Over the ends of six lines on the right, where a reflection is refused: paper clipped
    # white by brighter light whose ink is as dark as the page's hides nothing ...
    cx, cy, rx, ry = 170 * MM300, 150 * MM300, 15 * MM300, 17 * MM300
    assert gate(_lit(page300, cx, cy, rx, ry, 1.25)) == []
    # ... a reflection there adds light to the ink too, and washes it out.
    assert gate(glare(page300, cx, cy, rx, ry)) == ["GLARE"]


@pytest.mark.parametrize(("seed", "k"), [(14, 3), (13, 0)])
def test_paper_clipped_white_about_a_letters_dark_print_is_not_glare(seed: int, k: int) -> None:
    # Letters of the template generator: photographed tight under a lamp, the paper right of
    # the signature block clipped white (seed 14, its fourth A4 page); scanned on a white
    # platen, the whole paper clipped (seed 13, the first). The print about it is dark.
    assert _reasons(a4_page(seed, k).pages[0].data) == []


def test_a_card_is_told_from_an_a4_page_by_the_size_of_its_print() -> None:
    from saoy.core.pages.imaging import card_sized_print

    for dpi in (100, 150):  # about the analysis copy's scale
        assert card_sized_print(np.asarray(card(dpi, seed=3).convert("L")))
        assert not card_sized_print(np.asarray(a4(dpi, seed=3).convert("L")))


def test_a_tight_crop_that_cuts_glyphs_at_their_first_stroke_is_cut_off() -> None:
    # A 2024 back of the template generator cropped through its right side (seed 16, its
    # fourth bad capture): the frame cuts the text and the zone a pixel or two into their
    # glyphs, the gap to the next glyph inside. No wedge of background lies along that side,
    # so that ink is cut content, not a wedge's tip.
    assert _reasons(bad_capture(16, 3).pages[1].data) == ["CUT_OFF"]


def test_a_card_whose_corner_grazes_the_frame_s_edge_is_not_cut_off() -> None:
    # A 2024 front of the template generator photographed from above (seed 13, its 22nd card):
    # its bottom left corner reaches past the frame's left edge by under a millimetre, a
    # wedge of its rounded corner. Nothing printed is lost: not cut off. A card cut through
    # its print stays refused (the cut-off tests above).
    page = admit(0, card_dossier(13, 21).pages[0].data, LIMITS)
    prepared = prepare(page)
    assert prepared.quad is not None and prepared.quad[:, 0].min() <= 1  # it touches the edge
    assert quality_issues(page, prepared) == []


def test_a_reflection_on_a_photographed_card_is_refused_where_its_guilloche_is_fine() -> None:
    # A 2021 front of the template generator photographed with a reflection over its
    # nationality (seed 10, its first glare capture): its outline has the shape of a card and
    # of an A4 page, and the specks of its guilloche pull its glyphs' median under a card's.
    # Its larger glyphs are a card's, and a solid clipped patch on a card is glare.
    assert _reasons(bad_capture(10, 2).pages[0].data) == ["GLARE"]


def test_a_reflection_whose_fringe_reaches_between_the_lines_about_it_is_refused() -> None:
    # A 2021 front photographed with a reflection washing out its number and name (seed 20,
    # its first glare capture): the reflection's fringe reaches in between the title's and the
    # birth date's lines, which still read; its body, where it is widest, holds no print.
    assert _reasons(bad_capture(20, 2).pages[0].data) == ["GLARE"]


def test_a_card_back_with_a_bright_rim_and_zone_panel_is_not_glare() -> None:
    # A 2024 back of the first generator, cropped tight and skewed (its benchmark's seed 1,
    # card 23): the white zone panel and a rim of white about the card are one clipped
    # blob, widest at its ends, with the card's lines between. Its fringe reaches nowhere.
    person = docgen.random_person(1023)
    back = docgen.id_card_back(
        person, 23, variant="2024", mrz=docgen.broken_mrz(person, "number_check")
    )
    shot = docgen.degrade(
        back, skew_deg=1.3567, blur=0.5, noise=5.508, shade=0.0, jpeg_quality=95, seed=1047
    )
    assert isinstance(shot, bytes)
    assert _reasons(shot) == []


def test_a_card_photographed_at_400_dpi_is_judged_sharp_at_a_card_s_resolution() -> None:
    # A 2024 front photographed from above (seed 22, its twenty-second card): its outline has
    # the shape of a card and of an A4 page, and its print a card's. Measured at the 400 dpi
    # of the photograph it was "blurred"; at a card's resolution it is as sharp as its back.
    assert _reasons(card_dossier(22, 21).pages[0].data) == []


def test_a_card_photographed_well_off_square_is_not_refused_as_a_low_resolution_a4_page() -> None:
    # A 2024 card of the template generator photographed from above (seed 9, its fourteenth
    # card): foreshortened past a tenth, its outline has an A4 page's shape, and as an A4 page
    # it would be 95 dpi. As the card it may be it has 330 dpi: its type is judged once read.
    from saoy.clients.simulator.capture import capture
    from saoy.clients.simulator.templates import card as template_card
    from saoy.clients.simulator.templates import random_person

    rng = random.Random(9 * 1_000_003 + 13)
    person = random_person(rng, "2024")
    dpi = rng.randint(20, 60) * 10
    extra = rng.random() < 0.4
    front, _ = template_card(person, "2024", rng, dpi, broken_mrz=False, qr_extra=extra)
    shot = capture(front, "overhead", 9 * 7919 + 26)
    page = admit(0, shot.data, LIMITS)
    prepared = prepare(page)
    assert prepared.document == "a4" and prepared.quad is not None
    assert quality_issues(page, prepared) == []
