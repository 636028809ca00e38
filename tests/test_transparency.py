"""Every issued or revoked copy is a leaf of the transparency log, with proofs a client checks."""

from __future__ import annotations

import time
import urllib.request

import grpc
import pytest

from saoy.clients.sdk import OfficialClient
from saoy.core.storage.registry import SqliteRegistry
from saoy.core.trust.publication import LogPublisher
from saoy.core.trust.translog import (
    CheckpointSigner,
    InclusionProof,
    SqliteTransparencyLog,
    decode_entry,
    ensure_log_key,
    parse_verifier_key,
    verify_checkpoint,
    verify_consistency,
)
from saoy.v1 import verification_pb2 as vpb
from saoy.v1 import verification_pb2_grpc as vgrpc

from .conftest import RunningServer


def log_key(server: RunningServer):
    with urllib.request.urlopen(f"{server.http}/log/key") as response:
        return parse_verifier_key(response.read().decode())


def certify_one(server: RunningServer, data: bytes, kiosk: str) -> str:
    with server.client(kiosk_id=kiosk) as client:
        result = client.certify([data], session_token=server.token(kiosk))
    assert result.issued is not None
    return result.issued.code


def proven(server: RunningServer, code: str) -> vpb.VerificationResult:
    """Verify by code until a checkpoint covers the copy (checkpoints come every 0.2 s here)."""
    with server.client() as client:
        for _ in range(100):
            result = client.verify_code(code)
            if result.HasField("inclusion"):
                return result
            time.sleep(0.1)
    raise AssertionError("no checkpoint covered the copy in 10 s")


def test_verification_by_code_carries_a_checkable_inclusion_proof(
    server: RunningServer, reference_dossier: list[tuple[str, bytes]]
) -> None:
    code = certify_one(server, reference_dossier[1][1], "kiosk-log")
    result = proven(server, code)
    origin, key = log_key(server)
    proof = result.inclusion
    entry = decode_entry(proof.entry)
    assert (entry.kind, entry.code, entry.sha256) == ("issued", code, result.sha256)
    assert InclusionProof(
        proof.leaf_index,
        proof.tree_size,
        proof.leaf_hash,
        tuple(proof.hashes),
        proof.checkpoint,
        proof.entry,
    ).verify(key, origin=origin)
    forged = bytearray(proof.entry)
    forged[-3] ^= 1
    assert not InclusionProof(
        proof.leaf_index,
        proof.tree_size,
        proof.leaf_hash,
        tuple(proof.hashes),
        proof.checkpoint,
        bytes(forged),
    ).verify(key, origin=origin)


def test_checkpoints_are_consistent_and_revocations_are_logged(
    server: RunningServer, reference_dossier: list[tuple[str, bytes]]
) -> None:
    origin, key = log_key(server)
    code = certify_one(server, reference_dossier[0][1], "kiosk-log2")
    proven(server, code)
    with grpc.insecure_channel(server.target) as channel:
        stub = vgrpc.VerificationStub(channel)
        old = stub.GetCheckpoint(vpb.GetCheckpointRequest())
        token = (server.data_dir / "admin.tokens").read_text().split()[0]
        with OfficialClient(server.target, token) as official:
            official.revoke(code, "withdrawn for the log test")
        deadline = time.monotonic() + 10
        new = old
        while new.tree_size == old.tree_size and time.monotonic() < deadline:
            time.sleep(0.1)
            new = stub.GetCheckpoint(vpb.GetCheckpointRequest())
        assert new.tree_size == old.tree_size + 1
        proof = stub.GetConsistencyProof(
            vpb.ConsistencyProofRequest(old_size=old.tree_size, new_size=new.tree_size)
        )
        with pytest.raises(grpc.RpcError) as beyond:
            stub.GetConsistencyProof(
                vpb.ConsistencyProofRequest(old_size=1, new_size=new.tree_size + 5)
            )
    assert beyond.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    old_cp = verify_checkpoint(old.note, key, origin=origin)
    new_cp = verify_checkpoint(new.note, key, origin=origin)
    assert old_cp.signature_ok and new_cp.signature_ok
    assert verify_consistency(
        old.tree_size, new.tree_size, old_cp.root, new_cp.root, list(proof.hashes)
    )
    assert not verify_consistency(
        old.tree_size, new.tree_size, new_cp.root, old_cp.root, list(proof.hashes)
    )


def test_reconcile_appends_what_a_crash_left_out(tmp_path, server: RunningServer) -> None:
    registry = SqliteRegistry(server.data_dir / "registry.sqlite3")
    log = SqliteTransparencyLog(tmp_path / "translog.sqlite3")  # a log that missed everything
    publisher = LogPublisher(
        log, CheckpointSigner.from_file(ensure_log_key(tmp_path), "test/log"), registry
    )
    try:
        copies = list(registry.copies())
        revoked = sum(1 for c in copies if c.revoked_at is not None)
        assert publisher.reconcile() == len(copies) + revoked
        assert publisher.reconcile() == 0
        assert log.size() == len(copies) + revoked
    finally:
        log.close()
        registry.close()


def test_the_logs_size_lag_and_checkpoint_age_are_exported(
    server: RunningServer, reference_dossier: list[tuple[str, bytes]]
) -> None:
    code = certify_one(server, reference_dossier[1][1], "kiosk-log-metrics")
    proven(server, code)
    registry = server.server.metrics.registry
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the loop exports after its next tick (0.2 s here)
        size = registry.get_sample_value("saoy_log_entries") or 0
        if size >= 1 and registry.get_sample_value("saoy_log_unsigned_entries") == 0:
            break
        time.sleep(0.1)
    assert registry.get_sample_value("saoy_log_entries") >= 1
    assert registry.get_sample_value("saoy_log_unsigned_entries") == 0
    age = registry.get_sample_value("saoy_log_checkpoint_age_seconds")
    assert age is not None and 0 <= age < 60
