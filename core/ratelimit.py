"""Rate limits: a token bucket per caller (a kiosk, a client address) and per surface.

A bucket holds at most ``burst`` tokens and refills at ``rate`` tokens a second; each request
takes one, and a request that finds the bucket empty is refused with the time until a token is
back. :class:`InMemoryRateLimiter` keeps buckets in the process (the embedded default);
:class:`RedisRateLimiter` keeps them in Redis, so every replica of the server draws on one
budget per caller: one Lua script reads, refills, takes and writes a bucket atomically on the
Redis server's clock, and each key expires once its bucket would be full again.

Callers are never stored as they are: a bucket's key is a keyed hash of the caller, so neither
a client's address nor a kiosk id appears in Redis or in memory dumps in the clear.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from saoy.core.errors import SaoyError

log = logging.getLogger("saoy.ratelimit")


@dataclass(frozen=True)
class Bucket:
    """A token bucket's shape: ``rate`` tokens a second, at most ``burst``. A rate of 0 means
    no limit on that surface."""

    rate: float
    burst: int

    def __post_init__(self) -> None:
        if self.rate < 0:
            raise ValueError("a rate limit's rate must be >= 0 (0: no limit)")
        if self.rate > 0 and self.burst < 1:
            raise ValueError("a rate limit's burst must be >= 1")

    @property
    def unlimited(self) -> bool:
        return self.rate == 0


@dataclass(frozen=True)
class Decision:
    """Whether a request may go on, and if not, in how many seconds one may."""

    allowed: bool
    retry_after: float = 0.0


class RateLimited(SaoyError):
    """Too many requests from one caller on one surface; ``retry_after`` says when to retry."""

    status = "RESOURCE_EXHAUSTED"
    reason = "RATE_LIMITED"


def retry_seconds(retry_after: float) -> int:
    """Whole seconds to tell a client to wait (HTTP ``Retry-After``, messages): never 0."""
    return max(1, math.ceil(retry_after))


class RateLimiter(ABC):
    """Token buckets keyed by (surface, caller); both backends pass the same tests."""

    blocking = False
    """Whether :meth:`take` does network I/O (then the server calls it off the event loop)."""

    def __init__(self, buckets: dict[str, Bucket]) -> None:
        self.buckets = dict(buckets)

    def limited(self, surface: str) -> bool:
        """Whether ``surface`` has a limit at all (a rate of 0 has none)."""
        bucket = self.buckets.get(surface)
        return bucket is not None and not bucket.unlimited

    def take(self, surface: str, caller: str) -> Decision:
        """Take one token from ``caller``'s bucket on ``surface``. Blocking for the Redis
        backend: call it off the event loop."""
        bucket = self.buckets.get(surface)
        if bucket is None or bucket.unlimited:
            return Decision(True)
        return self._take(surface, _caller_key(surface, caller), bucket)

    @abstractmethod
    def _take(self, surface: str, key: str, bucket: Bucket) -> Decision:
        """Take one token from the bucket under ``key``."""

    def close(self) -> None:  # noqa: B027 - optional for backends without resources
        """Release connections."""


def _caller_key(surface: str, caller: str) -> str:
    """The bucket's name: the surface and a hash of the caller (no address or id in the clear)."""
    digest = hashlib.blake2b(caller.encode("utf-8", "replace"), digest_size=16, person=b"saoy-rl")
    return f"{surface}:{digest.hexdigest()}"


class InMemoryRateLimiter(RateLimiter):
    """Buckets in a dict, for one server process. Buckets that have refilled are forgotten, so
    memory stays bounded by the callers of the last ``burst / rate`` seconds."""

    SWEEP_EVERY = 1024

    def __init__(
        self, buckets: dict[str, Bucket], clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__(buckets)
        self._clock = clock
        self._state: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)
        self._lock = threading.Lock()
        self._since_sweep = 0

    def _take(self, surface: str, key: str, bucket: Bucket) -> Decision:
        now = self._clock()
        with self._lock:
            self._since_sweep += 1
            if self._since_sweep >= self.SWEEP_EVERY:
                self._sweep(now)
            tokens, at = self._state.get(key, (float(bucket.burst), now))
            tokens = min(float(bucket.burst), tokens + max(0.0, now - at) * bucket.rate)
            if tokens >= 1.0:
                self._state[key] = (tokens - 1.0, now)
                return Decision(True)
            self._state[key] = (tokens, now)
            return Decision(False, (1.0 - tokens) / bucket.rate)

    def _sweep(self, now: float) -> None:
        self._since_sweep = 0
        for key, (tokens, at) in list(self._state.items()):
            bucket = self.buckets.get(key.split(":", 1)[0])
            if bucket is None or tokens + (now - at) * bucket.rate >= bucket.burst:
                del self._state[key]

    def __len__(self) -> int:
        with self._lock:
            return len(self._state)


# KEYS[1]: the bucket; ARGV: rate (tokens/s), burst. Time is the Redis server's, so replicas
# with skewed clocks still share one bucket. Floats go back as strings (Lua numbers would be
# truncated to integers in the reply).
_TAKE = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1])
local at = tonumber(state[2])
if tokens == nil or at == nil then
  tokens = burst
  at = now
end
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local allowed = 0
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 1000)
return {allowed, tostring(wait)}
"""


class RedisRateLimiter(RateLimiter):
    """Buckets in Redis, shared by every replica: one hash per bucket, updated by one atomic
    Lua script, expiring once the bucket would be full again.

    When Redis cannot be reached, requests are let through (and a warning logged at most once
    a minute): an outage of the limiter's store must not stop kiosks from working."""

    blocking = True

    def __init__(self, url: str, buckets: dict[str, Bucket], prefix: str = "saoy:rate:") -> None:
        super().__init__(buckets)
        import redis

        self._redis: Any = redis.Redis.from_url(url, socket_timeout=2, decode_responses=True)
        self._errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        self._script = self._redis.register_script(_TAKE)
        self.prefix = prefix
        self._warned = -math.inf

    def _take(self, surface: str, key: str, bucket: Bucket) -> Decision:
        try:
            allowed, wait = self._script(keys=[self.prefix + key], args=[bucket.rate, bucket.burst])
        except self._errors as error:
            now = time.monotonic()
            if now - self._warned > 60:
                self._warned = now
                log.warning(
                    "rate limits not enforced: Redis unreachable (%s)", type(error).__name__
                )
            return Decision(True)
        if int(allowed):
            return Decision(True)
        return Decision(False, float(wait))

    def close(self) -> None:
        self._redis.close()


def create_rate_limiter(redis_url: str | None, buckets: dict[str, Bucket]) -> RateLimiter:
    """Redis when a URL is configured (shared by replicas), else in-process."""
    if redis_url:
        return RedisRateLimiter(redis_url, buckets)
    return InMemoryRateLimiter(buckets)


__all__ = [
    "Bucket",
    "Decision",
    "InMemoryRateLimiter",
    "RateLimited",
    "RateLimiter",
    "RedisRateLimiter",
    "create_rate_limiter",
    "retry_seconds",
]
