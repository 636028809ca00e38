"""Publication of issued and revoked copies in the transparency log, with signed checkpoints.

The registry decides; the log publishes. Each issued or revoked copy becomes one leaf (no
personal data: kind, code, PDF hash, time, issuer). The two live in separate stores, so a process
killed between a registry commit and its append is healed by :meth:`LogPublisher.reconcile` at
start-up.
"""

from __future__ import annotations

import logging
from datetime import datetime

from saoy.core.storage.registry import CopyRecord, Registry
from saoy.core.trust.translog import (
    CheckpointRecord,
    CheckpointSigner,
    InclusionProof,
    LogEntry,
    TransparencyLog,
    decode_entry,
    encode_entry,
)

log = logging.getLogger("saoy.publication")


def issued_entry(copy: CopyRecord) -> bytes:
    return encode_entry(LogEntry("issued", copy.code, copy.blob_key, copy.issued_at, copy.issuer))


def revoked_entry(copy: CopyRecord) -> bytes:
    assert copy.revoked_at is not None
    return encode_entry(LogEntry("revoked", copy.code, copy.blob_key, copy.revoked_at, copy.issuer))


class LogPublisher:
    """Appends copies to the log, issues checkpoints, and answers proofs about a code."""

    def __init__(self, log: TransparencyLog, signer: CheckpointSigner, registry: Registry) -> None:
        self.log = log
        self.signer = signer
        self.registry = registry

    # Each entry is appended once (append_once), whichever processes publish or reconcile it.

    def issued(self, copy: CopyRecord) -> int:
        return self.log.append_once(issued_entry(copy))

    def revoked(self, copy: CopyRecord) -> int:
        return self.log.append_once(revoked_entry(copy))

    def approved(self, copy: CopyRecord) -> int:
        """An official approved this copy (issued after review)."""
        entry = LogEntry("approved", copy.code, copy.blob_key, copy.issued_at, copy.issuer)
        return self.log.append_once(encode_entry(entry))

    def refused(self, reference: str, record_sha256: str, at: datetime, issuer: str) -> int:
        """An official refused a dossier: its refusal's reference code and record hash."""
        entry = encode_entry(LogEntry("refused", reference, record_sha256, at, issuer))
        return self.log.append_once(entry)

    def reconcile(self) -> int:
        """Append what the registry holds and the log lacks; the number appended."""
        added = 0
        for copy in self.registry.copies():
            kinds = {decode_entry(self.log.entry(i)).kind for i in self.log.indexes_of(copy.code)}
            if "issued" not in kinds:
                self.issued(copy)
                added += 1
            if copy.revoked_at is not None and "revoked" not in kinds:
                self.revoked(copy)
                added += 1
        if added:
            log.warning("appended %d entr(ies) missing from the transparency log", added)
        return added

    def checkpoint_if_grown(self) -> CheckpointRecord | None:
        """Sign a checkpoint when the log grew since the last one; the latest either way."""
        latest = self.log.latest_checkpoint()
        if latest is None or latest.size < self.log.size():
            self.log.checkpoint(self.signer)
            latest = self.log.latest_checkpoint()
        return latest

    def proof(self, code: str) -> InclusionProof | None:
        """Inclusion proof of the copy's issuance against the latest checkpoint, if covered."""
        for index in self.log.indexes_of(code):
            if decode_entry(self.log.entry(index)).kind == "issued":
                return self.log.proof_for(index)
        return None
