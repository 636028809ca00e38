"""Signing and PDF verification time per copy, on the 4-page reference copy.

Compared in one run (ratios, not absolute times): PAdES B-T vs B-LTA with file keys, file keys
vs SoftHSM2 keys at B-LTA, and verification (inspect_pdf) of a B-T vs a B-LTA copy. Medians
over N runs after one warm-up each.

    python benchmarks/signing.py --runs 20
    python benchmarks/signing.py --runs 20 --no-hsm   # without SoftHSM2

SoftHSM2 (apt-get install softhsm2) and python-pkcs11 are needed for the HSM row; the token
is a throw-away one in a temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import io
import logging
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from saoy.clients.simulator.docgen import reference_dossier
from saoy.core.model import CertificationBlock, RenderPage
from saoy.core.pdfcheck import inspect_pdf
from saoy.core.pki import DevPki, ensure_dev_pki
from saoy.core.render import render_copy
from saoy.core.signing import CopySigner, create_copy_signer, import_key_to_pkcs11

SOFTHSM_MODULE = Path("/usr/lib/softhsm/libsofthsm2.so")
CODE = "7KQ4-M2XD-9TRV-H3BC-P"


def reference_copy(issuer: str) -> bytes:
    pages = []
    for _, data in reference_dossier():
        with Image.open(io.BytesIO(data)) as image:
            dpi = float(image.info.get("dpi", (150, 150))[0]) or 150.0
            pages.append(RenderPage(data, "jpeg", image.width, image.height, dpi))
    block = CertificationBlock(
        code=CODE,
        url=f"https://saoy.example.gov.vn/v/{CODE}",
        issuer=issuer,
        issued_at=dt.datetime.now(dt.UTC).replace(microsecond=0),
    )
    return render_copy(pages, block)


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
    args = parser.parse_args()
    # pyHanko explains at WARNING why a B-T copy has no long-term proof; expected here.
    logging.getLogger("pyhanko").setLevel(logging.ERROR)

    with tempfile.TemporaryDirectory(prefix="saoy-sign-bench-") as tmp:
        workdir = Path(tmp)
        pki = ensure_dev_pki(workdir / "pki", organization="UBND (bench)", passphrase=b"bench")
        pdf = reference_copy(pki.organization)
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


if __name__ == "__main__":
    main()
