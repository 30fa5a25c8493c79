"""Transfer rates over a short sliding window; time is passed in, never read."""

from __future__ import annotations


class RateMeter:
    """Bytes per second, smoothed: a sample per ``tick`` blended into a moving average.

    Counting (``add``) is one integer addition, cheap enough for every block;
    the arithmetic happens once per tick, not per message.
    """

    __slots__ = ("_last_tick", "_pending", "rate", "total")

    #: Weight of the newest one-tick sample; ~5 ticks of memory.
    SMOOTHING = 0.3

    def __init__(self, now: float) -> None:
        self.total = 0
        self.rate = 0.0
        self._pending = 0
        self._last_tick = now

    def add(self, amount: int) -> None:
        self.total += amount
        self._pending += amount

    def tick(self, now: float) -> float:
        elapsed = now - self._last_tick
        if elapsed <= 0:
            return self.rate
        sample = self._pending / elapsed
        self.rate += (sample - self.rate) * min(1.0, self.SMOOTHING * elapsed)
        self._pending = 0
        self._last_tick = now
        return self.rate
