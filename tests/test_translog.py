"""The transparency log: RFC 9162 verifiers against the published vectors, proofs from the stored
tree against the vectors and the RFC's recursive definitions, concurrent appends, signed
checkpoints. Every test of the stored log runs on both stores: SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from saoy.core.errors import InvalidInput, NotFound
from saoy.core.reception import codes
from saoy.core.trust.translog import (
    EMPTY_ROOT,
    CheckpointSigner,
    InclusionProof,
    LogEntry,
    SqliteTransparencyLog,
    TransparencyLog,
    consistency_path,
    decode_entry,
    encode_entry,
    ensure_log_key,
    inclusion_path,
    leaf_hash,
    node_hash,
    parse_verifier_key,
    reference_subtree,
    root_from_leaves,
    verifier_key,
    verify_checkpoint,
    verify_consistency,
    verify_inclusion,
)
from saoy.core.trust.translog_pg import PgTransparencyLog
from tests.pg import postgres_server, postgresql_url

__all__ = ["postgres_server", "postgresql_url"]

VECTORS = Path(__file__).resolve().parent / "data" / "merkle"
ORIGIN = "saoy.test/log"


def _vectors(kind: str) -> list[Path]:
    return sorted((VECTORS / kind).rglob("*.json"))


def _b64(text: str) -> bytes:
    return base64.b64decode(text)


def _proof(value: list[str] | None) -> list[bytes] | None:
    return None if value is None else [_b64(p) for p in value]


def _ids(paths: list[Path]) -> list[str]:
    return [str(p.relative_to(VECTORS)) for p in paths]


INCLUSION = _vectors("inclusion")
CONSISTENCY = _vectors("consistency")


def test_vector_sets_are_present() -> None:
    assert len(INCLUSION) >= 90 and len(CONSISTENCY) >= 90


@pytest.mark.parametrize("path", INCLUSION, ids=_ids(INCLUSION))
def test_inclusion_verifier_agrees_with_vector(path: Path) -> None:
    v = json.loads(path.read_text())
    ok = verify_inclusion(
        _b64(v["leafHash"]), v["leafIdx"], v["treeSize"], _proof(v["proof"]), _b64(v["root"])
    )
    assert ok is (not v["wantErr"]), v["desc"]


@pytest.mark.parametrize("path", CONSISTENCY, ids=_ids(CONSISTENCY))
def test_consistency_verifier_agrees_with_vector(path: Path) -> None:
    v = json.loads(path.read_text())
    ok = verify_consistency(
        v["size1"], v["size2"], _b64(v["root1"]), _b64(v["root2"]), _proof(v["proof"])
    )
    assert ok is (not v["wantErr"]), v["desc"]


# -- pure proofs, against the RFC's recursive reference ---------------------------------------


def _leaves(n: int) -> list[bytes]:
    return [leaf_hash(b"leaf %d" % i) for i in range(n)]


def test_root_follows_rfc_structure() -> None:
    a, b, c = _leaves(3)
    assert root_from_leaves([]) == EMPTY_ROOT
    assert root_from_leaves([a]) == a
    assert root_from_leaves([a, b, c]) == node_hash(node_hash(a, b), c)
    assert leaf_hash(b"") == bytes.fromhex(
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    )


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 300).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n - 1))))
def test_inclusion_proofs_verify(case: tuple[int, int]) -> None:
    size, index = case
    leaves = _leaves(size)
    proof = inclusion_path(index, size, reference_subtree(leaves))
    assert verify_inclusion(leaves[index], index, size, proof, root_from_leaves(leaves))


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 300).flatmap(lambda n: st.tuples(st.integers(1, n), st.just(n))))
def test_consistency_proofs_verify(case: tuple[int, int]) -> None:
    old, new = case
    leaves = _leaves(new)
    proof = consistency_path(old, new, reference_subtree(leaves))
    assert verify_consistency(
        old, new, root_from_leaves(leaves[:old]), root_from_leaves(leaves), proof
    )


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_tampered_inclusion_proof_fails(data: st.DataObject) -> None:
    size = data.draw(st.integers(2, 200))
    index = data.draw(st.integers(0, size - 1))
    leaves = _leaves(size)
    root = root_from_leaves(leaves)
    proof = inclusion_path(index, size, reference_subtree(leaves))
    which = data.draw(st.integers(0, len(proof) - 1))
    bit = data.draw(st.integers(0, 255))
    tampered = list(proof)
    tampered[which] = _flip(tampered[which], bit)
    assert not verify_inclusion(leaves[index], index, size, tampered, root)
    assert not verify_inclusion(_flip(leaves[index], bit), index, size, proof, root)
    assert not verify_inclusion(leaves[index], index, size, proof[:-1], root)
    assert not verify_inclusion(leaves[index], index, size, [*proof, proof[0]], root)
    other = data.draw(st.integers(0, size - 1).filter(lambda i: i != index))
    assert not verify_inclusion(leaves[index], other, size, proof, root)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_tampered_consistency_proof_fails(data: st.DataObject) -> None:
    new = data.draw(st.integers(2, 200))
    old = data.draw(st.integers(1, new - 1))
    leaves = _leaves(new)
    old_root, new_root = root_from_leaves(leaves[:old]), root_from_leaves(leaves)
    proof = consistency_path(old, new, reference_subtree(leaves))
    which = data.draw(st.integers(0, len(proof) - 1))
    bit = data.draw(st.integers(0, 255))
    tampered = list(proof)
    tampered[which] = _flip(tampered[which], bit)
    assert not verify_consistency(old, new, old_root, new_root, tampered)
    assert not verify_consistency(old, new, _flip(old_root, bit), new_root, proof)
    assert not verify_consistency(old, new, old_root, _flip(new_root, bit), proof)
    assert not verify_consistency(old, new, old_root, new_root, proof[:-1])


def _flip(value: bytes, bit: int) -> bytes:
    out = bytearray(value)
    out[bit // 8 % len(out)] ^= 1 << (bit % 8)
    return bytes(out)


# -- log entries ------------------------------------------------------------------------------

AT = datetime(2026, 5, 1, 3, 4, 5, tzinfo=UTC)


def _entry(kind: str = "issued", code: str | None = None) -> LogEntry:
    return LogEntry(kind, code or codes.new_code(), "ab" * 32, AT, "UBND Phường Bến Nghé")


def test_entry_round_trips_in_canonical_form() -> None:
    entry = _entry()
    data = encode_entry(entry)
    assert decode_entry(data) == entry
    assert data.startswith(b'{"at":"2026-05-01T03:04:05Z","code":"')
    assert b", " not in data and b": " not in data and data.isascii()


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.replace(b'"v":1', b'"v":2'),
        lambda d: d.replace(b'{"at"', b'{ "at"'),
        lambda d: d.replace(b'"issued"', b'"deleted"'),
        lambda d: d[:-1] + b',"name":"x"}',
        lambda d: b"\xff" + d,
        lambda d: d.replace(b"05Z", b"05+00:00"),
    ],
    ids=["version", "whitespace", "kind", "extra-key", "not-ascii", "time-format"],
)
def test_non_canonical_entry_is_refused(mutate: object) -> None:
    data = encode_entry(_entry())
    with pytest.raises(InvalidInput):
        decode_entry(mutate(data))  # type: ignore[operator]


# -- the stored log, on both stores ----------------------------------------------------------

BACKENDS = ["sqlite", "postgresql"]
OpenLog = Callable[[], TransparencyLog]


@pytest.fixture(params=BACKENDS)
def open_log(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OpenLog]:
    """Opens the same log again and again (as several processes would), closed after the test."""
    opened: list[TransparencyLog] = []
    if request.param == "postgresql":
        url = request.getfixturevalue("postgresql_url")

        def make() -> TransparencyLog:
            return PgTransparencyLog(url)
    else:

        def make() -> TransparencyLog:
            return SqliteTransparencyLog(tmp_path / "log.sqlite3")

    def opener() -> TransparencyLog:
        opened.append(make())
        return opened[-1]

    yield opener
    for log in opened:
        log.close()


@pytest.fixture
def tlog(open_log: OpenLog) -> TransparencyLog:
    return open_log()


# The leaves of the reference tree the vectors' happy paths were computed over.
VECTOR_LEAVES = [
    bytes.fromhex(h)
    for h in (
        *("", "00", "10", "2021", "3031", "40414243", "5051525354555657"),
        "606162636465666768696a6b6c6d6e6f",
    )
]
HAPPY = sorted(VECTORS.glob("*/[0-9]*/happy-path.json"))


def test_stored_tree_reproduces_the_vectors(tlog: TransparencyLog) -> None:
    assert len(HAPPY) >= 10
    tlog.append_many(VECTOR_LEAVES)
    for path in HAPPY:
        v = json.loads(path.read_text())
        proof = _proof(v["proof"]) or []
        if "leafIdx" in v:
            assert tlog.root(v["treeSize"]) == _b64(v["root"]), path
            assert tlog.inclusion_proof(v["leafIdx"], v["treeSize"]) == proof, path
            assert leaf_hash(tlog.entry(v["leafIdx"])) == _b64(v["leafHash"]), path
        else:
            assert tlog.root(v["size1"]) == _b64(v["root1"]), path
            assert tlog.root(v["size2"]) == _b64(v["root2"]), path
            assert tlog.consistency_proof(v["size1"], v["size2"]) == proof, path


@pytest.fixture
def signer(tmp_path: Path) -> CheckpointSigner:
    return CheckpointSigner.from_file(ensure_log_key(tmp_path / "keys"), ORIGIN)


def test_stored_tree_matches_reference_at_every_size(tlog: TransparencyLog) -> None:
    entries = [b"entry %d" % i for i in range(70)]
    assert tlog.root() == EMPTY_ROOT
    assert tlog.append_many(entries[:33]) == list(range(33))
    for e in entries[33:]:
        tlog.append(e)
    leaves = [leaf_hash(e) for e in entries]
    assert tlog.size() == 70
    for size in range(71):
        assert tlog.root(size) == root_from_leaves(leaves[:size])
    for size in (1, 2, 7, 32, 33, 64, 70):
        for index in range(size):
            want = inclusion_path(index, size, reference_subtree(leaves))
            assert tlog.inclusion_proof(index, size) == want
        for old in range(1, size + 1):
            want = consistency_path(old, size, reference_subtree(leaves))
            assert tlog.consistency_proof(old, size) == want
    assert tlog.entry(69) == entries[69]


def test_out_of_range_requests_are_refused(tlog: TransparencyLog) -> None:
    tlog.append_many([b"a", b"b", b"c"])
    with pytest.raises(InvalidInput):
        tlog.root(4)
    with pytest.raises(InvalidInput):
        tlog.inclusion_proof(3, 3)
    with pytest.raises(InvalidInput):
        tlog.consistency_proof(0, 2)
    with pytest.raises(InvalidInput):
        tlog.consistency_proof(3, 2)
    with pytest.raises(NotFound):
        tlog.entry(3)


def test_concurrent_appends_get_distinct_indexes(open_log: OpenLog) -> None:
    logs = [open_log(), open_log()]  # two "processes"
    got: list[int] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        for i in range(25):
            index = logs[n % 2].append(b"w%d-%d" % (n, i))
            with lock:
                got.append(index)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == list(range(200))
    leaves = [leaf_hash(logs[0].entry(i)) for i in range(200)]
    assert logs[1].root() == root_from_leaves(leaves)


def test_racing_publishers_append_each_entry_once(open_log: OpenLog) -> None:
    logs = [open_log(), open_log()]  # two "processes" publishing and reconciling the same copies
    entries = [encode_entry(_entry()) for _ in range(12)] + [b"no code", b"no code either"]
    got: list[list[int]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(6)

    def worker(n: int) -> None:
        barrier.wait()
        mine = [logs[n % 2].append_once(e) for e in (entries if n % 3 else entries[::-1])]
        with lock:
            got.append(mine if n % 3 else mine[::-1])

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(indexes == got[0] for indexes in got)
    assert sorted(got[0]) == list(range(len(entries))) and logs[0].size() == len(entries)
    assert [logs[1].entry(i) for i in got[0]] == entries
    logs[0].append(entries[0])  # a plain append repeats; append_once finds the first
    assert logs[1].append_once(entries[0]) == got[0][0]


def test_entries_are_found_by_code(tlog: TransparencyLog) -> None:
    issued = _entry()
    tlog.append(b"not an entry")
    tlog.append(encode_entry(issued))
    tlog.append(encode_entry(_entry()))
    revoked = _entry("revoked", issued.code)
    tlog.append(encode_entry(revoked))
    assert tlog.indexes_of(issued.code) == [1, 3]
    assert decode_entry(tlog.entry(3)) == revoked


# -- checkpoints ------------------------------------------------------------------------------


def test_log_key_is_created_once_and_reused(tmp_path: Path) -> None:
    path = ensure_log_key(tmp_path)
    first = path.read_bytes()
    assert ensure_log_key(tmp_path) == path and path.read_bytes() == first
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_checkpoint_round_trip(tlog: TransparencyLog, signer: CheckpointSigner) -> None:
    tlog.append_many([b"a", b"b", b"c"])
    note = tlog.checkpoint(signer)
    lines = note.split("\n")
    assert lines[:3] == [ORIGIN, "3", base64.b64encode(tlog.root()).decode()]
    assert lines[3].startswith("time ") and lines[4] == ""
    assert lines[5].startswith(f"\u2014 {ORIGIN} ") and lines[6] == ""
    checkpoint = verify_checkpoint(note, signer.public_key, origin=ORIGIN)
    assert checkpoint.signature_ok
    assert (checkpoint.origin, checkpoint.size, checkpoint.root) == (ORIGIN, 3, tlog.root())
    assert checkpoint.time is not None
    latest = tlog.latest_checkpoint()
    assert latest is not None and latest.note == note and latest.size == 3
    assert verifier_key(ORIGIN, signer.public_key).startswith(f"{ORIGIN}+{signer.key_hash.hex()}+")


def test_verifier_keys_round_trip_whatever_their_base64_holds() -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    seen_plus = False
    for _ in range(64):  # most 44-character base64 keys hold a "+" or a "/"
        public_key = Ed25519PrivateKey.generate().public_key()
        text = verifier_key(ORIGIN, public_key)
        seen_plus |= "+" in text.split("+", 2)[2]
        name, parsed = parse_verifier_key(text + "\n")
        assert name == ORIGIN and parsed == public_key
    assert seen_plus
    with pytest.raises(InvalidInput):
        parse_verifier_key(f"{ORIGIN}+00000000+" + text.split("+", 2)[2])


def test_checkpoint_with_a_flipped_byte_fails(
    tlog: TransparencyLog, signer: CheckpointSigner, tmp_path: Path
) -> None:
    tlog.append_many([b"a", b"b", b"c"])
    note = tlog.checkpoint(signer)
    body_end = note.index("\n\n")
    for position in range(body_end):
        tampered = note[:position] + chr(ord(note[position]) ^ 1) + note[position + 1 :]
        try:
            result = verify_checkpoint(tampered, signer.public_key)
        except InvalidInput:
            continue
        assert not result.signature_ok, f"byte {position} flipped went unnoticed"
    sig_at = note.rindex(" ") + 10
    tampered = note[:sig_at] + ("A" if note[sig_at] != "A" else "B") + note[sig_at + 1 :]
    assert not verify_checkpoint(tampered, signer.public_key).signature_ok
    other = CheckpointSigner.from_file(ensure_log_key(tmp_path / "other"), ORIGIN)
    assert not verify_checkpoint(note, other.public_key).signature_ok
    assert not verify_checkpoint(note, signer.public_key, origin="elsewhere/log").signature_ok


@pytest.mark.parametrize(
    "note",
    [
        "",
        "o\n1\n",
        "o\n1\nAAAA\n\n\u2014 o AAAA\n",
        "o\nx\n" + "A" * 43 + "=\n\n\u2014 o AAAAAAAA\n",
    ],
    ids=["empty", "no-signature", "short-root", "bad-size"],
)
def test_malformed_checkpoint_is_invalid_input(note: str, signer: CheckpointSigner) -> None:
    with pytest.raises(InvalidInput):
        verify_checkpoint(note, signer.public_key)


def test_consistency_between_stored_checkpoints_verifies(
    tlog: TransparencyLog, signer: CheckpointSigner
) -> None:
    tlog.append_many([b"e%d" % i for i in range(13)])
    tlog.checkpoint(signer)
    tlog.append_many([b"f%d" % i for i in range(29)])
    tlog.checkpoint(signer)
    old, new = (verify_checkpoint(c.note, signer.public_key) for c in tlog.checkpoints())
    assert old.signature_ok and new.signature_ok and (old.size, new.size) == (13, 42)
    proof = tlog.consistency_proof(old.size, new.size)
    assert verify_consistency(old.size, new.size, old.root, new.root, proof)
    assert not verify_consistency(old.size, new.size, new.root, old.root, proof)


def test_inclusion_proof_against_latest_checkpoint(
    tlog: TransparencyLog, signer: CheckpointSigner
) -> None:
    entry = encode_entry(_entry())
    index = tlog.append_many([b"x", b"y", entry, b"z"])[2]
    assert tlog.proof_for(index) is None  # no checkpoint yet
    tlog.checkpoint(signer)
    tlog.append(b"after")
    proof = tlog.proof_for(index)
    assert isinstance(proof, InclusionProof)
    assert (proof.index, proof.size, proof.entry) == (2, 4, entry)
    assert proof.verify(signer.public_key, origin=ORIGIN)
    forged = InclusionProof(
        proof.index, proof.size, proof.leaf_hash, proof.hashes, proof.checkpoint, b"forged"
    )
    assert not forged.verify(signer.public_key)
    with pytest.raises(NotFound):
        tlog.proof_for(99)


def test_proofs_in_a_large_log_verify(open_log: OpenLog) -> None:
    with open_log() as log:
        log.append_many(b"entry %d" % i for i in range(100_000))
        root = log.root()
        for index in (0, 1, 4095, 65535, 65536, 99_998, 99_999):
            proof = log.inclusion_proof(index)
            assert verify_inclusion(leaf_hash(b"entry %d" % index), index, 100_000, proof, root)
        for old in (1, 65536, 70_001, 99_999):
            proof = log.consistency_proof(old, 100_000)
            assert verify_consistency(old, 100_000, log.root(old), root, proof)


@pytest.fixture(params=BACKENDS)
def fresh_log(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[], TransparencyLog]:
    """Opens a new, empty log at each call (Hypothesis runs many examples in one test)."""
    if request.param == "sqlite":
        return lambda: SqliteTransparencyLog(tmp_path_factory.mktemp("log") / "log.sqlite3")
    server = request.getfixturevalue("postgres_server")

    def make() -> TransparencyLog:
        name = f"saoy_{uuid.uuid4().hex}"
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        return PgTransparencyLog(server.rsplit("/", 1)[0] + "/" + name)

    return make


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.binary(max_size=8), min_size=1, max_size=60), st.data())
def test_stored_proofs_verify_for_random_logs(
    fresh_log: Callable[[], TransparencyLog], entries: list[bytes], data: st.DataObject
) -> None:
    with fresh_log() as log:
        log.append_many(entries)
        size = data.draw(st.integers(1, len(entries)))
        index = data.draw(st.integers(0, size - 1))
        old = data.draw(st.integers(1, size))
        root = log.root(size)
        assert verify_inclusion(
            leaf_hash(entries[index]), index, size, log.inclusion_proof(index, size), root
        )
        assert verify_consistency(old, size, log.root(old), root, log.consistency_proof(old, size))
