"""The gRPC port over TLS: a server certificate (``tls = on``), and mutual TLS binding each
kiosk to the kiosk id its certificate names (``tls = mutual``)."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from grpc_health.v1 import health_pb2, health_pb2_grpc

from saoy.clients.cli import main as cli
from saoy.clients.sdk import KioskClient, tls_credentials
from saoy.core.trust.pki import DevPki, ensure_dev_pki
from saoy.server.settings import Settings

from .conftest import RunningServer, start_server
from .test_certify_errors import error_info


@pytest.fixture(scope="module")
def mutual(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("saoy-mtls"), tls="mutual")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def kiosk_a(mutual: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """kiosk.pem, kiosk.key and ca.pem of kiosk-a, from ``saoy kiosk-cert``."""
    out = tmp_path_factory.mktemp("kiosk-a")
    assert (
        cli(["kiosk-cert", "kiosk-a", "--data-dir", str(mutual.data_dir), "--out", str(out)]) == 0
    )
    return out


@pytest.fixture(scope="module")
def other_pki(tmp_path_factory: pytest.TempPathFactory) -> DevPki:
    """Another PKI, whose CA the mutual server does not trust."""
    return ensure_dev_pki(
        tmp_path_factory.mktemp("other") / "pki", organization="Elsewhere", passphrase=b"other"
    )


def credentials(folder: Path, *, client_certificate: bool = True) -> grpc.ChannelCredentials:
    ca = (folder / "ca.pem").read_bytes()
    if not client_certificate:
        return tls_credentials(ca)
    return tls_credentials(
        ca, (folder / "kiosk.pem").read_bytes(), (folder / "kiosk.key").read_bytes()
    )


def client(server: RunningServer, creds: grpc.ChannelCredentials | None, **kw: str) -> KioskClient:
    return server.client(credentials=creds, retries=0, timeout=60, **kw)


def refusal(server: RunningServer, creds: grpc.ChannelCredentials | None) -> grpc.StatusCode:
    """The status a VerifyCode call gets with ``creds`` (None: plaintext)."""
    with client(server, creds) as kiosk, pytest.raises(grpc.RpcError) as raised:
        kiosk.verify_code("7K3M-9Q2P-XW4R-T8NZ-5ABC")
    return raised.value.code()


def health(target: str, creds: grpc.ChannelCredentials) -> int:
    with grpc.secure_channel(target, creds) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        return int(stub.Check(health_pb2.HealthCheckRequest(), timeout=10).status)


def test_kiosk_with_its_certificate_certifies_a_dossier(
    mutual: RunningServer, kiosk_a: Path, reference_dossier: list[tuple[str, bytes]]
) -> None:
    with client(mutual, credentials(kiosk_a), kiosk_id="kiosk-a") as kiosk:
        result = kiosk.certify(
            [data for _, data in reference_dossier], session_token=mutual.token("kiosk-a")
        )
    assert result.issued is not None, result.events[-1]


def test_certificate_of_another_kiosk_is_permission_denied(
    mutual: RunningServer, kiosk_a: Path, reference_dossier: list[tuple[str, bytes]]
) -> None:
    with client(mutual, credentials(kiosk_a), kiosk_id="kiosk-b") as kiosk:
        with pytest.raises(grpc.RpcError) as certify:
            kiosk.certify([reference_dossier[0][1]], session_token=mutual.token("kiosk-b"))
        with pytest.raises(grpc.RpcError) as authenticate:
            kiosk.authenticate(b"not read", lambda challenge: [])
    for raised in (certify.value, authenticate.value):
        assert raised.code() == grpc.StatusCode.PERMISSION_DENIED
        assert error_info(raised).reason == "KIOSK_CERTIFICATE_MISMATCH"
        assert "'kiosk-a'" in raised.details() and "'kiosk-b'" in raised.details()


def test_without_a_client_certificate_the_handshake_fails(
    mutual: RunningServer, kiosk_a: Path
) -> None:
    creds = credentials(kiosk_a, client_certificate=False)
    assert refusal(mutual, creds) == grpc.StatusCode.UNAVAILABLE


def test_a_certificate_from_another_ca_is_refused(
    mutual: RunningServer, kiosk_a: Path, other_pki: DevPki, tmp_path: Path
) -> None:
    stranger = other_pki.issue_kiosk_certificate("kiosk-a", tmp_path)
    creds = tls_credentials(
        (kiosk_a / "ca.pem").read_bytes(),
        stranger.certificate.read_bytes(),
        stranger.key.read_bytes(),
    )
    assert refusal(mutual, creds) == grpc.StatusCode.UNAVAILABLE


def test_a_plaintext_client_is_refused(mutual: RunningServer) -> None:
    assert refusal(mutual, None) == grpc.StatusCode.UNAVAILABLE


def test_cli_talks_mutual_tls_with_the_kiosk_files(
    mutual: RunningServer, kiosk_a: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["verify", "7K3M-9Q2P-XW4R-T8NZ-5ABC", "--server", mutual.target, "--json"]
    ca = ["--tls-ca", str(kiosk_a / "ca.pem")]
    cert = ["--tls-cert", str(kiosk_a / "kiosk.pem"), "--tls-key", str(kiosk_a / "kiosk.key")]
    assert cli([*args, *ca, *cert]) == 2
    assert '"error": "INVALID_ARGUMENT"' in capsys.readouterr().out  # through: the code is wrong
    assert cli([*args, *ca]) == 2
    assert '"error": "UNAVAILABLE"' in capsys.readouterr().out
    assert cli([*args, *ca, *cert[:2]]) == 2
    assert "error: TLS:" in capsys.readouterr().err


def test_dev_server_certificate_names_localhost_and_the_loopbacks(mutual: RunningServer) -> None:
    tls = mutual.data_dir / "pki" / "tls"
    cert = x509.load_pem_x509_certificate((tls / "server.pem").read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert {str(ip) for ip in names.get_values_for_type(x509.IPAddress)} == {"127.0.0.1", "::1"}
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert stat.S_IMODE((tls / "server.key").stat().st_mode) == 0o600


def test_kiosk_certificate_names_the_kiosk_and_is_renewed_with_the_same_key(
    mutual: RunningServer, kiosk_a: Path, tmp_path: Path
) -> None:
    cert = x509.load_pem_x509_certificate((kiosk_a / "kiosk.pem").read_bytes())
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "kiosk-a"
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert stat.S_IMODE((kiosk_a / "kiosk.key").stat().st_mode) == 0o600

    args = ["kiosk-cert", "--data-dir", str(mutual.data_dir), "--out", str(tmp_path)]
    assert cli([*args[:1], "kiosk-c", *args[1:]]) == 0
    key = (tmp_path / "kiosk.key").read_bytes()
    first = (tmp_path / "kiosk.pem").read_bytes()
    assert cli([*args[:1], "kiosk-c", *args[1:]]) == 0
    assert (tmp_path / "kiosk.pem").read_bytes() == first  # kept
    assert cli([*args[:1], "kiosk-d", *args[1:]]) == 0  # another kiosk: new certificate
    renewed = x509.load_pem_x509_certificate((tmp_path / "kiosk.pem").read_bytes())
    assert renewed.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "kiosk-d"
    assert (tmp_path / "kiosk.key").read_bytes() == key
    assert cli([*args[:1], "not a kiosk id", *args[1:]]) == 2


def test_tls_on_needs_no_client_certificate_and_takes_a_given_certificate(
    tmp_path: Path, other_pki: DevPki
) -> None:
    """tls = on with tls_cert/tls_key: clients trusting that certificate's CA get through
    without a certificate of their own; the dev CA of the data dir does not vouch for it."""
    chain, key = other_pki.tls_server_credentials()
    (tmp_path / "server.pem").write_bytes(chain)
    (tmp_path / "server.key").write_bytes(key)
    running = start_server(
        tmp_path / "data",
        tls="on",
        identity="off",
        tls_cert=tmp_path / "server.pem",
        tls_key=tmp_path / "server.key",
    )
    try:
        serving = health(running.target, tls_credentials(other_pki.tls_ca_pem()))
        assert serving == health_pb2.HealthCheckResponse.SERVING
        own_root = (running.data_dir / "pki" / "root.pem").read_bytes()
        with pytest.raises(grpc.RpcError) as raised:
            health(running.target, tls_credentials(own_root))
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        running.stop()


@pytest.mark.parametrize(
    "settings",
    [
        {"tls": "yes"},
        {"tls": "on", "tls_cert": Path("server.pem")},
        {"tls": "off", "tls_cert": Path("server.pem"), "tls_key": Path("server.key")},
        {"tls": "on", "tls_client_ca": Path("ca.pem")},
    ],
)
def test_inconsistent_tls_settings_are_refused(settings: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Settings(**settings)  # type: ignore[arg-type]


def test_tls_settings_read_flags_and_environment() -> None:
    settings = Settings.load(
        {"tls": "mutual"}, {"SAOY_TLS_CLIENT_CA": "/etc/saoy/kiosks.pem", "SAOY_TLS": "on"}
    )
    assert settings.tls == "mutual"
    assert settings.tls_client_ca == Path("/etc/saoy/kiosks.pem")
    assert settings.tls_cert is None


def test_an_official_signs_in_with_their_own_certificate_and_no_other(
    mutual: RunningServer, kiosk_a: Path, tmp_path: Path
) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.serialization import pkcs12

    from saoy.clients.sdk import DeskClient

    desk = mutual.server.desk
    assert desk is not None
    center = mutual.server.settings.center
    for login, name in (("chung", "Lý Văn Chung"), ("khac", "Mạc Thị Khác")):
        desk.officials.add(
            desk.signers.pki, login=login, full_name=name, title="Công chức", center=center
        )
    own = desk.signers.pki.directory / desk.officials.get("chung").certificate
    key, cert, _ = pkcs12.load_key_and_certificates(
        own.read_bytes(), mutual.server.settings.pki_passphrase.encode()
    )
    assert key is not None and cert is not None
    creds = tls_credentials(
        (kiosk_a / "ca.pem").read_bytes(),
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    with DeskClient(mutual.target, credentials=creds) as official:
        signed_in = official.sign_in("chung")  # no password, no code: the certificate
        assert signed_in.official.full_name == "Lý Văn Chung"
        assert official.queue(thumbnails=False) is not None
        with pytest.raises(grpc.RpcError) as raised:
            DeskClient(mutual.target, credentials=creds).sign_in("khac")
        assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with DeskClient(mutual.target, credentials=credentials(kiosk_a)) as kiosk:
        with pytest.raises(grpc.RpcError) as raised:
            kiosk.sign_in("chung")  # a kiosk's certificate is no official's
        assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.RpcError) as raised:
            kiosk.sign_in("chung", "a password", "")  # half of the other way
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    audit = [e for e in desk.db.audit_events() if e["kind"] == "signed_in"]
    assert audit[-1]["official"] == "chung" and audit[-1]["detail"]["means"] == "certificate"
