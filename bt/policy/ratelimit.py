"""Token buckets that shape traffic to a rate: pure policy, time passed in as floats.

A bucket holds up to ``burst`` tokens (bytes) and refills at ``rate`` bytes per
second. An amount may pass once the bucket holds ``min(amount, burst)`` tokens;
passing takes ``amount`` tokens, so an amount larger than the burst (a 16 KiB
block at a tiny rate) still passes, from a full bucket, and leaves the bucket in
debt that the following traffic waits out. The bucket never refuses forever and
never lets the average drift: in any window of ``W`` seconds at most
``rate * W + max(burst, largest amount)`` bytes pass (give or take one
microsecond of traffic, see ``_SLACK_SECONDS``), and a sender that waits the
delays it is told gets the full rate.

The default burst is a quarter second of traffic, at least 64 KiB (four blocks,
so a timer that fires a little late does not lose throughput at middling rates)
but never more than one second of traffic: that cap is what keeps the average
over any 10 s window within 10% of the rate when amounts are at most the burst.

``None`` is the only way to say "unlimited" (``UNLIMITED``); a rate of zero or
less is an error, so a configuration's "0 means unlimited" is translated once,
where options are read, not guessed at here. An unlimited bucket never delays
and keeps no accounting; limiting it again starts from a full bucket.

Callers (layer 1) use one :class:`RateLimit` per torrent and direction, chaining
the torrent's bucket with the session's global bucket:

* upload: ``wait = limit.try_consume(len(block), now)``; send if ``wait == 0.0``,
  otherwise try again ``wait`` seconds later (nothing was taken);
* download: bytes have already arrived, so ``limit.consume(n, now)``; then
  ``wait = limit.debt_delay(now)`` and, if positive, pause reading for ``wait``.

``now`` should be the reactor's ``seconds()``. A clock that steps backwards only
restarts refilling from the new time; it neither credits nor stalls the bucket.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "BURST_SECONDS",
    "MAX_BURST_SECONDS",
    "MIN_BURST",
    "UNLIMITED",
    "RateLimit",
    "TokenBucket",
    "default_burst",
]

#: The rate meaning "no limit".
UNLIMITED: Final = None

#: Default burst, in seconds of traffic at the bucket's rate.
BURST_SECONDS: Final = 0.25
#: Default burst floor in bytes (four 16 KiB blocks), when the cap below allows it.
MIN_BURST: Final = 64 * 1024
#: Default burst ceiling: one second of traffic keeps any 10 s window within 10%.
MAX_BURST_SECONDS: Final = 1.0

#: Waits shorter than this are reported as 0.0. Wall-clock floats (~1.7e9 s) are
#: only precise to ~0.2 us, so a caller that waits exactly the delay it was given
#: can wake a hair early; this stops it spinning on sub-microsecond delays. The
#: shortfall is kept as debt, so the slack never accumulates.
_SLACK_SECONDS: Final = 1e-6


def default_burst(rate: float) -> float:
    """The burst a bucket of ``rate`` bytes/s gets when none is given."""
    return min(rate * MAX_BURST_SECONDS, max(rate * BURST_SECONDS, MIN_BURST))


def _check_rate(rate: float | None) -> None:
    # ``not rate > 0`` also rejects NaN.
    if rate is not None and not (rate > 0 and rate != float("inf")):
        raise ValueError(f"rate must be None (unlimited) or a finite number > 0, not {rate!r}")


class TokenBucket:
    """One limit: ``rate`` bytes/s with a bounded ``burst``; see the module docstring."""

    __slots__ = ("_burst", "_last", "_rate", "_tokens")

    def __init__(self, rate: float | None, now: float, *, burst: float | None = None) -> None:
        self._rate: float | None = None
        self._burst = 0.0
        self._tokens = 0.0
        self._last = now
        self.set_rate(rate, now, burst=burst)

    @property
    def rate(self) -> float | None:
        """Bytes per second, or ``None`` when unlimited."""
        return self._rate

    @property
    def burst(self) -> float:
        """Most tokens the bucket holds (0.0 when unlimited)."""
        return self._burst

    @property
    def unlimited(self) -> bool:
        return self._rate is None

    def set_rate(self, rate: float | None, now: float, *, burst: float | None = None) -> None:
        """Change the limit from ``now`` on, keeping what was earned or owed until now.

        Tokens earned at the old rate are kept (down to the new burst) and debt
        is repaid at the new rate. ``burst=None`` means the default for the new
        rate, even if an explicit burst was given before.
        """
        _check_rate(rate)
        if rate is None:
            self._rate = None
            self._burst = 0.0
            self._tokens = 0.0
            self._last = now
            return
        if burst is None:
            burst = default_burst(rate)
        elif not burst > 0:
            raise ValueError(f"burst must be > 0 bytes, not {burst!r}")
        if self._rate is None:
            tokens = burst  # unlimited until now: as if idle, so full
        else:
            self._refill(now, self._rate)
            tokens = min(self._tokens, burst)
        self._rate = rate
        self._burst = burst
        self._tokens = tokens
        self._last = now

    def _refill(self, now: float, rate: float) -> None:
        """Credit the tokens earned at ``rate`` since the last call."""
        elapsed = now - self._last
        self._last = now
        if elapsed > 0:
            tokens = self._tokens + elapsed * rate
            self._tokens = tokens if tokens < self._burst else self._burst

    def delay(self, amount: int, now: float) -> float:
        """Seconds until ``amount`` bytes may pass (0.0: now). Takes nothing."""
        rate = self._rate
        if rate is None:
            return 0.0
        self._refill(now, rate)
        need = amount if amount < self._burst else self._burst
        deficit = need - self._tokens
        if deficit <= 0:
            return 0.0
        wait = deficit / rate
        return wait if wait > _SLACK_SECONDS else 0.0

    def debt_delay(self, now: float) -> float:
        """Seconds until the bucket is out of debt (0.0 if it is not in debt)."""
        return self.delay(0, now)

    def consume(self, amount: int, now: float) -> None:
        """Take ``amount`` tokens unconditionally; going below zero is debt."""
        rate = self._rate
        if rate is None:
            return
        self._refill(now, rate)
        self._tokens -= amount

    def try_consume(self, amount: int, now: float) -> float:
        """Take ``amount`` if it may pass now and return 0.0; else take nothing, return the wait."""
        wait = self.delay(amount, now)
        if wait == 0.0 and self._rate is not None:
            self._tokens -= amount  # delay() has just refilled to ``now``
        return wait

    def __repr__(self) -> str:
        if self._rate is None:
            return "TokenBucket(rate=None)"
        return f"TokenBucket(rate={self._rate!r}, burst={self._burst!r}, tokens={self._tokens!r})"


class RateLimit:
    """Buckets that all must agree, e.g. a torrent's and the session's global one.

    Buckets may be shared between limits (the global bucket always is); each
    pass is taken from every bucket. Waiting the longest bucket's delay is
    enough, because waiting only ever adds tokens.
    """

    __slots__ = ("_buckets",)

    def __init__(self, *buckets: TokenBucket) -> None:
        self._buckets = buckets

    @property
    def buckets(self) -> tuple[TokenBucket, ...]:
        return self._buckets

    @property
    def unlimited(self) -> bool:
        return all(bucket.unlimited for bucket in self._buckets)

    def delay(self, amount: int, now: float) -> float:
        """Seconds until every bucket lets ``amount`` pass. Takes nothing."""
        longest = 0.0
        for bucket in self._buckets:
            wait = bucket.delay(amount, now)
            if wait > longest:
                longest = wait
        return longest

    def debt_delay(self, now: float) -> float:
        """Seconds until no bucket is in debt."""
        return self.delay(0, now)

    def consume(self, amount: int, now: float) -> None:
        """Take ``amount`` from every bucket (bytes that already moved, e.g. received)."""
        for bucket in self._buckets:
            bucket.consume(amount, now)

    def try_consume(self, amount: int, now: float) -> float:
        """Take ``amount`` from every bucket if all let it pass now (0.0); else the wait."""
        wait = self.delay(amount, now)
        if wait == 0.0:
            for bucket in self._buckets:
                bucket.consume(amount, now)
        return wait
