"""Signing and verification time per copy, on the 4-page reference copy (with the signed
offline payload in its QR, as issued).

Compared in one run (ratios, not absolute times): PAdES B-T vs B-LTA with file keys, file keys
vs SoftHSM2 keys at B-LTA, verification (inspect_pdf) of a B-T vs a B-LTA copy, and the ways
anyone checks a B-LTA copy: by code (Verifier.by_code, registry of --copies copies, with the
transparency log's inclusion proof), by PDF (Verifier.by_pdf), and offline (verify_offline: the
PDF with the QR certificate alone, the same with the root so the chain and PAdES signatures are
checked too, and a photo of the printed QR). Medians over N runs after one warm-up each.

    python benchmarks/signing.py --runs 20
    python benchmarks/signing.py --runs 20 --no-hsm   # without SoftHSM2

SoftHSM2 (apt-get install softhsm2) and python-pkcs11 are needed for the HSM row; the token
is a throw-away one in a temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hashlib
import io
import logging
import os
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography import x509
from PIL import Image

from saoy.clients.simulator.docgen import reference_dossier
from saoy.core.model import CertificationBlock, RenderPage
from saoy.core.pages.pdfcheck import inspect_pdf
from saoy.core.reception import codes
from saoy.core.render import BAND_HEIGHT
from saoy.core.storage.blobs import FileBlobStore
from saoy.core.storage.registry import CopyRecord, DossierRecord, SqliteRegistry, store_dossier
from saoy.core.trust.offline import (
    load_qr_certificates,
    rasterize_page,
    render_with_qr,
    verify_offline,
)
from saoy.core.trust.pki import DevPki, ensure_dev_pki
from saoy.core.trust.publication import LogPublisher
from saoy.core.trust.signing import CopySigner, create_copy_signer, import_key_to_pkcs11
from saoy.core.trust.translog import CheckpointSigner, SqliteTransparencyLog, ensure_log_key
from saoy.core.trust.verify import Verdict, Verifier

SOFTHSM_MODULE = Path("/usr/lib/softhsm/libsofthsm2.so")
BASE_URL = "https://saoy.example.gov.vn"


def reference_copy(pki: DevPki, block: CertificationBlock) -> bytes:
    """The unsigned reference copy, its QR carrying the payload signed with the PKI's QR key."""
    pages = []
    for _, data in reference_dossier():
        with Image.open(io.BytesIO(data)) as image:
            dpi = float(image.info.get("dpi", (150, 150))[0]) or 150.0
            pages.append(RenderPage(data, "jpeg", image.width, image.height, dpi))
    return render_with_qr(pages, block, pki.qr_signer())


def registry_with(
    workdir: Path, copy_pdf: bytes, block: CertificationBlock, others: int
) -> tuple[SqliteRegistry, FileBlobStore, LogPublisher]:
    """A registry holding the reference copy among ``others`` more, each also in the log."""
    registry = SqliteRegistry(workdir / "registry.sqlite3")
    blobs = FileBlobStore(workdir / "blobs")
    log = SqliteTransparencyLog(workdir / "translog.sqlite3")
    publisher = LogPublisher(
        log, CheckpointSigner.from_file(ensure_log_key(workdir / "keys"), "bench/log"), registry
    )
    fillers = [(codes.new_code(), b"%%PDF-1.7 filler %d" % i) for i in range(others)]
    for code, pdf in [*fillers[: others // 2], (block.code, copy_pdf), *fillers[others // 2 :]]:
        dossier = DossierRecord(
            id=uuid.uuid4().hex,
            request_id=uuid.uuid4().hex,
            kiosk_id="bench",
            state="ISSUED",
            created_at=block.issued_at,
            decided_at=block.issued_at,
            page_count=4,
            reasons=(),
            checks=(),
        )
        copy = CopyRecord(
            code=code,
            dossier_id=dossier.id,
            blob_key=hashlib.sha256(pdf).hexdigest(),
            size_bytes=len(pdf),
            issuer=block.issuer,
            issued_at=block.issued_at,
            pages=4,
            revoked_at=None,
            revoke_reason=None,
        )
        store_dossier(
            registry,
            blobs,
            page_files=[],
            pdf=pdf,
            dossier=dossier,
            pages=[],
            copy=copy,
            event_kind="issued",
            event_detail={"pages": 4},
        )
        publisher.issued(copy)
    publisher.checkpoint_if_grown()
    return registry, blobs, publisher


def qr_photo(pdf: bytes) -> bytes:
    """A phone-like photo of page 1's QR: cropped, a little askew, JPEG."""
    dpi = 200
    page = rasterize_page(pdf, 1, dpi=dpi)
    side = round(BAND_HEIGHT * dpi / 72)
    crop = page.crop((0, page.height - side, side, page.height))
    photo = crop.rotate(5, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=255)
    out = io.BytesIO()
    photo.convert("RGB").save(out, "JPEG", quality=75)
    return out.getvalue()


def median_seconds(fn: Callable[[], object], runs: int) -> float:
    fn()  # warm-up: caches, validation context, HSM objects
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def softhsm_signer(pki: DevPki, workdir: Path) -> CopySigner:
    import pkcs11

    (workdir / "tokens").mkdir()
    conf = workdir / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {workdir / 'tokens'}\nobjectstore.backend = file\n")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    subprocess.run(
        [
            "softhsm2-util",
            "--init-token",
            "--free",
            "--label",
            "bench",
            "--pin",
            "1234",
            "--so-pin",
            "5678",
        ],
        check=True,
        capture_output=True,
    )
    lib = pkcs11.lib(str(SOFTHSM_MODULE))
    with lib.get_token(token_label="bench").open(rw=True, user_pin="1234") as session:
        import_key_to_pkcs11(session, pki.load(pki.official_path), "official")
        import_key_to_pkcs11(session, pki.load(pki.seal_path), "seal")
    return create_copy_signer(
        pki, backend="pkcs11", pkcs11_module=SOFTHSM_MODULE, pkcs11_token="bench", pkcs11_pin="1234"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--no-hsm", action="store_true", help="skip the SoftHSM2 row")
    parser.add_argument(
        "--copies", type=int, default=1000, help="copies in the registry verified by code"
    )
    args = parser.parse_args()
    # pyHanko explains at WARNING why a B-T copy has no long-term proof; expected here.
    logging.getLogger("pyhanko").setLevel(logging.ERROR)

    with tempfile.TemporaryDirectory(prefix="saoy-sign-bench-") as tmp:
        workdir = Path(tmp)
        pki = ensure_dev_pki(workdir / "pki", organization="UBND (bench)", passphrase=b"bench")
        code = codes.new_code()
        block = CertificationBlock(
            code=code,
            url=f"{BASE_URL}/v/{code}",
            issuer=pki.organization,
            issued_at=dt.datetime.now(dt.UTC).replace(microsecond=0),
        )
        pdf = reference_copy(pki, block)
        roots = [pki.root_certificate()]
        print(f"reference copy: 4 pages, {len(pdf) / 1e6:.2f} MB unsigned; {args.runs} runs each")

        signers: dict[str, CopySigner] = {
            "file key, B-T": create_copy_signer(pki, level="B-T"),
            "file key, B-LTA": create_copy_signer(pki, level="B-LTA"),
        }
        hsm = not args.no_hsm and SOFTHSM_MODULE.is_file() and shutil.which("softhsm2-util")
        if hsm:
            signers["SoftHSM2, B-LTA"] = softhsm_signer(pki, workdir)
        else:
            print("SoftHSM2 row skipped (apt-get install softhsm2; pip install python-pkcs11)")

        signing = {}
        copies = {}
        for name, signer in signers.items():
            copies[name] = asyncio.run(signer.sign(pdf))

            def sign(s: CopySigner = signer) -> object:
                return asyncio.run(s.sign(pdf))

            signing[name] = median_seconds(sign, args.runs)
        base = signing["file key, B-T"]
        print("\nsigning, per copy (official + seal)   median    vs file key B-T")
        for name, seconds in signing.items():
            print(f"  {name:<34} {seconds * 1000:7.1f} ms   x{seconds / base:.2f}")
        if hsm:
            ratio = signing["SoftHSM2, B-LTA"] / signing["file key, B-LTA"]
            print(f"  SoftHSM2 / file key at B-LTA:       x{ratio:.2f}")

        crls = pki.crls()
        verifying = {}
        for name in ("file key, B-T", "file key, B-LTA"):
            copy = copies[name]
            report = inspect_pdf(copy, roots, crls=crls)
            assert report.bottom_line, report.reason

            def verify(c: bytes = copy) -> object:
                return inspect_pdf(c, roots, crls=crls)

            verifying[name] = median_seconds(verify, args.runs)
        vbase = verifying["file key, B-T"]
        print("\nverification by PDF (inspect_pdf)     median    vs B-T copy")
        for name, seconds in verifying.items():
            level = name.split(", ")[1]
            size = len(copies[name]) / 1e6
            label = f"{level} copy ({size:.2f} MB)"
            print(f"  {label:<34} {seconds * 1000:7.1f} ms   x{seconds / vbase:.2f}")
        for signer in signers.values():
            signer.close()

        copy = copies["file key, B-LTA"]
        registry, blobs, publisher = registry_with(workdir, copy, block, args.copies - 1)
        verifier = Verifier(
            registry=registry,
            blobs=blobs,
            trust_roots=roots,
            crls=pki.crls,
            base_url=BASE_URL,
            publisher=publisher,
        )
        qr_cert, qr_chain = load_qr_certificates(pki.qr_certificate_pem())
        root = x509.load_pem_x509_certificate(pki.root_path.read_bytes())
        photo = qr_photo(copy)
        ways: dict[str, Callable[[], Any]] = {
            "by code (Verifier.by_code)": lambda: verifier.by_code(code),
            "by PDF (Verifier.by_pdf)": lambda: verifier.by_pdf(copy),
            "offline, PDF + qr.pem": lambda: verify_offline(
                copy, qr_cert=qr_cert, qr_chain=qr_chain
            ),
            "offline, PDF + qr.pem + root": lambda: verify_offline(
                copy, qr_cert=qr_cert, qr_chain=qr_chain, trust_roots=[root], crls=crls
            ),
            "offline, photo of the QR": lambda: verify_offline(
                photo, qr_cert=qr_cert, qr_chain=qr_chain
            ),
        }
        checking = {}
        for name, way in ways.items():
            report = way()
            assert report.verdict is Verdict.VALID, f"{name}: {report.reason}"
            checking[name] = median_seconds(way, args.runs)
        cbase = checking["by code (Verifier.by_code)"]
        print(f"\nverifying the B-LTA copy ({args.copies} copies registered)  median    vs by code")
        for name, seconds in checking.items():
            print(f"  {name:<34} {seconds * 1000:7.1f} ms   x{seconds / cbase:.1f}")
        registry.close()
        publisher.log.close()


if __name__ == "__main__":
    main()
