"""Fuzz the Certify stream: any sequence of messages (headers, page chunks, ends, empty
messages; in any order, with any fields) sent to a real server in this process ends with a
terminal event or with one of the statuses the protocol documents, never with INTERNAL or
UNKNOWN (an exception that escaped the servicer) and never hangs.

The input is records (``streams.py``): tag % 4 picks the message — 0 a Header (payload fields
split at NUL: request_id, kiosk_id, session_token, hints as ``type@page`` separated by ``;``),
1 a PageChunk (byte 0 the page, bit 0 of byte 1 ``last``, the rest the data), 2 an End (byte 0
the page count), 3 an empty message. A request_id of ``NEW`` is replaced by a fresh one, so a
seed with an admitted page goes through the whole pipeline each time instead of replaying its
first decision. The server runs with identity checks off (a fuzzer cannot authenticate), OCR
off and B-T signatures.

    .venv/bin/python fuzz/fuzz_certify.py OUT_DIR fuzz/corpus/certify -max_total_time=600
"""

from __future__ import annotations

import sys
import uuid

import atheris
import uninstrumented  # noqa: F401  (the pixel-array modules, before instrumenting)

with atheris.instrument_imports(include=["saoy"]):
    import grpc
    from streams import fields, records, start_server

    import saoy.server.app  # noqa: F401  (instrumented: the server runs in this process)
    from saoy.v1 import certification_pb2 as pb
    from saoy.v1 import certification_pb2_grpc as pb_grpc

EXPECTED = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.ALREADY_EXISTS,
}
"""How the protocol refuses a stream; anything else (INTERNAL, UNKNOWN, ...) is a finding."""
TERMINAL = {"issued", "needs_review", "rejected"}
MAX_MESSAGES = 16

_stub: pb_grpc.CertificationStub | None = None


def messages(data: bytes) -> list[pb.CertifyRequest]:
    out = []
    for tag, payload in records(data):
        kind = tag % 4
        if kind == 0:
            request_id, kiosk_id, token, hints = fields(payload, 4)
            if request_id == "NEW":
                request_id = uuid.uuid4().hex
            header = pb.Header(request_id=request_id, kiosk_id=kiosk_id, session_token=token)
            for hint in filter(None, hints.split(";")):
                name, _, page = hint.partition("@")
                header.hints.add(
                    document_type=name, page=int(page) if page.isdigit() and len(page) < 9 else 0
                )
            out.append(pb.CertifyRequest(header=header))
        elif kind == 1:
            page = payload[0] if payload else 0
            last = bool(payload[1] & 1) if len(payload) > 1 else True
            out.append(
                pb.CertifyRequest(chunk=pb.PageChunk(page=page, data=payload[2:], last=last))
            )
        elif kind == 2:
            out.append(pb.CertifyRequest(end=pb.End(page_count=payload[0] if payload else 0)))
        else:
            out.append(pb.CertifyRequest())
        if len(out) == MAX_MESSAGES:
            break
    return out


def test_one_input(data: bytes) -> None:
    assert _stub is not None
    call = _stub.Certify(iter(messages(data)), timeout=30)
    try:
        events = list(call)
    except grpc.RpcError as error:
        code = error.code()
        assert code in EXPECTED, f"Certify ended {code}: {error.details()}"
        assert error.details(), f"{code} without a message"
        return
    kinds = [event.WhichOneof("event") for event in events]
    assert kinds and kinds[-1] in TERMINAL, f"Certify ended OK after {kinds}"


def main() -> None:
    global _stub
    atheris.Setup(sys.argv, test_one_input)
    channel = grpc.insecure_channel(start_server(identity="off"))
    _stub = pb_grpc.CertificationStub(channel)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
