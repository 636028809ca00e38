"""Fuzz the Authenticate stream: any sequence of messages (headers, card chunks, live frames,
ends, empty messages; in any order, with any fields and capture times) sent to a real server in
this process, its face models loaded, ends with a session token or with one of the statuses the
protocol documents, never with INTERNAL or UNKNOWN and never hangs.

The input is records (``streams.py``): tag % 5 picks the message — 0 an AuthenticateHeader (the
payload is the kiosk id), 1 a CardChunk (bit 0 of byte 0 ``last``, the rest the data), 2 a
LiveFrame (bytes 0-1 the capture time in milliseconds after now, signed; bit 0 of byte 2 leaves
it unset; the rest the image), 3 an AuthenticateEnd (byte 0 the frame count), 4 an empty
message.

    .venv/bin/python fuzz/fuzz_authenticate.py OUT_DIR fuzz/corpus/authenticate -max_total_time=600
"""

from __future__ import annotations

import sys
import time

import atheris
import uninstrumented  # noqa: F401  (the pixel-array modules, before instrumenting)

with atheris.instrument_imports(include=["saoy"]):
    import grpc
    from google.protobuf import timestamp_pb2
    from streams import records, start_server

    import saoy.server.app  # noqa: F401  (instrumented: the server runs in this process)
    from saoy.v1 import identity_pb2 as pb
    from saoy.v1 import identity_pb2_grpc as pb_grpc

EXPECTED = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.UNAVAILABLE,
}
"""How the protocol refuses a stream; anything else (INTERNAL, UNKNOWN, ...) is a finding."""
MAX_MESSAGES = 16

_stub: pb_grpc.IdentityStub | None = None


def messages(data: bytes) -> list[pb.AuthenticateRequest]:
    out = []
    for tag, payload in records(data):
        kind = tag % 5
        if kind == 0:
            kiosk_id = payload.decode("utf-8", "replace")
            out.append(pb.AuthenticateRequest(header=pb.AuthenticateHeader(kiosk_id=kiosk_id)))
        elif kind == 1:
            last = bool(payload[0] & 1) if payload else True
            out.append(pb.AuthenticateRequest(card=pb.CardChunk(data=payload[1:], last=last)))
        elif kind == 2:
            offset = int.from_bytes(payload[:2], "big", signed=True) if len(payload) > 1 else 0
            frame = pb.LiveFrame(image=payload[3:])
            if not (len(payload) > 2 and payload[2] & 1):
                at = timestamp_pb2.Timestamp()
                at.FromNanoseconds(time.time_ns() + offset * 1_000_000)
                frame.captured_at.CopyFrom(at)
            out.append(pb.AuthenticateRequest(frame=frame))
        elif kind == 3:
            count = payload[0] if payload else 0
            out.append(pb.AuthenticateRequest(end=pb.AuthenticateEnd(frame_count=count)))
        else:
            out.append(pb.AuthenticateRequest())
        if len(out) == MAX_MESSAGES:
            break
    return out


def test_one_input(data: bytes) -> None:
    assert _stub is not None
    call = _stub.Authenticate(iter(messages(data)), timeout=30)
    try:
        responses = list(call)
    except grpc.RpcError as error:
        code = error.code()
        assert code in EXPECTED, f"Authenticate ended {code}: {error.details()}"
        assert error.details(), f"{code} without a message"
        return
    kinds = [r.WhichOneof("event") for r in responses]
    assert kinds and kinds[-1] == "authenticated", f"Authenticate ended OK after {kinds}"


def main() -> None:
    global _stub
    atheris.Setup(sys.argv, test_one_input)
    channel = grpc.insecure_channel(start_server(identity="required", face_threads=1))
    _stub = pb_grpc.IdentityStub(channel)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
