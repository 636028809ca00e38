"""Fuzz verification of an uploaded PDF: the path behind ``POST /verify`` (and the gRPC
VerifyPdf), ``Verifier.by_pdf``, over any bytes. It documents InvalidInput for bytes that are
not a readable PDF and TooLarge for one beyond what a copy can be (pages, objects, revisions,
decoded bytes); the HTTP page answers those 422 and 413. Anything else escaping is a crash; a
report must be a verdict with its checks, and never VALID (the registry here holds no copy).

The verifier is the server's, over an empty registry (SQLite in a throwaway folder) and with
no trust root: every signature is checked (integrity, difference analysis) and reads as
untrusted, which is what an upload signed elsewhere gets. pyHanko's PDF reader is
instrumented too.

    .venv/bin/python fuzz/fuzz_pdfverify.py OUT_DIR fuzz/corpus/pdfverify -max_total_time=600
"""

from __future__ import annotations

import atexit
import shutil
import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["saoy", "pyhanko"]):
    from saoy.core.errors import InvalidInput, TooLarge
    from saoy.core.storage.blobs import FileBlobStore
    from saoy.core.storage.registries import create_registry
    from saoy.core.trust.verify import Verdict, Verifier

_verifier: Verifier | None = None


def verifier() -> Verifier:
    work = Path(tempfile.mkdtemp(prefix="saoy-fuzz-pdf-"))
    atexit.register(shutil.rmtree, work, True)
    return Verifier(
        registry=create_registry(work / "registry.sqlite3"),
        blobs=FileBlobStore(work / "blobs"),
        trust_roots=[],
        base_url="http://localhost:8080",
    )


def test_one_input(data: bytes) -> None:
    assert _verifier is not None
    try:
        report = _verifier.by_pdf(data)
    except (InvalidInput, TooLarge) as error:
        assert error.message
        return
    assert report.verdict in (Verdict.UNKNOWN, Verdict.ALTERED), report.verdict
    assert report.reason


def main() -> None:
    global _verifier
    atheris.Setup(sys.argv, test_one_input)
    _verifier = verifier()
    atheris.Fuzz()


if __name__ == "__main__":
    main()
