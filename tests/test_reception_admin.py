"""`saoy reception`: a head of center registers the center and its kiosks; a server that takes
no strangers refuses other kiosks before reading a page, and codes dossiers by their center."""

from __future__ import annotations

import io
import json
from pathlib import Path

import grpc
import pytest

from saoy.clients import cli
from saoy.clients.sdk import KioskClient
from saoy.clients.simulator import docgen

from .conftest import start_server


def card_jpeg(seed: int = 3) -> bytes:
    """The front of a generated ID card as a JPEG: a page the quality gate admits."""
    buffer = io.BytesIO()
    docgen.id_card_front(docgen.random_person(seed), seed=seed).image.save(buffer, "JPEG")
    return buffer.getvalue()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_a_head_registers_a_center_and_its_kiosks(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = str(tmp_path / "data")
    code, out, _ = run(
        capsys, "reception", "--data-dir", data, "center", "000.00.01.H26",
        "--name", "Trung tâm Phục vụ hành chính công Hà Nội", "--province", "Thành phố Hà Nội",
        "--address", "1 Hàng Khay", "--bank-bin", "970436", "--account", "1234567890",
    )  # fmt: skip
    assert code == 0 and "000.00.01.H26" in out
    code, out, _ = run(capsys, "reception", "--data-dir", data, "kiosk", "hn-01", "000.00.01.H26")
    assert code == 0 and "hn-01" in out
    code, out, _ = run(capsys, "reception", "--data-dir", data, "--json", "list")
    [center] = json.loads(out)
    assert center["code"] == "000.00.01.H26" and center["kiosks"] == ["hn-01"]

    code, _, err = run(
        capsys, "reception", "--data-dir", data, "center", "hn 1", "--name", "Tên",
        "--province", "Tỉnh", "--address", "Địa chỉ",
    )  # fmt: skip
    assert code == 2 and "unit code" in err
    code, _, err = run(capsys, "reception", "--data-dir", data, "kiosk", "k2", "999.99.99.X")
    assert code == 2 and "no center is registered" in err

    # The review policy is the center's, in the same record; the desk's `saoy center` sets it
    # and registers kiosks there too, for a registered center only.
    code, out, _ = run(
        capsys, "reception", "--data-dir", data, "center", "000.00.01.H26",
        "--name", "Trung tâm Phục vụ hành chính công Hà Nội", "--province", "Thành phố Hà Nội",
        "--address", "1 Hàng Khay", "--bank-bin", "970436", "--account", "1234567890",
        "--review", "all",
    )  # fmt: skip
    assert code == 0 and "review=all" in out
    code, out, _ = run(
        capsys, "center", "000.00.01.H26", "--review", "uncertain", "--kiosk", "hn-02",
        "--data-dir", data,
    )  # fmt: skip
    assert code == 0 and "review=uncertain" in out
    code, out, _ = run(capsys, "reception", "--data-dir", data, "--json", "list")
    [center] = [c for c in json.loads(out) if c["code"] == "000.00.01.H26"]
    assert center["review"] == "uncertain" and center["kiosks"] == ["hn-01", "hn-02"]
    code, _, err = run(capsys, "center", "000.00.09.NONE", "--review", "all", "--data-dir", data)
    assert code == 2 and "register it first (saoy reception center)" in err

    server = start_server(
        tmp_path / "data", identity="off", ocr_engine="none", signing_level="B-T", kiosk_center=""
    )
    try:
        page = card_jpeg()
        with KioskClient(server.target, kiosk_id="hn-01") as client:
            result = client.certify([page])
        assert result.received is not None
        assert result.received.dossier_code.startswith("000.00.01.H26-")
        assert result.received.center_name == "Trung tâm Phục vụ hành chính công Hà Nội"
        with (
            KioskClient(server.target, kiosk_id="kiosk-stranger") as client,
            pytest.raises(grpc.RpcError) as refused,
        ):
            client.certify([page])
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "kiosk-stranger belongs to no center" in refused.value.details()
    finally:
        server.stop()
