"""Per-address limits on incoming queries, so bt cannot be used as an amplifier.

A token bucket per source address (``rate`` queries a second, bursts of
``burst``), in a table bounded to ``max_addresses`` (least recently seen
evicted), plus an optional global bucket. Time is passed in.
"""

from __future__ import annotations

from collections import OrderedDict

__all__ = ["RateLimiter"]

RATE = 5.0
BURST = 20.0
MAX_ADDRESSES = 4096


class _Bucket:
    __slots__ = ("burst", "level", "rate", "updated")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.level = burst
        self.updated = now

    def take(self, now: float) -> bool:
        elapsed = max(0.0, now - self.updated)
        self.level = min(self.burst, self.level + elapsed * self.rate)
        self.updated = now
        if self.level < 1.0:
            return False
        self.level -= 1.0
        return True


class RateLimiter:
    """Decides whether to answer a query from an address."""

    def __init__(
        self,
        *,
        rate: float = RATE,
        burst: float = BURST,
        max_addresses: int = MAX_ADDRESSES,
        global_rate: float | None = None,
        global_burst: float | None = None,
    ) -> None:
        self._rate = rate
        self._burst = burst
        self._max = max_addresses
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._global_rate = global_rate
        self._global_burst = global_burst if global_burst is not None else global_rate
        self._global: _Bucket | None = None

    def allow(self, host: str, now: float) -> bool:
        """True when a query from ``host`` at ``now`` may be answered (and counts it)."""
        bucket = self._buckets.get(host)
        if bucket is None:
            while len(self._buckets) >= self._max:
                self._buckets.popitem(last=False)
            bucket = self._buckets[host] = _Bucket(self._rate, self._burst, now)
        else:
            self._buckets.move_to_end(host)
        if not bucket.take(now):
            return False
        if self._global_rate is None or self._global_burst is None:
            return True
        if self._global is None:
            self._global = _Bucket(self._global_rate, self._global_burst, now)
        return self._global.take(now)

    def __len__(self) -> int:
        """Addresses tracked."""
        return len(self._buckets)
