"""Document intelligence on the certify path, through a real server: what each page is and
says (RECOGNIZED), every validity check (VALIDATED), and the decision they lead to."""

from __future__ import annotations

import io
import logging
import urllib.request
from collections.abc import Iterator, Sequence

import pytest
from PIL import Image, ImageDraw

from saoy.clients.sdk import CertifyResult, PageRejectedError
from saoy.clients.simulator import docgen
from saoy.core.ocr.engines import create_engine
from saoy.core.ocr.tesseract import OcrUnavailable
from saoy.core.pipeline import local_today
from saoy.v1 import certification_pb2 as cpb
from saoy.v1 import common_pb2

from .conftest import RunningServer, start_server

PASS = common_pb2.Check.Outcome.PASS
PERSON = docgen.random_person(7)  # the person of the reference dossier (seed 7)


def captured(doc: docgen.Rendered | Image.Image, seed: int = 0, **info: object) -> bytes:
    """``doc`` as a kiosk camera captures it: slightly skewed, noisy, soft, JPEG."""
    shot = docgen.degrade(doc, skew_deg=0.5, noise=3.0, blur=0.4, seed=seed)
    assert isinstance(shot, Image.Image)
    return docgen.encode(shot, "jpeg", 90, **info)


def certify(server: RunningServer, kiosk: str, pages: Sequence[bytes]) -> CertifyResult:
    with server.client(kiosk_id=kiosk) as client:
        return client.certify(list(pages), session_token=server.token(kiosk))


def checks_of(result: CertifyResult) -> list[common_pb2.Check]:
    return list(result.of_kind("validated")[0].validated.checks)


def not_passed(result: CertifyResult) -> list[str]:
    return [f"{c.name}: {c.reason}" for c in checks_of(result) if c.outcome != PASS]


@pytest.fixture(scope="module")
def card(server: RunningServer, reference_dossier: list[tuple[str, bytes]]) -> CertifyResult:
    assert PERSON.expiry_date > local_today(), "the reference card has expired: pick another"
    return certify(server, "kiosk-card", [data for _, data in reference_dossier[:2]])


def test_a_valid_card_is_issued_with_the_persons_fields(card: CertifyResult) -> None:
    assert card.state == "ISSUED", not_passed(card)
    kinds = [e.WhichOneof("event") for e in card.events]
    assert kinds == ["page_accepted"] * 2 + ["received", "recognized", "validated", "issued"]
    front, back = card.of_kind("recognized")[0].recognized.pages
    assert (front.document_type, front.variant, front.condition) == ("cccd_front", "2021", "ok")
    assert (back.document_type, back.variant) == ("cccd_back", "2021")
    assert front.type_confidence > 80 and back.type_confidence > 80
    read = {f.name: f.value for f in front.fields}
    assert read["id_number"] == PERSON.id_number
    assert read["full_name"] == PERSON.full_name.upper()
    assert read["date_of_birth"] == PERSON.date_of_birth.strftime("%d/%m/%Y")
    assert read["sex"] == PERSON.sex
    assert read["nationality"] == PERSON.nationality
    assert read["place_of_origin"] == PERSON.place_of_origin
    assert read["place_of_residence"] == PERSON.place_of_residence
    assert read["expiry_date"] == PERSON.expiry_date.strftime("%d/%m/%Y")
    assert read["qr_id_number"] == PERSON.id_number
    assert all(0 < f.confidence <= 100 and f.source for f in front.fields)
    read_back = {f.name: f.value for f in back.fields}
    assert read_back["issue_date"] == PERSON.issue_date.strftime("%d/%m/%Y")
    assert read_back["mrz_id_number"] == PERSON.id_number
    # The printed issue date, confirmed by the QR code on the front; the MRZ read apart.
    assert {f.source for f in back.fields} >= {"ocr+qr", "mrz"}


def test_every_check_passes_and_is_named(card: CertifyResult) -> None:
    names = {c.name for c in checks_of(card)}
    assert names >= {
        "page_usable",
        "decree_23_certifiable",
        "document_complete",
        "qr_code",
        "mrz_check_digits",
        "id_number_structure",
        "fields_agree",
        "card_not_expired",
        "distinct_pages",
    }
    assert not not_passed(card)


def test_the_kiosks_document_types_are_checked_against_the_pages(
    server: RunningServer, reference_dossier: list[tuple[str, bytes]]
) -> None:
    pages = [data for _, data in reference_dossier[:2]]
    with server.client(kiosk_id="kiosk-hints") as client:
        agreed = client.certify(
            pages,
            session_token=server.token("kiosk-hints"),
            hints=[cpb.DocumentHint(page=0, document_type="cccd_front")],
        )
        swapped = client.certify(
            pages,
            session_token=server.token("kiosk-hints"),
            hints=[
                cpb.DocumentHint(page=0, document_type="cccd_back"),
                cpb.DocumentHint(page=1, document_type="generic"),  # agrees with any type
            ],
        )
    assert agreed.state == "ISSUED", not_passed(agreed)
    check = next(c for c in checks_of(agreed) if c.name == "kiosk_hints")
    assert check.outcome == PASS
    assert swapped.state == "NEEDS_REVIEW"
    assert not_passed(swapped) == [
        "kiosk_hints: page 1 was chosen as cccd back but reads as cccd front: an official must"
        " check"
    ]


def test_fields_and_checks_are_stored_with_the_dossier(
    server: RunningServer, card: CertifyResult
) -> None:
    registry = server.server.certifier.registry
    dossier_id = card.events[0].dossier_id
    pages = registry.pages(dossier_id)
    assert [p.document_type for p in pages] == ["cccd_front", "cccd_back"]
    stored = {name: value for name, value, _ in pages[0].fields}
    assert stored["id_number"] == PERSON.id_number
    assert all(0.0 < conf <= 1.0 for _, _, conf in pages[0].fields)
    dossier = registry.get_dossier(dossier_id)
    assert dossier is not None and dossier.state == "ISSUED"
    assert [c.name for c in dossier.checks] == [c.name for c in checks_of(card)]


def test_personal_data_stays_out_of_logs_and_metrics(
    server: RunningServer, reference_dossier: list[tuple[str, bytes]], caplog
) -> None:
    with caplog.at_level(logging.DEBUG):
        result = certify(server, "kiosk-pii", [reference_dossier[0][1]])
    assert result.state == "ISSUED", not_passed(result)
    secrets = (PERSON.id_number, PERSON.full_name.upper(), PERSON.family_name)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert not any(s in logged for s in secrets)
    with urllib.request.urlopen(f"{server.http}/metrics") as response:
        metrics = response.read().decode()
    assert not any(s in metrics for s in secrets)
    assert 'saoy_stage_duration_seconds_count{stage="analyze"}' in metrics
    assert 'saoy_stage_duration_seconds_count{stage="validate"}' in metrics


def test_a_broken_mrz_check_digit_is_not_issued_and_named(
    server: RunningServer, reference_dossier: list[tuple[str, bytes]]
) -> None:
    back = docgen.id_card_back(PERSON, 7, mrz=docgen.broken_mrz(PERSON, "composite_check"))
    before = server.count("copies")
    result = certify(server, "kiosk-mrz", [reference_dossier[0][1], captured(back, 3)])
    assert result.state in ("REJECTED", "NEEDS_REVIEW")
    mrz = [c for c in checks_of(result) if c.name == "mrz_check_digits"]
    assert mrz and mrz[0].outcome != PASS and "composite" in mrz[0].reason
    if result.state == "REJECTED":
        assert result.terminal.rejected.reason == "MRZ_INVALID"
        assert "MRZ check digit" in result.terminal.rejected.message
    else:
        assert any("MRZ" in r for r in result.terminal.needs_review.reasons)
    assert server.count("copies") == before


def test_a_page_marked_confidential_is_rejected(server: RunningServer) -> None:
    secret = docgen.confidential_stamp(docgen.birth_certificate(PERSON, 6, dpi=300))
    before = server.snapshot()
    result = certify(server, "kiosk-secret", [captured(secret, 6, dpi=(300, 300))])
    assert result.state == "REJECTED", not_passed(result)
    assert result.terminal.rejected.reason == "NOT_CERTIFIABLE"
    assert "MẬT" in result.terminal.rejected.message
    assert "Decree 23/2015" in result.terminal.rejected.message
    dossiers, pages, copies, _ = server.snapshot()
    assert (dossiers, pages, copies) == (before[0] + 1, before[1] + 1, before[2])  # no copy


def test_a_blank_sheet_is_refused_at_once_for_a_rescan(server: RunningServer) -> None:
    before = server.snapshot()
    with pytest.raises(PageRejectedError) as refused:
        certify(server, "kiosk-blank", [captured(docgen.blank_page(), 1)])
    assert refused.value.rejection.reason == "OVEREXPOSED"
    assert "blank" in refused.value.rejection.message
    assert server.snapshot() == before


def test_a_blank_sheet_with_punch_holes_is_rejected_as_blank(server: RunningServer) -> None:
    sheet = docgen.blank_page(size=(2480, 3508), seed=4)
    pen = ImageDraw.Draw(sheet.image)
    for top in (1300, 2100):  # two punch holes: dark enough to pass the exposure gate
        pen.ellipse((70, top, 152, top + 82), fill=(40, 40, 40))
    result = certify(server, "kiosk-holes", [docgen.encode(sheet, "jpeg", 90, dpi=(300, 300))])
    assert result.state == "REJECTED", not_passed(result)
    assert result.terminal.rejected.reason == "PAGE_UNUSABLE"
    assert "page 1 is blank" in result.terminal.rejected.message
    page = result.of_kind("recognized")[0].recognized.pages[0]
    assert page.condition == "blank" and not page.fields


def test_a_photo_that_is_no_document_is_rejected(server: RunningServer) -> None:
    result = certify(server, "kiosk-photo", [docgen.encode(docgen.scene_photo(3), "jpeg", 90)])
    assert result.state == "REJECTED", not_passed(result)
    assert result.terminal.rejected.reason == "PAGE_UNUSABLE"
    assert "no document text" in result.terminal.rejected.message


def test_half_a_card_is_refused_for_a_rescan(server: RunningServer) -> None:
    half = docgen.cut_off(docgen.id_card_front(PERSON, 7), 0.5)
    with pytest.raises(PageRejectedError) as refused:
        certify(server, "kiosk-half", [docgen.encode(half, "jpeg", 90)])
    assert refused.value.rejection.reason == "CUT_OFF"
    assert "rescan" in refused.value.rejection.message


@pytest.mark.parametrize("turns", [(90, 180), (270, 90)])
def test_a_card_placed_turned_is_read_upright_and_issued(
    server: RunningServer, reference_dossier: list[tuple[str, bytes]], turns: tuple[int, int]
) -> None:
    def turned(data: bytes, degrees: int) -> bytes:
        with Image.open(io.BytesIO(data)) as im:
            return docgen.encode(im.rotate(degrees, expand=True), "jpeg", 92)

    (_, front), (_, back) = reference_dossier[:2]
    pages = [turned(front, turns[0]), turned(back, turns[1])]
    result = certify(server, f"kiosk-turned-{turns[0]}", pages)
    assert result.state == "ISSUED", not_passed(result)
    read = result.of_kind("recognized")[0].recognized.pages
    assert [(p.condition, p.rotation) for p in read] == [("ok", turns[0]), ("ok", turns[1])]
    assert {f.name: f.value for f in read[0].fields}["id_number"] == PERSON.id_number
    usable = [c.reason for c in checks_of(result) if c.name == "page_usable"]
    assert usable == [
        f"page {i + 1} is a document page, read after turning it {degrees}°"
        for i, degrees in enumerate(turns)
    ]


@pytest.fixture(scope="module")
def onnx_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    try:
        create_engine("onnx").close()
    except (OcrUnavailable, ImportError) as e:
        pytest.skip(f"the ONNX OCR engine is not installed: {e}")
    running = start_server(tmp_path_factory.mktemp("saoy-onnx"), ocr_engine="onnx")
    yield running
    running.stop()


def test_the_onnx_engine_reads_and_issues_the_card_too(
    onnx_server: RunningServer, reference_dossier: list[tuple[str, bytes]]
) -> None:
    result = certify(onnx_server, "kiosk-onnx", [data for _, data in reference_dossier[:2]])
    assert result.state == "ISSUED", not_passed(result)
    front, back = result.of_kind("recognized")[0].recognized.pages
    assert (front.document_type, back.document_type) == ("cccd_front", "cccd_back")
    read = {f.name: f.value for f in front.fields}
    assert read["id_number"] == PERSON.id_number
    assert read["full_name"] == PERSON.full_name.upper()
    with urllib.request.urlopen(f"{onnx_server.http}/metrics") as response:
        assert 'ocr_engine="onnx"' in response.read().decode()
