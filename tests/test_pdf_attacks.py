"""The published attacks on signed PDFs, each made on a real issued copy: whatever a viewer would
show differently from what was signed must be ALTERED offline (``saoy verify --offline`` with
the QR certificate only), online (``saoy verify FILE`` against the server) and on the
verification page's upload; the copy as issued, with the validation data and document
time-stamp saoy appends after its signatures, stays VALID.

Families: incremental saving (content drawn over a page; an opaque annotation; a form field),
shadow attacks (hide, replace, hide-and-replace: content planted before signing, revealed or
swapped after), signature wrapping (the signed range redefined), universal signature forgery
(a signature dictionary without, or with empty or garbled, /Contents or /ByteRange), a page
added, a page image swapped and a changed byte.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image, ImageDraw
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.generic import ArrayObject, DictionaryObject, NameObject, NumberObject
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

from saoy.clients.cli import main as saoy_main
from saoy.clients.sdk import CertifyResult
from saoy.core.render import BAND_HEIGHT
from saoy.core.trust.pki import ensure_dev_pki
from saoy.core.trust.signing import SIGNATURE_FIELD, signer_from_dev_pki
from saoy.server.settings import Settings
from saoy.v1 import certification_pb2 as cpb

from .conftest import RunningServer

# --- the issued copy ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def issued(server: RunningServer, reference_dossier: list[tuple[str, bytes]]) -> cpb.Issued:
    with server.client(kiosk_id="kiosk-attacks") as client:
        result: CertifyResult = client.certify(
            [data for _, data in reference_dossier[:2]],
            session_token=server.token("kiosk-attacks"),
        )
    assert result.issued is not None, [e.WhichOneof("event") for e in result.events]
    return result.issued


@pytest.fixture(scope="module")
def copy_pdf(server: RunningServer, issued: cpb.Issued) -> bytes:
    with server.client() as client:
        data: bytes = client.download(issued.code)
    assert hashlib.sha256(data).hexdigest() == issued.sha256
    return data


@pytest.fixture(scope="module")
def qr_pem(server: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("attacks") / "qr.pem"
    with urllib.request.urlopen(f"{server.http}/pki/qr.pem", timeout=30) as response:
        path.write_bytes(response.read())
    return path


def resign(server: RunningServer, copy: bytes, plant: Callable[[IncrementalPdfFileWriter], None]):
    """The copy's unsigned first revision with ``plant`` done to it, then signed as saoy signs
    (the server's own keys): the shadow attacker's document, hidden content included."""
    first = copy[: copy.index(b"%%EOF") + 5] + b"\n"
    writer = IncrementalPdfFileWriter(io.BytesIO(first))
    plant(writer)
    settings = Settings()
    pki = ensure_dev_pki(
        server.data_dir / "pki",
        organization=settings.organization,
        passphrase=settings.pki_passphrase.encode(),
    )
    return asyncio.run(signer_from_dev_pki(pki).sign(written(writer)))


# --- building blocks of the attacks -------------------------------------------------------


def written(writer: IncrementalPdfFileWriter) -> bytes:
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def numbers(*values: float) -> ArrayObject:
    return ArrayObject([generic.FloatObject(v) for v in values])


FONT = DictionaryObject(
    {
        NameObject("/Type"): NameObject("/Font"),
        NameObject("/Subtype"): NameObject("/Type1"),
        NameObject("/BaseFont"): NameObject("/Helvetica"),
    }
)
BOX = (60.0, BAND_HEIGHT + 40.0, 360.0, BAND_HEIGHT + 100.0)  # over the scan, not the band
FORGED = b"Ho va ten: Tran Van Gia"


def box_drawing(text: bytes, x: float = 0.0, y: float = 0.0) -> bytes:
    """An opaque white box with ``text`` on it (at the origin of a form, or at BOX)."""
    w, h = BOX[2] - BOX[0], BOX[3] - BOX[1]
    return (
        f"q 1 1 1 rg {x} {y} {w} {h} re f 0 g BT /FX 18 Tf {x + 8} {y + 22} Td (".encode()
        + text
        + b") Tj ET Q"
    )


def form(writer: IncrementalPdfFileWriter, content: bytes) -> generic.IndirectObject:
    w, h = BOX[2] - BOX[0], BOX[3] - BOX[1]
    stream = generic.StreamObject(
        {
            NameObject("/Type"): NameObject("/XObject"),
            NameObject("/Subtype"): NameObject("/Form"),
            NameObject("/BBox"): numbers(0, 0, w, h),
            NameObject("/Resources"): DictionaryObject(
                {NameObject("/Font"): DictionaryObject({NameObject("/FX"): FONT})}
            ),
        },
        stream_data=content,
    )
    return writer.add_object(stream)


def draw_over(writer: IncrementalPdfFileWriter, text: bytes, page: int = 0) -> None:
    stream = writer.add_object(generic.StreamObject(stream_data=box_drawing(text, *BOX[:2])))
    fonts = DictionaryObject({NameObject("/Font"): DictionaryObject({NameObject("/FX"): FONT})})
    writer.add_stream_to_page(page, stream, resources=fonts)


def append_to(writer: IncrementalPdfFileWriter, owner, key: str, item) -> None:
    owner = owner.get_object()
    raw = owner.raw_get(key) if key in owner else None
    if isinstance(raw, generic.IndirectObject):
        array = raw.get_object()
        array.append(item)
        writer.update_container(array)
    else:
        array = raw if isinstance(raw, ArrayObject) else ArrayObject()
        array.append(item)
        owner[NameObject(key)] = array
        writer.update_container(owner)


def annotate(writer: IncrementalPdfFileWriter, annotation: DictionaryObject) -> None:
    page_ref, _ = writer.find_page_for_modification(0)
    annotation.update(
        {
            NameObject("/Type"): NameObject("/Annot"),
            NameObject("/Rect"): numbers(*BOX),
            NameObject("/F"): NumberObject(4),  # printed
            NameObject("/P"): page_ref,
        }
    )
    append_to(writer, page_ref.get_object(), "/Annots", writer.add_object(annotation))


def annotation(subtype: str, **extra: generic.PdfObject) -> Callable[[bytes], bytes]:
    def attack(copy: bytes) -> bytes:
        writer = IncrementalPdfFileWriter(io.BytesIO(copy))
        entries = {NameObject("/Subtype"): NameObject(subtype)}
        entries[NameObject("/AP")] = DictionaryObject(
            {NameObject("/N"): form(writer, box_drawing(FORGED))}
        )
        entries.update(
            {NameObject(k if k.startswith("/") else "/" + k): v for k, v in extra.items()}
        )
        annotate(writer, DictionaryObject(entries))
        return written(writer)

    return attack


def text_field(writer: IncrementalPdfFileWriter, name: str, value: bytes, look: bytes):
    """A text field whose widget sits over BOX showing ``look``; returns its reference."""
    page_ref, _ = writer.find_page_for_modification(0)
    field = DictionaryObject(
        {
            NameObject("/FT"): NameObject("/Tx"),
            NameObject("/T"): generic.TextStringObject(name),
            NameObject("/V"): generic.TextStringObject(value.decode()),
            NameObject("/Subtype"): NameObject("/Widget"),
            NameObject("/Type"): NameObject("/Annot"),
            NameObject("/Rect"): numbers(*BOX),
            NameObject("/F"): NumberObject(4),
            NameObject("/P"): page_ref,
            NameObject("/AP"): DictionaryObject({NameObject("/N"): form(writer, look)}),
        }
    )
    ref = writer.add_object(field)
    append_to(writer, page_ref.get_object(), "/Annots", ref)
    form_dict = writer.root.get("/AcroForm")
    if form_dict is None:
        writer.root[NameObject("/AcroForm")] = DictionaryObject(
            {NameObject("/Fields"): ArrayObject([ref])}
        )
        writer.update_root()
    else:
        append_to(writer, form_dict, "/Fields", ref)
    return ref


# --- the attacks --------------------------------------------------------------------------


def overlay(copy: bytes) -> bytes:
    writer = IncrementalPdfFileWriter(io.BytesIO(copy))
    draw_over(writer, FORGED)
    return written(writer)


def form_field_added(copy: bytes) -> bytes:
    writer = IncrementalPdfFileWriter(io.BytesIO(copy))
    text_field(writer, "HoTen", FORGED, box_drawing(FORGED))
    return written(writer)


def content_object_redefined(copy: bytes) -> bytes:
    """Shadow "replace" on the copy itself: an update redefines page 1's content stream
    (same object number) so that it also draws the forgery."""
    writer = IncrementalPdfFileWriter(io.BytesIO(copy))
    page_ref, _ = writer.find_page_for_modification(0)
    page = page_ref.get_object()
    contents = page.raw_get("/Contents")
    ref = contents if isinstance(contents, generic.IndirectObject) else contents[0]
    stream = ref.get_object()
    stream._data = stream.data + b"\n" + box_drawing(FORGED, *BOX[:2])
    stream._encoded_data = None
    stream.pop("/Filter", None)
    writer.mark_update(ref)
    resources = page["/Resources"]
    if "/Font" in resources:
        fonts = resources["/Font"]
        fonts[NameObject("/FX")] = FONT
        writer.update_container(fonts)
    else:
        resources[NameObject("/Font")] = DictionaryObject({NameObject("/FX"): FONT})
        writer.update_container(resources)
    return written(writer)


def signature_dictionary(copy: bytes, change: Callable[[DictionaryObject], None]) -> bytes:
    """An update that redefines the official's signature dictionary, and draws over page 1."""
    writer = IncrementalPdfFileWriter(io.BytesIO(copy))
    fields = writer.root["/AcroForm"]["/Fields"]
    field = next(f.get_object() for f in fields if f.get_object().get("/T") == SIGNATURE_FIELD)
    ref = field.raw_get("/V")
    change(ref.get_object())
    writer.mark_update(ref)
    draw_over(writer, FORGED)
    return written(writer)


def usf(change: Callable[[DictionaryObject], None]) -> Callable[[bytes], bytes]:
    return lambda copy: signature_dictionary(copy, change)


def _set(key: str, value: generic.PdfObject) -> Callable[[DictionaryObject], None]:
    def change(sig: DictionaryObject) -> None:
        sig[NameObject(key)] = value

    return change


def _drop(key: str) -> Callable[[DictionaryObject], None]:
    return lambda sig: sig.pop(NameObject(key))


def _garble_contents(sig: DictionaryObject) -> None:
    contents = bytes(sig["/Contents"])
    sig[NameObject("/Contents")] = generic.ByteStringObject(
        hashlib.sha256(contents).digest() * (len(contents) // 32)
    )


def wrapped(copy: bytes) -> bytes:
    """Signature wrapping: the signed range is redefined to reach into the attacker's update
    (past the signed revision), the same signature value moved along."""

    def change(sig: DictionaryObject) -> None:
        a, b, c, d = (int(v) for v in sig["/ByteRange"])
        sig[NameObject("/ByteRange")] = ArrayObject(
            [NumberObject(v) for v in (a, b, c, d + len(copy) - (c + d) + 64)]
        )

    return signature_dictionary(copy, change)


def page_added(copy: bytes) -> bytes:
    writer = IncrementalPdfFileWriter(io.BytesIO(copy))
    content = writer.add_object(generic.StreamObject(stream_data=box_drawing(FORGED, 72, 700)))
    page = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Page"),
            NameObject("/MediaBox"): numbers(0, 0, 595, 842),
            NameObject("/Resources"): DictionaryObject(
                {NameObject("/Font"): DictionaryObject({NameObject("/FX"): FONT})}
            ),
            NameObject("/Contents"): content,
        }
    )
    writer.insert_page(page)
    return written(writer)


def image_swapped(copy: bytes) -> bytes:
    writer = IncrementalPdfFileWriter(io.BytesIO(copy))
    _, resources = writer.find_page_for_modification(1)
    xobjects = resources["/XObject"]
    name = next(iter(xobjects))
    original = xobjects[name]
    with Image.open(io.BytesIO(original.encoded_data)) as image:
        image.load()
        ImageDraw.Draw(image).rectangle((40, 40, 400, 120), fill="white")
        forged = io.BytesIO()
        image.save(forged, "JPEG", quality=90)
    stream = generic.StreamObject(
        {k: v for k, v in original.items() if k != "/Length"}, encoded_data=forged.getvalue()
    )
    xobjects[name] = writer.add_object(stream)
    writer.update_container(xobjects)
    return written(writer)


def byte_changed(copy: bytes) -> bytes:
    image = copy.index(b"/Subtype /Image")
    start = copy.index(b"stream", image) + len(b"stream\n")
    end = copy.index(b"endstream", start)
    middle = (start + end) // 2
    return copy[:middle] + bytes([copy[middle] ^ 0xFF]) + copy[middle + 1 :]


# Shadow attacks: ``plant`` runs on the unsigned rendering before saoy's keys sign it; the
# update after signing reveals or swaps what was planted.


def shadow_hide_plant(writer: IncrementalPdfFileWriter) -> None:
    stream = writer.add_object(generic.StreamObject(stream_data=box_drawing(FORGED, *BOX[:2])))
    fonts = DictionaryObject({NameObject("/Font"): DictionaryObject({NameObject("/FX"): FONT})})
    writer.add_stream_to_page(0, stream, resources=fonts)
    # A field whose widget covers the forgery with what the scan shows there (blank here).
    text_field(writer, "Che", b"", b"q 1 1 1 rg 0 0 300 60 re f Q")


def shadow_hide_reveal(signed: bytes) -> bytes:
    writer = IncrementalPdfFileWriter(io.BytesIO(signed))
    field = next(
        f.get_object() for f in writer.root["/AcroForm"]["/Fields"] if f.get_object()["/T"] == "Che"
    )
    field[NameObject("/AP")] = DictionaryObject({NameObject("/N"): form(writer, b"")})
    writer.update_container(field)
    return written(writer)


def shadow_replace_plant(writer: IncrementalPdfFileWriter) -> None:
    text_field(writer, "HoTen", b"Nguyen Van An", box_drawing(b"Ho va ten: Nguyen Van An"))


def shadow_replace_swap(signed: bytes) -> bytes:
    writer = IncrementalPdfFileWriter(io.BytesIO(signed))
    field = next(
        f.get_object()
        for f in writer.root["/AcroForm"]["/Fields"]
        if f.get_object()["/T"] == "HoTen"
    )
    field[NameObject("/V")] = generic.TextStringObject(FORGED.decode())
    field[NameObject("/AP")] = DictionaryObject(
        {NameObject("/N"): form(writer, box_drawing(FORGED))}
    )
    writer.update_container(field)
    return written(writer)


HIDDEN_PAGES = "/SaoyHiddenPages"


def shadow_hide_and_replace_plant(writer: IncrementalPdfFileWriter) -> None:
    """A second page tree, never shown: page 1 drawing the forgery over the scan, then the
    other pages; the catalog refers to it under a key no viewer reads."""
    pages = writer.root["/Pages"]
    kids = pages["/Kids"]
    first = kids[0].get_object()
    forged = DictionaryObject({k: v for k, v in first.items() if k != "/Parent"})
    drawing = writer.add_object(generic.StreamObject(stream_data=box_drawing(FORGED, *BOX[:2])))
    contents = first.raw_get("/Contents")
    forged[NameObject("/Contents")] = ArrayObject(
        [*(contents if isinstance(contents, ArrayObject) else [contents]), drawing]
    )
    resources = DictionaryObject(first["/Resources"])
    resources[NameObject("/Font")] = DictionaryObject({NameObject("/FX"): FONT})
    forged[NameObject("/Resources")] = resources
    tree = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Pages"),
            NameObject("/Count"): pages["/Count"],
        }
    )
    tree_ref = writer.add_object(tree)
    forged[NameObject("/Parent")] = tree_ref
    tree[NameObject("/Kids")] = ArrayObject([writer.add_object(forged), *list(kids)[1:]])
    writer.root[NameObject(HIDDEN_PAGES)] = tree_ref
    writer.update_root()


def shadow_hide_and_replace_swap(signed: bytes) -> bytes:
    """The update holds nothing but a catalog pointing at the hidden page tree."""
    writer = IncrementalPdfFileWriter(io.BytesIO(signed))
    writer.root[NameObject("/Pages")] = writer.root.raw_get(HIDDEN_PAGES)
    writer.update_root()
    return written(writer)


SHADOWS = {
    "shadow: hide (a covering widget made transparent)": (shadow_hide_plant, shadow_hide_reveal),
    "shadow: replace (a field's value and look swapped)": (
        shadow_replace_plant,
        shadow_replace_swap,
    ),
    "shadow: hide-and-replace (the catalog points at a hidden page tree)": (
        shadow_hide_and_replace_plant,
        shadow_hide_and_replace_swap,
    ),
}

ATTACKS: dict[str, Callable[[bytes], bytes]] = {
    "incremental: content drawn over page 1": overlay,
    "incremental: opaque Square annotation": annotation(
        "/Square", IC=numbers(1, 1, 1), C=numbers(1, 1, 1)
    ),
    "incremental: Stamp annotation": annotation("/Stamp", Name=NameObject("/Approved")),
    "incremental: FreeText annotation": annotation(
        "/FreeText",
        Contents=generic.TextStringObject(FORGED.decode()),
        DA=generic.TextStringObject("/Helv 18 Tf 0 g"),
    ),
    "incremental: form field added": form_field_added,
    "shadow: replace (page 1's content stream redefined)": content_object_redefined,
    "signature wrapping: /ByteRange redefined past the signed revision": wrapped,
    "USF: /Contents missing": usf(_drop("/Contents")),
    "USF: /Contents empty": usf(_set("/Contents", generic.ByteStringObject(b""))),
    "USF: /Contents garbled": usf(_garble_contents),
    "USF: /ByteRange missing": usf(_drop("/ByteRange")),
    "USF: /ByteRange empty": usf(_set("/ByteRange", ArrayObject())),
    "USF: /ByteRange garbled": usf(_set("/ByteRange", numbers(0, 0, 0, 0))),
    "a page added": page_added,
    "a page image swapped": image_swapped,
    "a byte changed": byte_changed,
}


@pytest.fixture(scope="module")
def attacked(server: RunningServer, copy_pdf: bytes, tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("attacked")
    files = {}
    made = {name: attack(copy_pdf) for name, attack in ATTACKS.items()}
    for name, (plant, reveal) in SHADOWS.items():
        made[name] = reveal(resign(server, copy_pdf, plant))
    for index, (name, data) in enumerate(made.items()):
        assert data != copy_pdf, name
        files[name] = folder / f"attack-{index}.pdf"
        files[name].write_bytes(data)
    return files


# --- verifying ----------------------------------------------------------------------------


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict]:
    capsys.readouterr()
    code = saoy_main(list(args))
    out = capsys.readouterr().out
    return code, json.loads(out)


def page_upload(server: RunningServer, data: bytes) -> str:
    boundary = "saoyattack"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="pdf"; filename="c.pdf"\r\n'
            "Content-Type: application/pdf\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    request = urllib.request.Request(
        f"{server.http}/verify",
        data=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return str(response.read().decode())
    except urllib.error.HTTPError as error:
        return str(error.read().decode())


def test_the_issued_copy_with_its_later_revisions_is_valid_everywhere(
    server: RunningServer,
    copy_pdf: bytes,
    qr_pem: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "copy.pdf"
    path.write_bytes(copy_pdf)
    assert copy_pdf.count(b"%%EOF") >= 5  # signatures, validation data, document time-stamp

    code, offline = cli(capsys, "verify", "--offline", str(path), "--cert", str(qr_pem), "--json")
    assert (code, offline["verdict"]) == (0, "VALID"), offline
    checks = {c["name"]: c["outcome"] for c in offline["checks"]}
    signatures = [n for n in checks if n.startswith("pdf_signature:")]
    assert len(signatures) == 3  # official, seal, document time-stamp
    assert {checks[n] for n in signatures} == {"pass"}

    code, online = cli(capsys, "verify", str(path), "--server", server.target, "--json")
    assert (code, online["verdict"]) == (0, "VALID"), online
    assert "HỢP LỆ / VALID" in page_upload(server, copy_pdf)


@pytest.mark.parametrize("attack", [*ATTACKS, *SHADOWS])
def test_an_attacked_copy_is_altered_offline_online_and_on_the_page(
    server: RunningServer,
    attacked: dict[str, Path],
    qr_pem: Path,
    capsys: pytest.CaptureFixture[str],
    attack: str,
) -> None:
    path = attacked[attack]

    code, offline = cli(capsys, "verify", "--offline", str(path), "--cert", str(qr_pem), "--json")
    assert (code, offline["verdict"]) == (1, "ALTERED"), offline

    code, online = cli(capsys, "verify", str(path), "--server", server.target, "--json")
    assert (code, online["verdict"]) == (1, "ALTERED"), online

    assert "ĐÃ BỊ THAY ĐỔI / ALTERED" in page_upload(server, path.read_bytes())
