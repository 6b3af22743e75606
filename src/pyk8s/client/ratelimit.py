"""Rate limiters for retries, as client-go's workqueue: per-item exponential backoff and a token bucket.

A limiter answers `when(item)`: how long to wait before the item may be processed again. The default,
like client-go's DefaultControllerRateLimiter, is the larger of a per-item backoff (5 ms doubling to
1000 s) and an overall bucket (10 per second, bursts of 100) so that many failing keys cannot flood the
API server.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Protocol

from pyk8s.util.clock import MONOTONIC, Clock

__all__ = ["BucketRateLimiter", "ItemExponentialRateLimiter", "MaxOfRateLimiter", "RateLimiter",
           "default_controller_rate_limiter"]


class RateLimiter(Protocol):
    def when(self, item: Hashable) -> float:
        """Seconds to wait before `item` is processed again; records one more failure of it."""
        ...

    def forget(self, item: Hashable) -> None:
        """The item succeeded: its next failure starts the backoff over."""
        ...

    def num_requeues(self, item: Hashable) -> int:
        ...


class ItemExponentialRateLimiter:
    """base * 2**failures, capped at max_delay, counted per item."""

    def __init__(self, base_delay: float = 0.005, max_delay: float = 1000.0) -> None:
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._failures: dict[Hashable, int] = {}

    def when(self, item: Hashable) -> float:
        exp = self._failures.get(item, 0)
        self._failures[item] = exp + 1
        if exp > 64:  # 2**64 * base exceeds any cap; avoid float overflow
            return self.max_delay
        return float(min(self.max_delay, self.base_delay * 2**exp))

    def forget(self, item: Hashable) -> None:
        self._failures.pop(item, None)

    def num_requeues(self, item: Hashable) -> int:
        return self._failures.get(item, 0)


class BucketRateLimiter:
    """A token bucket shared by all items: `qps` tokens a second, at most `burst` saved up. Each `when`
    reserves a token and returns how long until that token exists."""

    def __init__(self, qps: float = 10.0, burst: int = 100, clock: Clock = MONOTONIC) -> None:
        if qps <= 0 or burst < 1:
            raise ValueError("a token bucket needs qps > 0 and burst >= 1")
        self.qps = qps
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock.now()

    def when(self, item: Hashable) -> float:
        now = self._clock.now()
        self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.qps)
        self._last = now
        self._tokens -= 1
        return 0.0 if self._tokens >= 0 else -self._tokens / self.qps

    def forget(self, item: Hashable) -> None:
        pass

    def num_requeues(self, item: Hashable) -> int:
        return 0


class MaxOfRateLimiter:
    """The longest wait any of the limiters asks for (every limiter records the failure)."""

    def __init__(self, *limiters: RateLimiter) -> None:
        self.limiters = limiters

    def when(self, item: Hashable) -> float:
        return max(limiter.when(item) for limiter in self.limiters)

    def forget(self, item: Hashable) -> None:
        for limiter in self.limiters:
            limiter.forget(item)

    def num_requeues(self, item: Hashable) -> int:
        return max(limiter.num_requeues(item) for limiter in self.limiters)


def default_controller_rate_limiter(clock: Clock = MONOTONIC) -> MaxOfRateLimiter:
    return MaxOfRateLimiter(ItemExponentialRateLimiter(0.005, 1000.0), BucketRateLimiter(10.0, 100, clock))
