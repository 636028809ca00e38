"""The quality gate on prepared pages: a normal kiosk capture passes; a blurred, glared, dark,
cut-off or low-resolution one is refused at once with the reason the kiosk shows."""

from __future__ import annotations

import random
import re

import numpy as np
import pytest
from PIL import Image, ImageDraw

from saoy.clients.simulator import docgen
from saoy.core.pages.admission import REASONS, Limits, admit, admit_decoded, quality_issues
from saoy.core.pages.imaging import prepare

LIMITS = Limits()


def _gate(image: Image.Image | bytes, fmt: str = "jpeg") -> list[str]:
    data = image if isinstance(image, bytes) else docgen.encode(image, fmt, 90)
    page = admit(0, data, LIMITS)
    return [issue.reason for issue in quality_issues(page, prepare(page))]


def _captured(rendered: docgen.Rendered, **kwargs: float) -> Image.Image:
    params: dict[str, float] = {"skew_deg": 0.5, "noise": 3.0, "blur": 0.4, **kwargs}
    out = docgen.degrade(rendered, seed=3, **params)  # type: ignore[arg-type]
    assert isinstance(out, Image.Image)
    return out


@pytest.fixture(scope="module")
def person() -> docgen.Person:
    return docgen.random_person(9)


@pytest.fixture(scope="module")
def front(person: docgen.Person) -> docgen.Rendered:
    return docgen.id_card_front(person, 9)


@pytest.fixture(scope="module")
def letter(person: docgen.Person) -> docgen.Rendered:
    return docgen.admin_letter(person, 9)


@pytest.mark.parametrize("seed", [2, 3])
def test_the_reference_dossier_passes_and_is_measured(seed: int) -> None:
    truth = random.Random(seed)
    for i, (name, data) in enumerate(docgen.reference_dossier(seed)):
        skew = truth.uniform(-0.8, 0.8)
        page = admit(i, data, LIMITS)
        prepared = prepare(page)
        assert quality_issues(page, prepared) == [], name
        assert prepared.skew_deg == pytest.approx(skew, abs=0.1), name
        assert prepared.document == ("id_card" if name.startswith("cccd") else "a4"), name
        assert prepared.dpi_estimate == pytest.approx(300, rel=0.04), name
        assert prepared.focus is not None and prepared.focus > 0.3, name
        assert prepared.glare < 0.015 and not prepared.cut_off, name
        assert len(prepared.sha256) == 64


@pytest.mark.parametrize("blur", [2.5, 4.0])
def test_a_blurred_card_is_refused_with_hold_still(front: docgen.Rendered, blur: float) -> None:
    page = admit(0, docgen.encode(_captured(front, blur=blur), "jpeg", 90), LIMITS)
    issues = quality_issues(page, prepare(page))
    assert [i.reason for i in issues] == ["BLURRED"]
    assert "hold still" in issues[0].message and "nhòe" in issues[0].message


def test_a_blurred_a4_page_is_refused(letter: docgen.Rendered) -> None:
    assert _gate(_captured(letter, blur=3.0)) == ["BLURRED"]


def test_slight_blur_still_passes(front: docgen.Rendered) -> None:
    assert _gate(_captured(front, blur=1.0)) == []


def _with_glare(image: Image.Image, radius: float) -> Image.Image:
    glared = image.copy()
    w, h = glared.size
    r = radius * min(w, h)
    ImageDraw.Draw(glared).ellipse(
        (w * 0.6 - r, h * 0.45 - r, w * 0.6 + r, h * 0.45 + r), fill=(255, 255, 255)
    )
    return glared


def test_a_white_reflection_on_a_card_is_refused_with_avoid_glare(person: docgen.Person) -> None:
    for rendered in (docgen.id_card_front(person, 9), docgen.id_card_back(person, 9)):
        page = admit(0, docgen.encode(_with_glare(_captured(rendered), 0.15), "jpeg", 92), LIMITS)
        issues = quality_issues(page, prepare(page))
        assert [i.reason for i in issues] == ["GLARE"]
        assert "avoid glare" in issues[0].message and "lóa" in issues[0].message


def test_a_small_highlight_is_not_glare(front: docgen.Rendered) -> None:
    assert _gate(_with_glare(_captured(front), 0.04)) == []


@pytest.mark.parametrize("factor", [0.15, 0.2])
def test_a_dark_capture_is_refused_as_too_dark(front: docgen.Rendered, factor: float) -> None:
    dark = np.asarray(_captured(front)).astype(np.float32) * factor
    page = admit(0, docgen.encode(Image.fromarray(dark.astype(np.uint8)), "jpeg", 90), LIMITS)
    issues = quality_issues(page, prepare(page))
    assert [i.reason for i in issues] == ["TOO_DARK"]
    assert "too dark" in issues[0].message


def test_a_card_half_out_of_the_scanner_is_cut_off(front: docgen.Rendered) -> None:
    half = docgen.cut_off(front, keep=0.5, side="bottom")
    reasons = _gate(_captured(half, skew_deg=0.0))
    assert reasons[0] == "CUT_OFF"  # first: what to fix (the half card is also too small)


def test_a_card_photo_running_off_the_frame_is_cut_off(front: docgen.Rendered) -> None:
    desk = Image.new("RGB", (1500, 1000), (40, 42, 48))
    card = front.image.rotate(3, expand=True, fillcolor=(40, 42, 48))
    desk.paste(card, (760, 170))  # the right third of the card is outside the photo
    page = admit(0, docgen.encode(_captured(docgen.Rendered(desk, ()), skew_deg=0.0)), LIMITS)
    issues = quality_issues(page, prepare(page))
    assert [i.reason for i in issues] == ["CUT_OFF"]
    assert "edge of the card" in issues[0].message and "mép" in issues[0].message


def test_a_card_photo_inside_the_frame_passes(front: docgen.Rendered) -> None:
    desk = Image.new("RGB", (1500, 1000), (40, 42, 48))
    card = front.image.rotate(3, expand=True, fillcolor=(40, 42, 48))
    desk.paste(card, (230, 170))
    page = admit(0, docgen.encode(_captured(docgen.Rendered(desk, ()), skew_deg=0.0)), LIMITS)
    prepared = prepare(page)
    assert quality_issues(page, prepared) == []
    assert prepared.quad is not None and prepared.document == "id_card"
    assert prepared.gray.shape == pytest.approx((640, 1000), abs=12)


def test_an_a4_page_at_100_dpi_has_low_resolution(person: docgen.Person) -> None:
    small = docgen.admin_letter(person, 9, dpi=100)
    page = admit(0, docgen.encode(_captured(small), "jpeg", 90), LIMITS)
    prepared = prepare(page)
    assert prepared.dpi_estimate == pytest.approx(100, rel=0.03)
    issues = quality_issues(page, prepared)
    assert [i.reason for i in issues] == ["LOW_RESOLUTION"]
    assert re.search(r"about 10[01] dpi", issues[0].message)


def test_every_reason_is_listed_and_bilingual() -> None:
    assert len(set(REASONS)) == len(REASONS) == 7


def test_prepare_from_the_admitted_pixels_equals_a_fresh_decode(front: docgen.Rendered) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    stored = _captured(front).transpose(Image.Transpose.ROTATE_90)
    for data in (
        docgen.encode(_captured(front), "jpeg", 90),
        docgen.encode(stored, "jpeg", 90, exif=exif.tobytes()),
    ):
        page, image = admit_decoded(0, data, LIMITS)
        assert page == admit(0, data, LIMITS)
        once, twice = prepare(page, image), prepare(page)
        assert once.sha256 == twice.sha256 and once.phash == twice.phash
        assert once.gray.shape[1] > once.gray.shape[0]  # upright: landscape card
