"""Bad input gets a precise status with details, and leaves no record behind."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from PIL import Image, ImageDraw

from saoy.clients.sdk import new_request_id
from saoy.v1 import certification_pb2 as cpb
from saoy.v1 import certification_pb2_grpc as cgrpc
from saoy.v1 import verification_pb2 as vpb
from saoy.v1 import verification_pb2_grpc as vgrpc

from .conftest import RunningServer, start_server

MiB = 1024 * 1024


def header(request_id: str | None = None) -> cpb.CertifyRequest:
    return cpb.CertifyRequest(
        header=cpb.Header(request_id=request_id or new_request_id(), kiosk_id="kiosk-errors")
    )


def chunk(page: int, data: bytes, last: bool = True) -> cpb.CertifyRequest:
    return cpb.CertifyRequest(chunk=cpb.PageChunk(page=page, data=data, last=last))


def end(n: int) -> cpb.CertifyRequest:
    return cpb.CertifyRequest(end=cpb.End(page_count=n))


def with_tokens(server: RunningServer, messages: list[cpb.CertifyRequest]) -> list:
    """The messages, each Header given a fresh session token for its kiosk."""
    out = []
    for message in messages:
        if message.HasField("header") and not message.header.session_token:
            copy = cpb.CertifyRequest()
            copy.CopyFrom(message)
            copy.header.session_token = server.token(message.header.kiosk_id)
            message = copy
        out.append(message)
    return out


def certify(server: RunningServer, messages: list[cpb.CertifyRequest]) -> grpc.RpcError:
    """Send ``messages`` (with session tokens) and return the error the stream ends with."""
    messages = with_tokens(server, messages)
    with grpc.insecure_channel(
        server.target, options=[("grpc.max_send_message_length", 64 * MiB)]
    ) as channel:
        call = cgrpc.CertificationStub(channel).Certify(iter(messages), timeout=60)
        with pytest.raises(grpc.RpcError) as raised:
            list(call)
    return raised.value


def error_info(error: grpc.RpcError) -> error_details_pb2.ErrorInfo:
    status = rpc_status.from_call(error)
    assert status is not None, "the status carries google.rpc details"
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info
    raise AssertionError("no ErrorInfo in the status details")


@pytest.fixture
def jpeg(reference_dossier: list[tuple[str, bytes]]) -> bytes:
    return reference_dossier[0][1]


@pytest.mark.parametrize(
    ("name", "data", "code"),
    [
        ("text file", b"just some text, not an image\n" * 100, grpc.StatusCode.INVALID_ARGUMENT),
        ("pdf", b"%PDF-1.7\n" + b"0" * 4000, grpc.StatusCode.INVALID_ARGUMENT),
        ("empty", b"", grpc.StatusCode.INVALID_ARGUMENT),
    ],
)
def test_a_non_image_is_refused_and_nothing_is_stored(
    server: RunningServer, name: str, data: bytes, code: grpc.StatusCode
) -> None:
    before = server.snapshot()
    error = certify(server, [header(), chunk(0, data), end(1)])
    assert error.code() == code, name
    assert "JPEG" in (error.details() or "") or name == "empty"
    assert error_info(error).domain == "saoy.gov.vn"
    assert server.snapshot() == before


def test_a_truncated_jpeg_is_refused(server: RunningServer, jpeg: bytes) -> None:
    before = server.snapshot()
    error = certify(server, [header(), chunk(0, jpeg[: len(jpeg) // 2]), end(1)])
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "cut off" in (error.details() or "") or "damaged" in (error.details() or "")
    assert server.snapshot() == before


def test_a_chunk_over_one_mib_is_refused(server: RunningServer) -> None:
    error = certify(server, [header(), chunk(0, b"\xff\xd8\xff" + b"\0" * (MiB + 10))])
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "1 MiB" in (error.details() or "")


def test_an_oversized_stream_is_cut_early(tmp_path) -> None:
    small = start_server(tmp_path, max_page_bytes=2 * MiB, max_dossier_bytes=3 * MiB)
    try:
        before = small.snapshot()
        sent = 0

        def stream() -> Iterator[cpb.CertifyRequest]:
            nonlocal sent
            yield from with_tokens(small, [header()])
            for _ in range(200):  # 200 MiB if nobody stopped it
                sent += 1
                yield chunk(0, b"\xff\xd8\xff" + b"\0" * (MiB - 3), last=False)

        with grpc.insecure_channel(small.target) as channel, pytest.raises(grpc.RpcError) as raised:
            list(cgrpc.CertificationStub(channel).Certify(stream(), timeout=60))
        assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "larger than 2 MiB" in (raised.value.details() or "")
        assert sent < 50
        assert small.snapshot() == before
    finally:
        small.stop()


def test_a_stream_cut_midway_leaves_no_record(server: RunningServer, jpeg: bytes) -> None:
    before = server.snapshot()
    release = threading.Event()

    def stream() -> Iterator[cpb.CertifyRequest]:
        yield from with_tokens(server, [header()])
        yield chunk(0, jpeg)
        yield chunk(1, jpeg[:1000], last=False)
        release.wait(10)

    with grpc.insecure_channel(server.target) as channel:
        call = cgrpc.CertificationStub(channel).Certify(stream(), timeout=60)
        first = next(call)
        assert first.WhichOneof("event") == "page_accepted"
        call.cancel()
        release.set()
        with pytest.raises(grpc.RpcError) as raised:
            list(call)
    assert raised.value.code() == grpc.StatusCode.CANCELLED
    assert server.snapshot() == before


def test_a_stream_that_ends_without_end_is_refused(server: RunningServer, jpeg: bytes) -> None:
    before = server.snapshot()
    error = certify(server, [header(), chunk(0, jpeg)])
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "ended before End" in (error.details() or "")
    assert server.snapshot() == before


@pytest.mark.parametrize(
    ("messages", "code", "words"),
    [
        ([chunk(0, b"x")], grpc.StatusCode.FAILED_PRECONDITION, "first message must be a Header"),
        ([], grpc.StatusCode.INVALID_ARGUMENT, "empty"),
        ([header("short")], grpc.StatusCode.INVALID_ARGUMENT, "request_id"),
        ([header(), header()], grpc.StatusCode.FAILED_PRECONDITION, "second Header"),
        ([header(), chunk(1, b"x")], grpc.StatusCode.FAILED_PRECONDITION, "page 1 was expected"),
        ([header(), end(0)], grpc.StatusCode.INVALID_ARGUMENT, "no pages"),
    ],
)
def test_out_of_order_streams_get_precise_statuses(
    server: RunningServer, messages: list[cpb.CertifyRequest], code: grpc.StatusCode, words: str
) -> None:
    error = certify(server, messages)
    assert error.code() == code
    assert words in (error.details() or "")


def test_wrong_page_count_at_end_is_refused(server: RunningServer, jpeg: bytes) -> None:
    before = server.snapshot()
    error = certify(server, [header(), chunk(0, jpeg), end(2)])
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "End says 2" in (error.details() or "")
    assert server.snapshot() == before


def hinted(*hints: tuple[int, str]) -> cpb.CertifyRequest:
    message = header()
    for page, kind in hints:
        message.header.hints.add(page=page, document_type=kind)
    return message


def bad_request_field(error: grpc.RpcError) -> str:
    status = rpc_status.from_call(error)
    assert status is not None
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            return bad.field_violations[0].field
    raise AssertionError("no BadRequest in the status details")


@pytest.mark.parametrize(
    ("hints", "words", "field"),
    [
        ([(0, "passport")], "'passport' is not a document type: use one of cccd_front",
         "header.hints[0].document_type"),
        ([(0, "cccd_front"), (0, "cccd_back")], "names page 1 a second time",
         "header.hints[1].page"),
        ([(500, "generic")], "names page 501 but a dossier holds at most 20 pages",
         "header.hints[0].page"),
    ],
)  # fmt: skip
def test_malformed_document_hints_are_refused_before_any_page(
    server: RunningServer, jpeg: bytes, hints: list[tuple[int, str]], words: str, field: str
) -> None:
    before = server.snapshot()
    error = certify(server, [hinted(*hints), chunk(0, jpeg), end(1)])
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert words in (error.details() or "")
    assert bad_request_field(error) == field
    assert server.snapshot() == before


def test_a_hint_for_a_page_never_sent_is_refused_at_end(server: RunningServer, jpeg: bytes) -> None:
    before = server.snapshot()
    error = certify(server, [hinted((0, "cccd_front"), (2, "cccd_back")), chunk(0, jpeg), end(1)])
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "hints at page(s) 3 but the dossier has 1" in (error.details() or "")
    assert server.snapshot() == before


def test_a_tiny_image_is_rejected_for_rescan_and_can_be_replaced(
    server: RunningServer, jpeg: bytes
) -> None:
    tiny = io.BytesIO()
    Image.open(io.BytesIO(jpeg)).resize((600, 384)).save(tiny, "PNG")
    with server.client(kiosk_id="kiosk-rescan") as client:
        result = client.certify(
            [tiny.getvalue()],
            rescan=lambda page, why: jpeg,
            session_token=server.token("kiosk-rescan"),
        )
    rejected = result.of_kind("page_rejected")
    assert len(rejected) == 1 and rejected[0].page_rejected.reason == "LOW_RESOLUTION"
    assert result.state == "ISSUED"


def test_a_page_without_text_is_rejected_and_recorded(server: RunningServer) -> None:
    drawing = Image.new("L", (1240, 1754), 235)
    pen = ImageDraw.Draw(drawing)
    for i in range(6):
        pen.ellipse((100 + 150 * i, 200 + 200 * i, 400 + 150 * i, 500 + 200 * i), fill=30)
    blank = io.BytesIO()
    drawing.save(blank, "PNG")
    before = server.count("dossiers")
    with server.client(kiosk_id="kiosk-blank") as client:
        result = client.certify([blank.getvalue()], session_token=server.token("kiosk-blank"))
    assert result.state == "REJECTED", result.events
    assert result.terminal.rejected.reason == "PAGE_UNUSABLE"
    assert "no document text" in result.terminal.rejected.message
    assert server.count("dossiers") == before + 1


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("0000-0000-0000-0000-0000", grpc.StatusCode.NOT_FOUND),
        ("not a code", grpc.StatusCode.INVALID_ARGUMENT),
        ("", grpc.StatusCode.INVALID_ARGUMENT),
    ],
)
def test_unknown_or_malformed_codes(server: RunningServer, code: str, status) -> None:
    with grpc.insecure_channel(server.target) as channel:
        stub = vgrpc.VerificationStub(channel)
        with pytest.raises(grpc.RpcError) as raised:
            stub.VerifyCode(vpb.VerifyCodeRequest(code=code), timeout=10)
    assert raised.value.code() == status


def test_bytes_that_are_not_a_pdf_are_refused(server: RunningServer) -> None:
    with grpc.insecure_channel(server.target) as channel:
        stub = vgrpc.VerificationStub(channel)
        with pytest.raises(grpc.RpcError) as raised:
            stub.VerifyDocument(vpb.VerifyDocumentRequest(pdf=b"hello"), timeout=10)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
