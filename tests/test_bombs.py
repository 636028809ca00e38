"""Decompression and structure bombs, sent through a real server: each is refused before any
full decode, in bounded time and memory, with a status and a message that name the limit.

Every bomb is built here, small on disk (a few MiB at most) however far it would expand, and
sent as a Certify page (images) or uploaded for verification (PDFs, over gRPC and HTTP). The
memory figure is this process's peak resident set growth while the server (in this process)
refuses it; a second test runs the parsers alone in a child process under an address-space
limit, where a bomb that got through would fail to allocate instead of passing unnoticed.
"""

from __future__ import annotations

import io
import json
import os
import resource
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from PIL import Image

from saoy.v1 import verification_pb2 as vpb
from saoy.v1 import verification_pb2_grpc as vgrpc

from .conftest import RunningServer
from .test_certify_errors import certify, chunk, end, header

MiB = 1024 * 1024
MAX_SECONDS = 2.0
MAX_GROWTH_MIB = 200
RESOURCE = grpc.StatusCode.RESOURCE_EXHAUSTED
INVALID = grpc.StatusCode.INVALID_ARGUMENT


# -- building the bombs -------------------------------------------------------------------


def zeros_deflated(size: int) -> bytes:
    """A zlib stream of ``size`` zero bytes (a multiple of 1 MiB) in about size / 1000 bytes,
    built in milliseconds: one MiB compressed after a full flush (which makes what follows
    independent of what came before), repeated."""
    assert size % MiB == 0
    packer = zlib.compressobj(9)
    first = packer.compress(bytes(MiB)) + packer.flush(zlib.Z_FULL_FLUSH)
    again = packer.compress(bytes(MiB)) + packer.flush(zlib.Z_FULL_FLUSH)
    last = packer.flush()
    adler = ((size % 65521) << 16) | 1  # Adler-32 of n zero bytes
    return first + again * (size // MiB - 1) + last[:-4] + struct.pack(">I", adler)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(width: int, height: int, idat: bytes, *extra: bytes) -> bytes:
    """An 8-bit greyscale PNG: IHDR, ``extra`` chunks, one IDAT, IEND."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + b"".join(extra)
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )


def small_png(*extra: bytes) -> bytes:
    return png(400, 400, zlib.compress(bytes(401 * 400)), *extra)


def tiff(width: int, height: int, strip: bytes, *, compression: int = 1, frames: int = 1) -> bytes:
    """A little-endian 8-bit greyscale TIFF of one strip; ``frames`` IFDs chained one after
    another, all describing that same strip."""
    strip_at = 8
    ifd_at = strip_at + len(strip)
    tags = [
        (256, 4, width),
        (257, 4, height),
        (258, 3, 8),
        (259, 3, compression),
        (262, 3, 1),
        (273, 4, strip_at),
        (277, 3, 1),
        (278, 4, height),
        (279, 4, len(strip)),
    ]
    entries = b"".join(
        struct.pack("<HHI", tag, kind, 1)
        + (struct.pack("<I", value) if kind == 4 else struct.pack("<HH", value, 0))
        for tag, kind, value in tags
    )
    size = 2 + len(entries) + 4
    ifds = [
        struct.pack("<H", len(tags))
        + entries
        + struct.pack("<I", ifd_at + (i + 1) * size if i + 1 < frames else 0)
        for i in range(frames)
    ]
    return b"II*\x00" + struct.pack("<I", ifd_at) + strip + b"".join(ifds)


def jpeg(width: int, height: int, **save: object) -> bytes:
    out = io.BytesIO()
    Image.new("L", (width, height), 200).save(out, "JPEG", **save)
    return out.getvalue()


def with_sof_size(data: bytes, width: int, height: int) -> bytes:
    """The JPEG with its frame header (SOF0) claiming another size."""
    at = data.index(b"\xff\xc0")
    return data[: at + 5] + struct.pack(">HH", height, width) + data[at + 9 :]


def exif_orientation(data: bytes, orientation: int) -> bytes:
    """The JPEG with an APP1 Exif segment stating ``orientation``."""
    ifd = struct.pack("<H", 1) + struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0) + bytes(4)
    body = b"Exif\x00\x00II*\x00" + struct.pack("<I", 8) + ifd
    return data[:2] + b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body + data[2:]


def many_scans(count: int) -> bytes:
    """A progressive JPEG whose last scan header is repeated ``count`` times with no data: the
    decoder passes over every block of the image once per scan."""
    data = jpeg(2000, 2000, progressive=True)
    last = data.rindex(b"\xff\xda")
    (length,) = struct.unpack(">H", data[last + 2 : last + 4])
    return data[:-2] + data[last : last + 2 + length] * count + b"\xff\xd9"


def pdf(objects: list[bytes], trailer: bytes = b"") -> bytes:
    """A PDF with a classic xref table; ``objects`` are numbered from 1, the first is /Root."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R%s >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        trailer,
        xref,
    )
    return bytes(out)


CATALOG = b"<< /Type /Catalog /Pages 2 0 R >>"
PAGES = b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>"
PAGE = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>"


def flate_stream(dictionary: bytes, data: bytes) -> bytes:
    return b"<< %s /Length %d /Filter /FlateDecode >>\nstream\n%s\nendstream" % (
        dictionary,
        len(data),
        data,
    )


def deep(opening: bytes, closing: bytes, depth: int = 100_000) -> bytes:
    return opening * depth + closing * depth


def ten_thousand_pages() -> bytes:
    n = 10_000
    kids = b" ".join(b"%d 0 R" % (i + 3) for i in range(n))
    return pdf([CATALOG, b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, n)] + [PAGE] * n)


# name: (builder, gRPC status, words the message must hold)
IMAGE_BOMBS: dict[str, tuple[Callable[[], bytes], grpc.StatusCode, str]] = {
    "png-ihdr-100000x100000": (
        lambda: png(100_000, 100_000, zlib.compress(bytes(64))),
        RESOURCE,
        "at most 12000 per side",
    ),
    "png-idat-2GiB": (lambda: png(2000, 2000, zeros_deflated(2048 * MiB)), RESOURCE, "pixels need"),
    "png-iccp-1GiB": (
        lambda: small_png(png_chunk(b"iCCP", b"scan\0\0" + zeros_deflated(1024 * MiB))),
        RESOURCE,
        "metadata",
    ),
    "png-ztxt-1GiB": (
        lambda: small_png(png_chunk(b"zTXt", b"Comment\0\0" + zeros_deflated(1024 * MiB))),
        RESOURCE,
        "metadata",
    ),
    "png-1M-chunks": (
        lambda: small_png(png_chunk(b"prVt", b"") * 1_000_000),
        RESOURCE,
        "too many PNG chunks",
    ),
    "tiff-100000x100000": (
        lambda: tiff(100_000, 100_000, bytes(64)),
        RESOURCE,
        "at most 12000 per side",
    ),
    "tiff-deflate-strip-2GiB": (
        lambda: tiff(2000, 2000, zeros_deflated(2048 * MiB), compression=8),
        RESOURCE,
        "pixels needs",
    ),
    "tiff-2-frames": (lambda: tiff(400, 400, bytes(160_000), frames=2), INVALID, "One page"),
    "tiff-200000-frames": (
        lambda: tiff(400, 400, bytes(160_000), frames=200_000),
        INVALID,
        "One page",
    ),
    "jpeg-sof-60000x60000": (
        lambda: with_sof_size(jpeg(400, 400), 60_000, 60_000),
        RESOURCE,
        "at most 12000 per side",
    ),
    "jpeg-sof-60000x200-exif-rotated": (
        lambda: exif_orientation(with_sof_size(jpeg(400, 400), 60_000, 200), 6),
        RESOURCE,
        "at most 12000 per side",
    ),
    "jpeg-progressive-100000-scans": (
        lambda: many_scans(100_000),
        RESOURCE,
        "too many JPEG scans",
    ),
    "jpeg-1M-markers": (
        lambda: (lambda d: d[:2] + b"\xff\xe5\x00\x02" * 1_000_000 + d[2:])(jpeg(400, 400)),
        RESOURCE,
        "too many JPEG segments",
    ),
}

# name: (builder, HTTP status, gRPC status, words the message must hold)
PDF_BOMBS: dict[str, tuple[Callable[[], bytes], int, grpc.StatusCode, str]] = {
    "pdf-content-stream-1GiB": (
        lambda: pdf([CATALOG, PAGES, PAGE, flate_stream(b"", zeros_deflated(1024 * MiB))]),
        413,
        RESOURCE,
        "expands beyond 16 MiB",
    ),
    "pdf-object-stream-1GiB": (
        lambda: pdf(
            [
                CATALOG,
                PAGES,
                PAGE,
                flate_stream(b"/Type /ObjStm /N 1 /First 4", zeros_deflated(1024 * MiB)),
            ]
        ),
        413,
        RESOURCE,
        "expands beyond 16 MiB",
    ),
    "pdf-arrays-100000-deep": (
        lambda: pdf([CATALOG[:-2] + b"/X " + deep(b"[", b"]") + b" >>", PAGES, PAGE]),
        422,
        INVALID,
        "nested too deeply",
    ),
    "pdf-dicts-100000-deep": (
        lambda: pdf([CATALOG[:-2] + b"/X " + deep(b"<< /A ", b" >>") + b" >>", PAGES, PAGE]),
        422,
        INVALID,
        "cannot be read",
    ),
    "pdf-reference-cycle": (
        lambda: pdf(
            [CATALOG, b"<< /Type /Pages /Kids [3 0 R] /Count 4 0 R >>", PAGE, b"5 0 R", b"4 0 R"]
        ),
        422,
        INVALID,
        "refer to themselves",
    ),
    "pdf-page-tree-cycle": (
        lambda: pdf([CATALOG, b"<< /Type /Pages /Kids [2 0 R] /Count 1 >>"]),
        422,
        INVALID,
        "refers to itself",
    ),
    "pdf-10000-pages": (ten_thousand_pages, 413, RESOURCE, "10,000 pages, at most 500"),
}


@pytest.fixture(scope="module")
def bombs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every bomb, written to disk once."""
    folder = tmp_path_factory.mktemp("bombs")
    paths = {}
    for name, (build, *_) in {**IMAGE_BOMBS, **PDF_BOMBS}.items():
        paths[name] = folder / name
        paths[name].write_bytes(build())
        assert paths[name].stat().st_size < 25 * MiB, name
    return paths


# -- measuring ----------------------------------------------------------------------------


def _status_mib(field: str) -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise LookupError(field)


class Peak:
    """Peak resident set growth of this process over a block, in MiB: the kernel's high-water
    mark is reset first where Linux allows it, else ``ru_maxrss`` (a lower bound then)."""

    def __enter__(self) -> Peak:
        try:
            with open("/proc/self/clear_refs", "w") as clear:
                clear.write("5")  # reset VmHWM to the current RSS
            self.start = _status_mib("VmRSS")
            self.read: Callable[[], float] = lambda: _status_mib("VmHWM")
        except OSError:
            self.read = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            self.start = self.read()
        self.began = time.perf_counter()
        return self

    def __exit__(self, *_: object) -> None:
        self.seconds = time.perf_counter() - self.began
        self.mib = self.read() - self.start


def assert_bounded(name: str, peak: Peak) -> None:
    print(f"{name}: refused in {peak.seconds:.2f} s, peak RSS growth {peak.mib:.0f} MiB")
    assert peak.seconds < MAX_SECONDS, f"{name} took {peak.seconds:.1f} s"
    assert peak.mib < MAX_GROWTH_MIB, f"{name} grew the RSS by {peak.mib:.0f} MiB"


# -- the tests ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(IMAGE_BOMBS))
def test_an_image_bomb_sent_as_a_page_is_refused(
    server: RunningServer, bombs: dict[str, Path], name: str
) -> None:
    _, code, words = IMAGE_BOMBS[name]
    data = bombs[name].read_bytes()
    pieces = [data[i : i + MiB] for i in range(0, len(data), MiB)]
    messages = [header()]
    messages += [chunk(0, piece, last=i == len(pieces) - 1) for i, piece in enumerate(pieces)]
    before = server.snapshot()
    with Peak() as peak:
        error = certify(server, [*messages, end(1)])
    assert error.code() == code, (name, error.details())
    details = error.details() or ""
    assert words in details, details
    assert " / " in details and ": " in details  # Vietnamese / English, then what to do
    assert server.snapshot() == before
    assert_bounded(name, peak)


@pytest.mark.parametrize("name", list(PDF_BOMBS))
def test_a_pdf_bomb_is_refused_over_grpc(
    server: RunningServer, bombs: dict[str, Path], name: str
) -> None:
    _, _, code, words = PDF_BOMBS[name]
    data = bombs[name].read_bytes()
    with grpc.insecure_channel(server.target) as channel, Peak() as peak:
        stub = vgrpc.VerificationStub(channel)
        with pytest.raises(grpc.RpcError) as raised:
            stub.VerifyDocument(vpb.VerifyDocumentRequest(pdf=data), timeout=30)
    assert raised.value.code() == code, (name, raised.value.details())
    assert words in (raised.value.details() or ""), raised.value.details()
    assert_bounded(name, peak)


@pytest.mark.parametrize("name", list(PDF_BOMBS))
def test_a_pdf_bomb_uploaded_to_the_page_is_refused(
    server: RunningServer, bombs: dict[str, Path], name: str
) -> None:
    _, status, _, words = PDF_BOMBS[name]
    request = urllib.request.Request(
        f"{server.http}/verify",
        data=bombs[name].read_bytes(),
        headers={"Content-Type": "application/pdf"},
        method="POST",
    )
    with Peak() as peak, pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request, timeout=30)
    assert raised.value.code == status, name
    page = raised.value.read().decode()
    assert words in page, page[-2000:]
    assert_bounded(name, peak)


_CHILD = """
import json, resource, sys, time
from saoy.core.pages.admission import Limits, admit
from saoy.core.pages.pdfcheck import inspect_integrity

def mib(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024

limit = int((mib("VmSize") + {headroom}) * 1024 * 1024)
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
for kind, path in json.loads(sys.argv[1]):
    data = open(path, "rb").read()
    open("/proc/self/clear_refs", "w").write("5")
    start, began = mib("VmRSS"), time.perf_counter()
    try:
        admit(0, data, Limits()) if kind == "image" else inspect_integrity(data)
        outcome = "accepted"
    except BaseException as error:
        outcome = type(error).__name__
    print(json.dumps([path, outcome, time.perf_counter() - began, mib("VmHWM") - start]))
"""


@pytest.mark.skipif(not os.access("/proc/self/clear_refs", os.W_OK), reason="Linux only")
def test_the_parsers_alone_stay_within_an_address_space_limit(bombs: dict[str, Path]) -> None:
    """Admission and the PDF reader, in a child process whose address space allows 512 MiB
    more than it holds after start: any bomb that got through would fail to allocate."""
    work = [["image", str(bombs[name])] for name in IMAGE_BOMBS]
    work += [["pdf", str(bombs[name])] for name in PDF_BOMBS]
    done = subprocess.run(
        [sys.executable, "-c", _CHILD.format(headroom=512), json.dumps(work)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    expected = {n: "TooLarge" if c == RESOURCE else "InvalidInput" for n, (_, c, _) in
                IMAGE_BOMBS.items()}  # fmt: skip
    expected |= {n: "TooLarge" if s == 413 else "InvalidInput" for n, (_, s, _, _) in
                 PDF_BOMBS.items()}  # fmt: skip
    for line in done.stdout.splitlines():
        path, outcome, seconds, growth = json.loads(line)
        name = Path(path).name
        print(f"{name}: {outcome} in {seconds:.2f} s, peak RSS growth {growth:.0f} MiB (alone)")
        assert outcome == expected[name], name
        assert seconds < MAX_SECONDS and growth < MAX_GROWTH_MIB, name
    assert len(done.stdout.splitlines()) == len(work)
