"""One once-a-second timer for every torrent of a session.

A ``LoopingCall`` per torrent costs a reactor timer, a Deferred and a heap
operation per second each: with 1,000 idle torrents that was 10% of a core
(bench/scale.py torrents), libtorrent needs 0.3%. One shared timer calls each
torrent's tick in turn, and an idle torrent's tick returns at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet import task

from bt.logs import Logger

__all__ = ["IDLE_SEED_TICK_INTERVAL", "IDLE_TICK_INTERVAL", "IdlePace", "Ticker"]

#: Seconds between the ticks of a torrent without peers (downloading, finished).
IDLE_TICK_INTERVAL = 5.0
IDLE_SEED_TICK_INTERVAL = 30.0


class Ticker:
    """Calls every registered callback once per ``interval``; runs only while it has any."""

    log = Logger()

    def __init__(self, reactor: Any, interval: float = 1.0) -> None:
        self._reactor = reactor
        self._interval = interval
        self._callbacks: dict[Callable[[], object], None] = {}
        self._loop: task.LoopingCall | None = None

    def __len__(self) -> int:
        return len(self._callbacks)

    def add(self, callback: Callable[[], object]) -> None:
        self._callbacks[callback] = None
        if self._loop is None:
            self._loop = task.LoopingCall(self._tick)
            self._loop.clock = self._reactor
            self._loop.start(self._interval, now=False).addErrback(
                lambda failure: self.log.failure("ticker stopped", failure)
            )

    def remove(self, callback: Callable[[], object]) -> None:
        self._callbacks.pop(callback, None)
        if not self._callbacks and self._loop is not None:
            loop, self._loop = self._loop, None
            if loop.running:
                loop.stop()

    def _tick(self) -> None:
        for callback in list(self._callbacks):
            if callback not in self._callbacks:
                continue  # removed by an earlier callback of this round
            try:
                callback()
            except Exception:
                # The one wide net: a bug in one torrent's tick must not stop every
                # other torrent's timers. It is logged with its traceback.
                self.log.failure("tick of {callback!r} failed", callback=callback)


class IdlePace:
    """A torrent without peers has nothing to measure, choke or keep alive: it connects,
    announces and checks its seeding goal every few seconds only, a finished one (which
    dials its due candidates; a tracker's answer dials at once) at a slower pace."""

    def __init__(self) -> None:
        self._next = 0.0

    def skip(self, now: float, *, finished: bool, urgent: bool, deadline: float | None) -> bool:
        """Should this idle tick return at once? ``urgent``: state to save; ``deadline``:
        when the seeding time runs out (None: no such goal)."""
        if now < self._next and not urgent:
            return True
        self._next = now + (IDLE_SEED_TICK_INTERVAL if finished else IDLE_TICK_INTERVAL)
        if deadline is not None:
            self._next = min(self._next, max(now + 1, deadline))
        return False
