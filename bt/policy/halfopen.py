"""The half-open budget: incoming connections that have not finished their handshake.

A connection that never sends a handshake costs nothing to open, so it must
not hold one of the ``--max-connections`` slots meant for peers. Such
connections are counted here instead, against a smaller budget; when it is
full, the oldest one makes room for the newcomer. An attacker opening
connections as fast as it can then mostly evicts its own older connections,
and a real peer, which sends its handshake at once, is through before it
becomes the oldest.

One subtlety decides whether that holds: a server accepts connections in
batches (Twisted accepts up to hundreds per wake-up) and reads them only on
its next poll, where the listening socket comes first again: a real peer
whose handshake is already waiting in the kernel would be evicted by the
next batch before it is ever read. So the budget counts *turns* (the caller
advances the turn at most once per pass of its event loop, and not more
often than a peer's handshake takes to follow its connection: bt's listener
every 0.25 s) and evicts only
connections from two turns back or older, which have been polled at least
once. Until then it may run over its limit by up to ``overflow``
connections (two batches); past that, the oldest goes regardless.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

__all__ = ["HalfOpenBudget"]

K = TypeVar("K", bound=Hashable)


class HalfOpenBudget(Generic[K]):
    """``limit`` connections awaiting their handshake, briefly up to ``limit + overflow``."""

    def __init__(self, limit: int, overflow: int = 0) -> None:
        if limit < 1:
            raise ValueError(f"half-open limit must be at least 1, not {limit}")
        if overflow < 0:
            raise ValueError(f"half-open overflow must not be negative, not {overflow}")
        self.limit = limit
        self.ceiling = limit + overflow
        self.turn = 0
        self._newest_turn = -2
        #: Key -> the turn it was admitted in; insertion order is age order.
        self._waiting: dict[K, int] = {}
        #: How many connections were evicted to make room, since the start.
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._waiting)

    def __contains__(self, key: object) -> bool:
        return key in self._waiting

    @property
    def over(self) -> bool:
        """More connections than the limit: some wait for their turn to be evicted."""
        return len(self._waiting) > self.limit

    @property
    def settling(self) -> bool:
        """Turns still matter: someone arrived in the last two, or some wait to be evicted."""
        return self.over or self._newest_turn > self.turn - 2

    def admit(self, key: K) -> list[K]:
        """Count ``key`` as half-open; returns the connections to close to make room."""
        if key in self._waiting:
            raise ValueError(f"{key!r} is half-open already")
        self._waiting[key] = self._newest_turn = self.turn
        return self._trim()

    def next_turn(self) -> list[K]:
        """The event loop went round once more; returns those now due for eviction."""
        self.turn += 1
        return self._trim()

    def leave(self, key: K) -> bool:
        """``key`` finished its handshake or closed: it no longer counts.

        Returns whether it was still counted (False once evicted, or twice over).
        """
        if key not in self._waiting:
            return False
        del self._waiting[key]
        return True

    def _trim(self) -> list[K]:
        """Evict the oldest while over the limit: polled ones, or any past the ceiling."""
        evicted = []
        while len(self._waiting) > self.limit:
            oldest, admitted = next(iter(self._waiting.items()))
            if admitted > self.turn - 2 and len(self._waiting) <= self.ceiling:
                break  # not polled yet: its handshake may be waiting to be read
            del self._waiting[oldest]
            evicted.append(oldest)
        self.evicted += len(evicted)
        return evicted
