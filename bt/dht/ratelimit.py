"""Per-address limits on incoming queries, so bt cannot be used as an amplifier.

A token bucket per source address (``rate`` queries a second, bursts of
``burst``), in a table bounded to ``max_addresses`` (least recently seen
evicted), plus an optional global bucket. Time is passed in.
"""

from __future__ import annotations

__all__ = ["RateLimiter"]

RATE = 5.0
BURST = 20.0
MAX_ADDRESSES = 4096


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
        raise NotImplementedError

    def allow(self, host: str, now: float) -> bool:
        """True when a query from ``host`` at ``now`` may be answered (and counts it)."""
        raise NotImplementedError

    def __len__(self) -> int:
        """Addresses tracked."""
        raise NotImplementedError
