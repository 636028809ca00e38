"""Pipeline events and checks on the wire: one mapping, for the front that answers a kiosk and
the worker that sends its answers through the work queue."""

from __future__ import annotations

from datetime import datetime

from google.protobuf import timestamp_pb2

from saoy.core import pipeline as pl
from saoy.v1 import certification_pb2 as pb
from saoy.v1 import common_pb2


def timestamp(at: datetime) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(at)
    return ts


def check_to_proto(check: pl.CheckResult) -> common_pb2.Check:
    return common_pb2.Check(
        name=check.name,
        outcome=common_pb2.Check.Outcome.Value(check.outcome.name),
        reason=check.reason,
    )


def event_to_proto(event: pl.Event | pl.PageAccepted | pl.PageRejected) -> pb.CertifyEvent:
    """Map a pipeline event onto the wire (the envelope's ids are set by the caller)."""
    match event:
        case pl.PageAccepted(page=page):
            return pb.CertifyEvent(
                page_accepted=pb.PageAccepted(
                    page=page.index,
                    format=page.format,
                    width=page.width,
                    height=page.height,
                    sha256=page.sha256,
                )
            )
        case pl.PageRejected(index=index, reason=reason, message=message):
            return pb.CertifyEvent(
                page_rejected=pb.PageRejected(page=index, reason=reason, message=message)
            )
        case pl.Recognized(pages=pages):
            return pb.CertifyEvent(
                recognized=pb.Recognized(
                    pages=[
                        pb.RecognizedPage(
                            page=p.index,
                            document_type=p.document_type,
                            word_count=p.word_count,
                            mean_confidence=p.mean_confidence,
                            fields=[
                                pb.Field(
                                    name=f.name,
                                    value=f.value,
                                    confidence=round(100 * f.confidence, 1),
                                    source=f.source,
                                )
                                for f in p.fields
                            ],
                            type_confidence=round(100 * p.type_confidence, 1),
                            variant=p.variant,
                            condition=p.condition,
                            rotation=p.rotation,
                        )
                        for p in pages
                    ]
                )
            )
        case pl.Validated(checks=checks):
            return pb.CertifyEvent(
                validated=pb.Validated(checks=[check_to_proto(c) for c in checks])
            )
        case pl.Issued():
            return pb.CertifyEvent(
                issued=pb.Issued(
                    code=event.code,
                    url=event.url,
                    sha256=event.sha256,
                    pages=event.pages,
                    size_bytes=event.size_bytes,
                    issuer=event.issuer,
                    issued_at=timestamp(event.issued_at),
                )
            )
        case pl.NeedsReview(reasons=reasons, dossier_id=dossier_id):
            return pb.CertifyEvent(
                needs_review=pb.NeedsReview(reasons=list(reasons), dossier_id=dossier_id)
            )
        case pl.Rejected(reason=reason, message=message):
            return pb.CertifyEvent(rejected=pb.Rejected(reason=reason, message=message))
    raise TypeError(f"unknown event {event!r}")
