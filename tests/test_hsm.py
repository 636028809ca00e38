"""Keys in an HSM: a throw-away SoftHSM2 token holds the official's and the seal's keys as
sensitive, non-extractable objects; copies are signed through PKCS#11 and verified."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from saoy.core.pages.pdfcheck import inspect_pdf
from saoy.core.render import render_copy
from saoy.core.trust.pki import DevPki, ensure_dev_pki
from saoy.core.trust.signing import (
    Pkcs11CopySigner,
    SigningLevel,
    create_copy_signer,
    import_key_to_pkcs11,
    open_pkcs11_session,
)
from tests.test_signing import CODE, ORGANIZATION, PASSPHRASE, _pdfsig, _scan

SOFTHSM_MODULE = Path("/usr/lib/softhsm/libsofthsm2.so")
TOKEN = "saoy-test"
PIN = "26041975"
SO_PIN = "11111111"
FROZEN = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=1)


def _require_softhsm() -> None:
    if shutil.which("softhsm2-util") is None or not SOFTHSM_MODULE.is_file():
        pytest.fail("SoftHSM2 is not installed: apt-get install softhsm2", pytrace=False)
    try:
        import pkcs11  # noqa: F401
    except ImportError:
        pytest.fail("python-pkcs11 is not installed: pip install python-pkcs11", pytrace=False)


@pytest.fixture(scope="module")
def token(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh SoftHSM2 token directory; SOFTHSM2_CONF points at it for this module."""
    _require_softhsm()
    base = tmp_path_factory.mktemp("softhsm")
    (base / "tokens").mkdir()
    conf = base / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {base / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n"
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SOFTHSM2_CONF", str(conf))
        subprocess.run(
            [
                "softhsm2-util",
                "--init-token",
                "--free",
                "--label",
                TOKEN,
                "--pin",
                PIN,
                "--so-pin",
                SO_PIN,
            ],
            check=True,
            capture_output=True,
            timeout=30,
        )
        yield conf


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> DevPki:
    return ensure_dev_pki(
        tmp_path_factory.mktemp("hsm-pki") / "pki", organization=ORGANIZATION, passphrase=PASSPHRASE
    )


@pytest.fixture(scope="module")
def provisioned(token: Path, pki: DevPki) -> Path:
    """The official's and the seal's keys and certificates imported into the token."""
    import pkcs11

    lib = pkcs11.lib(str(SOFTHSM_MODULE))
    with lib.get_token(token_label=TOKEN).open(rw=True, user_pin=PIN) as session:
        import_key_to_pkcs11(session, pki.load(pki.official_path), "official")
        import_key_to_pkcs11(session, pki.load(pki.seal_path), "seal")
    return token


@pytest.fixture(scope="module")
def unsigned() -> bytes:
    from saoy.core.model import CertificationBlock

    page = _scan((1000, 700), ["GIẤY KHAI SINH", "Họ và tên: Nguyễn Văn An"], "jpeg", 150.0)
    block = CertificationBlock(
        code=CODE,
        url=f"https://saoy.example.gov.vn/v/{CODE}",
        issuer=ORGANIZATION,
        issued_at=FROZEN,
    )
    return render_copy([page], block)


def test_imported_keys_cannot_be_read_back(provisioned: Path) -> None:
    from pkcs11 import Attribute, ObjectClass
    from pkcs11.exceptions import AttributeSensitive

    session = open_pkcs11_session(SOFTHSM_MODULE, TOKEN, PIN)
    try:
        for label in ("official", "seal"):
            key = session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=label)
            assert key[Attribute.SENSITIVE] is True
            assert key[Attribute.EXTRACTABLE] is False
            assert key[Attribute.NEVER_EXTRACTABLE] is False  # it was imported, not generated
            assert key[Attribute.SIGN] is True
            with pytest.raises(AttributeSensitive):
                key[Attribute.PRIVATE_EXPONENT]
            with pytest.raises(AttributeSensitive):
                key[Attribute.PRIME_1]
    finally:
        session.close()


def test_wrong_pin_is_a_clear_error(provisioned: Path) -> None:
    with pytest.raises(ValueError, match="wrong PIN"):
        open_pkcs11_session(SOFTHSM_MODULE, TOKEN, "00000000")
    with pytest.raises(ValueError, match="no PKCS#11 token labelled 'nope'"):
        open_pkcs11_session(SOFTHSM_MODULE, "nope", PIN)


def test_factory_checks_its_settings(pki: DevPki) -> None:
    with pytest.raises(ValueError, match="unknown signer backend"):
        create_copy_signer(pki, backend="yubikey")
    with pytest.raises(ValueError, match="pkcs11_token, pkcs11_pin"):
        create_copy_signer(pki, backend="pkcs11", pkcs11_module=str(SOFTHSM_MODULE))


@pytest.fixture(scope="module")
def hsm_signer(provisioned: Path, pki: DevPki) -> Iterator[Pkcs11CopySigner]:
    signer = create_copy_signer(
        pki,
        backend="pkcs11",
        pkcs11_module=SOFTHSM_MODULE,
        pkcs11_token=TOKEN,
        pkcs11_pin=PIN,
        signing_time=FROZEN,
    )
    assert isinstance(signer, Pkcs11CopySigner)
    yield signer
    signer.close()


def test_copy_signed_in_the_hsm_verifies(
    hsm_signer: Pkcs11CopySigner, pki: DevPki, unsigned: bytes, tmp_path: Path
) -> None:
    assert hsm_signer.issuer == ORGANIZATION
    assert hsm_signer.level is SigningLevel.B_LTA

    signed = asyncio.run(hsm_signer.sign(unsigned))
    report = inspect_pdf(signed, [pki.root_certificate()])

    assert report.bottom_line, report.reason
    assert report.level == "B-LTA"
    official, seal = report.signatures
    assert official.signer_subject == pki.load(pki.official_path).certificate.subject.human_friendly
    assert seal.signer_subject == pki.load(pki.seal_path).certificate.subject.human_friendly
    path = tmp_path / "hsm.pdf"
    path.write_bytes(signed)
    out = _pdfsig(path)
    assert out.count("Signature is Valid.") == 2, out


def _change_pin(conf: Path, old: str, new: str) -> None:
    """Change the user PIN from another process (another PKCS#11 application)."""
    script = (
        "import pkcs11, sys\n"
        f"lib = pkcs11.lib({str(SOFTHSM_MODULE)!r})\n"
        f"with lib.get_token(token_label={TOKEN!r}).open(rw=True, user_pin=sys.argv[1]) as s:\n"
        "    s.set_pin(sys.argv[1], sys.argv[2])\n"
    )
    subprocess.run(
        [sys.executable, "-c", script, old, new],
        check=True,
        capture_output=True,
        timeout=60,
        env={**os.environ, "SOFTHSM2_CONF": str(conf)},
    )


def test_one_login_serves_many_signatures(
    hsm_signer: Pkcs11CopySigner, provisioned: Path, pki: DevPki, unsigned: bytes
) -> None:
    session = hsm_signer.session
    asyncio.run(hsm_signer.sign(unsigned))  # logged in and warm
    # With the PIN changed behind its back, the signer can only keep signing if it never
    # logs in again: every signature below rides on the session opened at construction.
    _change_pin(provisioned, PIN, "99999999")
    try:

        async def sign_many() -> list[bytes]:
            return await asyncio.gather(*(hsm_signer.sign(unsigned) for _ in range(4)))

        copies = asyncio.run(sign_many())
        copies.append(asyncio.run(hsm_signer.sign(unsigned)))
    finally:
        _change_pin(provisioned, "99999999", PIN)

    assert hsm_signer.logins == 1
    assert hsm_signer.session is session
    for copy in copies:
        assert inspect_pdf(copy, [pki.root_certificate()]).bottom_line


def test_an_officials_key_lives_in_the_token_and_signs_there(
    provisioned: Path, pki: DevPki, tmp_path: Path
) -> None:
    """The official's desk with an HSM: each official's key is moved into the token (nowhere
    else) and the copies they approve are signed there, with the seal's key of the token."""
    from concurrent.futures import ThreadPoolExecutor
    from io import BytesIO

    from pyhanko.pdf_utils.reader import PdfFileReader

    from saoy.core.desk.deskdb import DeskDb
    from saoy.core.desk.officials import Officials
    from saoy.core.desk.review import Desk, OfficialSigners, TokenConfig, move_key_into_token
    from saoy.core.pages.admission import Limits
    from saoy.core.storage.blobs import FileBlobStore
    from saoy.core.storage.registry import SqliteRegistry
    from tests.test_register import CENTER, SO_CENTER, _page, _waiting_dossier

    config = TokenConfig(str(SOFTHSM_MODULE), TOKEN, PIN)
    registry = SqliteRegistry(tmp_path / "registry.sqlite3")
    signers = OfficialSigners(pki, level="B-T", token=config)
    executor = ThreadPoolExecutor(2)
    try:
        officials = Officials(DeskDb(registry), default_center="000.00.00.DEV")
        officials.centers.register_center(SO_CENTER)
        officials.set_center(CENTER, kiosks=("kiosk-reg",))
        lan = officials.add(
            pki, login="lan", full_name="Nguyễn Thị Lan", title="Công chức", center=CENTER
        ).official
        move_key_into_token(pki, lan, config)
        assert not (pki.directory / lan.certificate).exists()  # no file holds the key
        desk = Desk(
            db=officials.db,
            officials=officials,
            registry=registry,
            blobs=FileBlobStore(tmp_path / "blobs"),
            signers=signers,
            executor=executor,
            base_url="http://localhost:8080",
            limits=Limits(max_page_bytes=25 << 20, max_pixels=60_000_000),
        )
        dossier = _waiting_dossier(registry, desk.blobs, _page(80), "kiosk-reg")  # type: ignore[arg-type]
        approval = asyncio.run(desk.approve(lan, dossier))
        pdf = desk.blobs.get(approval.copy.blob_key)
        signatures = PdfFileReader(BytesIO(pdf)).embedded_signatures
        names = [s.signer_cert.subject.native["common_name"] for s in signatures]
        assert names == ["Nguyễn Thị Lan", pki.organization]  # the official, then the seal
        path = tmp_path / "copy.pdf"
        path.write_bytes(pdf)
        out = subprocess.run(["pdfsig", str(path)], capture_output=True, text=True).stdout
        assert out.count("Signature is Valid") == 2
    finally:
        signers.close()
        executor.shutdown()
        registry.close()
