"""Officials: enrolment with their own signing certificate, sign-in with password and TOTP,
throttling, sessions that end when the official is disabled, and the terminal commands."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest
from asn1crypto import x509 as asn1_x509

from saoy.core.desk.deskdb import DeskDb
from saoy.core.desk.officials import MAX_FAILURES, Officials, SignInThrottled
from saoy.core.errors import Unauthenticated
from saoy.core.reception.centers import Center, Centers
from saoy.core.storage.registry import SqliteRegistry
from saoy.core.trust.pki import DevPki, ensure_dev_pki, load_pkcs12


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> DevPki:
    return ensure_dev_pki(
        tmp_path_factory.mktemp("pki") / "pki",
        organization="UBND Phường Thử (test)",
        passphrase=b"test",
    )


THU = "000.00.01.THU"


def _desk_db(registry: SqliteRegistry) -> DeskDb:
    db = DeskDb(registry)
    Centers(db.reception).register_center(
        Center(THU, "Phường Thử", "Thành phố Hà Nội", "Phường Thử, Hà Nội")
    )
    return db


@pytest.fixture
def officials(tmp_path: Path) -> Iterator[Officials]:
    registry = SqliteRegistry(tmp_path / "registry.sqlite3")
    yield Officials(_desk_db(registry), default_center=THU)
    registry.close()


def _secret(uri: str) -> str:
    return pyotp.parse_uri(uri).secret


def test_an_official_gets_their_own_signing_certificate(officials: Officials, pki: DevPki) -> None:
    enrolment = officials.add(
        pki,
        login="lan",
        full_name="Nguyễn Thị Lan",
        title="Công chức Tư pháp - Hộ tịch",
        center=THU,
    )
    assert enrolment.totp_uri.startswith("otpauth://totp/saoy:lan?")
    material = load_pkcs12(pki.directory / enrolment.official.certificate, pki.passphrase)
    subject: asn1_x509.Name = material.certificate.subject
    assert subject.native["common_name"] == "Nguyễn Thị Lan"
    assert subject.native["title"] == "Công chức Tư pháp - Hộ tịch"
    assert subject.native["organizational_unit_name"] == "Phường Thử"
    assert material.certificate.issuer == pki.load(pki.issuing_ca_path).certificate.subject
    assert (pki.directory / enrolment.official.certificate).stat().st_mode & 0o077 == 0


def test_sign_in_needs_the_password_and_a_fresh_totp_code(
    officials: Officials, pki: DevPki
) -> None:
    enrolment = officials.add(
        pki, login="hoa", full_name="Trần Văn Hoà", title="Chủ tịch", center=THU, role="head"
    )
    totp = pyotp.TOTP(_secret(enrolment.totp_uri))
    now = time.time()
    with pytest.raises(Unauthenticated):
        officials.sign_in("hoa", "wrong password", totp.at(now), at=now)
    with pytest.raises(Unauthenticated):
        officials.sign_in(
            "hoa", enrolment.password, "000000" if totp.at(now) != "000000" else "111111", at=now
        )
    session = officials.sign_in("hoa", enrolment.password, totp.at(now), at=now)
    assert officials.authenticate(session.token).role == "head"
    with pytest.raises(Unauthenticated):  # the same code again: replayed
        officials.sign_in("hoa", enrolment.password, totp.at(now), at=now)
    events = [e["kind"] for e in officials.db.audit_events()]
    assert "signed_in" in events and events.count("sign_in_failed") == 3


def test_repeated_failures_are_throttled(officials: Officials, pki: DevPki) -> None:
    enrolment = officials.add(
        pki, login="minh", full_name="Lê Văn Minh", title="Công chức", center=THU
    )
    for _ in range(MAX_FAILURES):
        with pytest.raises(Unauthenticated):
            officials.sign_in("minh", "nope", "123456")
    totp = pyotp.TOTP(_secret(enrolment.totp_uri))
    with pytest.raises(SignInThrottled) as raised:  # even the right answer waits
        officials.sign_in("minh", enrolment.password, totp.now())
    assert raised.value.status == "RESOURCE_EXHAUSTED" and raised.value.retry_after


def test_a_disabled_officials_session_stops_at_once(officials: Officials, pki: DevPki) -> None:
    enrolment = officials.add(
        pki, login="tuan", full_name="Phạm Anh Tuấn", title="Công chức", center=THU
    )
    totp = pyotp.TOTP(_secret(enrolment.totp_uri))
    session = officials.sign_in("tuan", enrolment.password, totp.now())
    officials.disable("tuan")
    with pytest.raises(Unauthenticated) as raised:
        officials.authenticate(session.token)
    assert raised.value.reason in ("OFFICIAL_DISABLED", "SESSION_UNKNOWN")
    again = officials.reset("tuan")  # a reset enables again, with new secrets
    later = time.time() + 60  # the next TOTP step: the last one was used
    fresh = officials.sign_in(
        "tuan", again.password, pyotp.TOTP(_secret(again.totp_uri)).at(later), at=later
    )
    assert officials.authenticate(fresh.token).id == "tuan"


def test_expired_sessions_are_refused(tmp_path: Path, pki: DevPki) -> None:
    from datetime import timedelta

    registry = SqliteRegistry(tmp_path / "registry.sqlite3")
    try:
        officials = Officials(
            _desk_db(registry), default_center=THU, session_ttl=timedelta(seconds=-1)
        )
        enrolment = officials.add(
            pki, login="an", full_name="Đỗ Văn An", title="Công chức", center=THU
        )
        session = officials.sign_in(
            "an", enrolment.password, pyotp.TOTP(_secret(enrolment.totp_uri)).now()
        )
        with pytest.raises(Unauthenticated) as raised:
            officials.authenticate(session.token)
        assert raised.value.reason == "SESSION_EXPIRED"
    finally:
        registry.close()


def test_two_sign_ins_racing_with_one_code_make_one_session(
    officials: Officials, pki: DevPki
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    enrolment = officials.add(
        pki, login="dua", full_name="Ngô Văn Đua", title="Công chức", center=THU
    )
    code = pyotp.TOTP(_secret(enrolment.totp_uri)).now()

    def attempt() -> bool:
        try:
            officials.sign_in("dua", enrolment.password, code)
        except Unauthenticated:
            return False
        return True

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: attempt(), range(4)))
    assert results.count(True) == 1
