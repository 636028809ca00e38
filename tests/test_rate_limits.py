"""Rate limits: per kiosk on Authenticate and Certify, per client address on the HTTP pages and
uploads; in-process, or in a real Redis of our own shared by two servers. A refusal is
RESOURCE_EXHAUSTED with RetryInfo, or HTTP 429 with Retry-After, and is counted by surface."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import redis
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from saoy.clients.cli import main as cli
from saoy.clients.sdk import KioskClient, new_request_id, tls_credentials
from saoy.core.ratelimit import (
    Bucket,
    InMemoryRateLimiter,
    RateLimiter,
    RedisRateLimiter,
    create_rate_limiter,
)
from saoy.server.settings import Settings
from saoy.v1 import certification_pb2 as cpb
from saoy.v1 import certification_pb2_grpc as cgrpc
from saoy.v1 import identity_pb2 as ipb
from saoy.v1 import identity_pb2_grpc as igrpc
from tests.face_photos import redis_url

from .conftest import RunningServer, start_server

__all__ = ["redis_url"]

SLOW = 0.01  # tokens a second: nothing refills within a test


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", "redis"])
def limiter(request: pytest.FixtureRequest) -> Iterator[RateLimiter]:
    buckets = {"certify": Bucket(SLOW, 3), "open": Bucket(0, 1)}
    if request.param == "memory":
        backend: RateLimiter = InMemoryRateLimiter(buckets)
    else:
        url = request.getfixturevalue("redis_url")
        redis.Redis.from_url(url).flushdb()
        backend = RedisRateLimiter(url, buckets)
    yield backend
    backend.close()


def test_a_bucket_lets_its_burst_through_then_says_when_to_retry(limiter: RateLimiter) -> None:
    assert all(limiter.take("certify", "kiosk-a").allowed for _ in range(3))
    refused = limiter.take("certify", "kiosk-a")
    assert not refused.allowed
    assert 90 < refused.retry_after <= 1 / SLOW  # one token at 0.01/s: about 100 s
    assert limiter.take("certify", "kiosk-b").allowed  # each caller has its own bucket
    assert all(limiter.take("open", "kiosk-a").allowed for _ in range(50))  # rate 0: no limit


def test_a_bucket_refills_at_its_rate() -> None:
    clock = Clock()
    limiter = InMemoryRateLimiter({"certify": Bucket(0.5, 2)}, clock=clock)
    assert limiter.take("certify", "k").allowed and limiter.take("certify", "k").allowed
    refused = limiter.take("certify", "k")
    assert not refused.allowed and refused.retry_after == pytest.approx(2.0)
    clock.now += 1.0
    assert limiter.take("certify", "k").retry_after == pytest.approx(1.0)
    clock.now += 1.0
    assert limiter.take("certify", "k").allowed
    clock.now += 100
    assert sum(limiter.take("certify", "k").allowed for _ in range(5)) == 2  # never above burst


def test_memory_forgets_refilled_buckets() -> None:
    clock = Clock()
    limiter = InMemoryRateLimiter({"certify": Bucket(1.0, 2)}, clock=clock)
    for i in range(limiter.SWEEP_EVERY - 1):
        limiter.take("certify", f"kiosk-{i}")
    assert len(limiter) == limiter.SWEEP_EVERY - 1
    clock.now += 2
    limiter.take("certify", "kiosk-last")
    assert len(limiter) <= 1


def test_redis_keys_expire_and_name_no_caller(redis_url: str) -> None:
    raw = redis.Redis.from_url(redis_url, decode_responses=True)
    raw.flushdb()
    limiter = create_rate_limiter(redis_url, {"http_page": Bucket(2.0, 4)})
    assert isinstance(limiter, RedisRateLimiter)
    limiter.take("http_page", "ip:192.0.2.7")
    keys = raw.keys("*")
    assert len(keys) == 1 and "192.0.2.7" not in keys[0]
    assert 0 < raw.pttl(keys[0]) <= 1000 + 1000  # one token short of full: 0.5 s, plus a margin
    limiter.close()


def test_an_unreachable_redis_lets_requests_through() -> None:
    limiter = RedisRateLimiter("redis://127.0.0.1:1/0", {"certify": Bucket(SLOW, 1)})
    assert all(limiter.take("certify", "kiosk-a").allowed for _ in range(3))


def test_settings_refuse_negative_rates_and_empty_bursts() -> None:
    with pytest.raises(ValueError, match="certify_rate"):
        Settings(certify_rate=-1)
    with pytest.raises(ValueError, match="http_burst"):
        Settings(http_burst=0)
    flags = Settings.load({"certify_rate": "0.5", "certify_burst": "7"}, environ={})
    assert (flags.certify_rate, flags.certify_burst) == (0.5, 7)


# Through real servers --------------------------------------------------------------------------


def certify_header_only(server: RunningServer, kiosk: str) -> grpc.RpcError:
    """A Certify stream of a header and an empty End: refused either way, cheaply — by the
    rate limit, or for having no pages."""
    messages = [
        cpb.CertifyRequest(
            header=cpb.Header(request_id=new_request_id(), kiosk_id=kiosk, session_token="")
        ),
        cpb.CertifyRequest(end=cpb.End(page_count=0)),
    ]
    with grpc.insecure_channel(server.target) as channel:
        call = cgrpc.CertificationStub(channel).Certify(iter(messages), timeout=30)
        with pytest.raises(grpc.RpcError) as raised:
            list(call)
    return raised.value


def authenticate_header_only(server: RunningServer, kiosk: str) -> grpc.RpcError:
    messages = [ipb.AuthenticateRequest(header=ipb.AuthenticateHeader(kiosk_id=kiosk))]
    with grpc.insecure_channel(server.target) as channel:
        call = igrpc.IdentityStub(channel).Authenticate(iter(messages), timeout=30)
        with pytest.raises(grpc.RpcError) as raised:
            list(call)
    return raised.value


def retry_delay(error: grpc.RpcError) -> float:
    """The RetryInfo of a status, in seconds."""
    status = rpc_status.from_call(error)
    assert status is not None
    for detail in status.details:
        info = error_details_pb2.RetryInfo()
        if detail.Unpack(info):
            return info.retry_delay.seconds + info.retry_delay.nanos / 1e9
    raise AssertionError(f"no RetryInfo in {status}")


def refusals(server: RunningServer, surface: str) -> float:
    value = server.server.metrics.registry.get_sample_value(
        "saoy_rate_limited_total", {"surface": surface}
    )
    return value or 0.0


def http_status(url: str, data: bytes | None = None) -> tuple[int, dict[str, str], str]:
    request = urllib.request.Request(url, data=data)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode()


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server with tight in-process limits and identity checks on (Authenticate served)."""
    running = start_server(
        tmp_path_factory.mktemp("limited"),
        ocr_engine="none",
        authenticate_rate=SLOW,
        authenticate_burst=2,
        certify_rate=SLOW,
        certify_burst=2,
        http_rate=SLOW,
        http_burst=3,
        upload_rate=SLOW,
        upload_burst=1,
    )
    yield running
    running.stop()


def test_certify_is_limited_per_kiosk_with_retry_info(limited: RunningServer) -> None:
    for _ in range(2):
        assert certify_header_only(limited, "kiosk-rl-1").code() == grpc.StatusCode.UNAUTHENTICATED
    error = certify_header_only(limited, "kiosk-rl-1")
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    delay = retry_delay(error)
    assert 90 < delay <= 100
    assert "Too many dossiers from this kiosk" in (error.details() or "")
    assert f"try again in {int(delay) + 1} s" in (error.details() or "")
    # another kiosk has its own budget, and the refusal was counted under its surface only
    assert certify_header_only(limited, "kiosk-rl-2").code() == grpc.StatusCode.UNAUTHENTICATED
    assert refusals(limited, "certify") == 1
    exported = urllib.request.urlopen(limited.http + "/metrics", timeout=10).read().decode()
    line = next(x for x in exported.splitlines() if x.startswith("saoy_rate_limited_total{"))
    assert line == 'saoy_rate_limited_total{surface="certify"} 1.0'


def test_authenticate_is_limited_per_kiosk(limited: RunningServer) -> None:
    for _ in range(2):
        error = authenticate_header_only(limited, "kiosk-rl-3")
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION  # no card: CARD_FIRST
    error = authenticate_header_only(limited, "kiosk-rl-3")
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert retry_delay(error) > 90
    assert "Too many authentications" in (error.details() or "")
    # Certify's bucket is apart from Authenticate's
    assert certify_header_only(limited, "kiosk-rl-3").code() == grpc.StatusCode.UNAUTHENTICATED
    assert refusals(limited, "authenticate") == 1


def test_http_pages_and_uploads_are_limited_per_address(limited: RunningServer) -> None:
    for _ in range(3):
        assert http_status(limited.http + "/v/0000")[0] == 400  # not a code: answered
    status, headers, body = http_status(limited.http + "/v/0000")
    assert status == 429
    assert 90 < int(headers["Retry-After"]) <= 100
    assert f"try again in {headers['Retry-After']} s" in body
    # uploads draw on their own bucket; metrics and health are never limited
    assert http_status(limited.http + "/verify", b"%PDF-1.7 not really")[0] == 422
    status, headers, _ = http_status(limited.http + "/verify", b"%PDF-1.7 not really")
    assert status == 429 and "Retry-After" in headers
    for _ in range(5):
        assert http_status(limited.http + "/metrics")[0] == 200
        assert http_status(limited.http + "/healthz")[0] == 200
    assert refusals(limited, "http_page") == 1
    assert refusals(limited, "http_upload") == 1


def test_two_servers_sharing_redis_share_one_budget(tmp_path: Path, redis_url: str) -> None:
    redis.Redis.from_url(redis_url).flushdb()
    limits = dict(
        ocr_engine="none",
        identity="off",
        redis_url=redis_url,
        certify_rate=SLOW,
        certify_burst=3,
        http_rate=SLOW,
        http_burst=4,
    )
    first = start_server(tmp_path / "a", **limits)  # type: ignore[arg-type]
    second = start_server(tmp_path / "b", **limits)  # type: ignore[arg-type]
    try:
        answered = [
            certify_header_only(server, "kiosk-shared").code() for server in (first, second, first)
        ]
        assert answered == [grpc.StatusCode.INVALID_ARGUMENT] * 3  # no pages: let through
        for server in (second, first):
            error = certify_header_only(server, "kiosk-shared")
            assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert retry_delay(error) > 90
        assert [http_status(s.http + "/")[0] for s in (first, second, second, first)] == [200] * 4
        assert http_status(second.http + "/")[0] == 429
        assert http_status(first.http + "/")[0] == 429
        assert refusals(first, "certify") == refusals(second, "certify") == 1
    finally:
        first.stop()
        second.stop()


def test_with_mutual_tls_the_bucket_is_the_certificates_kiosk(tmp_path: Path) -> None:
    running = start_server(
        tmp_path / "data", tls="mutual", identity="off", certify_rate=SLOW, certify_burst=2
    )
    try:
        out = tmp_path / "kiosk-a"
        assert (
            cli(["kiosk-cert", "kiosk-a", "--data-dir", str(running.data_dir), "--out", str(out)])
            == 0
        )
        creds = tls_credentials(
            (out / "ca.pem").read_bytes(),
            (out / "kiosk.pem").read_bytes(),
            (out / "kiosk.key").read_bytes(),
        )

        def certify(kiosk: str) -> grpc.StatusCode:
            messages = [
                cpb.CertifyRequest(header=cpb.Header(request_id=new_request_id(), kiosk_id=kiosk)),
                cpb.CertifyRequest(end=cpb.End(page_count=0)),
            ]
            with grpc.secure_channel(running.target, creds) as channel:
                call = cgrpc.CertificationStub(channel).Certify(iter(messages), timeout=30)
                with pytest.raises(grpc.RpcError) as raised:
                    list(call)
            return raised.value.code()

        # speaking for other kiosks spends kiosk-a's own budget, not theirs
        assert certify("kiosk-b") == certify("kiosk-c") == grpc.StatusCode.PERMISSION_DENIED
        assert certify("kiosk-a") == grpc.StatusCode.RESOURCE_EXHAUSTED
    finally:
        running.stop()


def test_the_sdk_waits_out_the_retry_info_it_is_given_and_no_longer(
    tmp_path: Path, reference_dossier: list[tuple[str, bytes]]
) -> None:
    """A kiosk refused for now (RESOURCE_EXHAUSTED with RetryInfo) retries after the time the
    server asked, if that is no longer than it is willing to wait."""
    running = start_server(
        tmp_path, identity="off", ocr_engine="none", certify_rate=0.2, certify_burst=1
    )
    page = [reference_dossier[2][1]]
    try:
        with KioskClient(running.target, kiosk_id="kiosk-patient") as kiosk:
            assert kiosk.certify(page).terminal is not None
            started = time.monotonic()
            assert kiosk.certify(page).terminal is not None  # refused, then retried: <= 5 s
            assert 1.0 < time.monotonic() - started < 20
        assert refusals(running, "certify") >= 1
        with KioskClient(running.target, kiosk_id="kiosk-hasty", max_retry_wait=0.5) as kiosk:
            kiosk.certify(page)
            with pytest.raises(grpc.RpcError) as raised:
                kiosk.certify(page)
        assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    finally:
        running.stop()
