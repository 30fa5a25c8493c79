"""One once-a-second timer for every torrent of a session.

A ``LoopingCall`` per torrent costs a reactor timer, a Deferred and a heap
operation per second each: with 1,000 idle torrents that was 10% of a core
(bench/scale.py torrents), libtorrent needs 0.3%. One shared timer calls each
torrent's tick in turn. An idle torrent *parks* itself until its next idle
tick (every 5 s, 30 s when finished): 10,000 idle torrents cost the timer a
heap check a second, not 10,000 calls (3% of a core, bench/manytorrents.py);
a peer joining wakes it.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from typing import Any

from twisted.internet import task

from bt.logs import Logger

__all__ = ["IDLE_SEED_TICK_INTERVAL", "IDLE_TICK_INTERVAL", "IdlePace", "Ticker"]

#: Seconds between the ticks of a torrent without peers (downloading, finished).
IDLE_TICK_INTERVAL = 5.0
IDLE_SEED_TICK_INTERVAL = 30.0


class Ticker:
    """Calls every registered callback once per ``interval``, but a parked one only once
    its time comes (or it is woken); runs only while it has any."""

    log = Logger()

    def __init__(self, reactor: Any, interval: float = 1.0) -> None:
        self._reactor = reactor
        self._interval = interval
        self._callbacks: dict[Callable[[], object], None] = {}
        #: Parked callbacks and when each is due; the heap may hold stale entries
        #: (woken or parked again since), skipped when their time differs.
        self._parked: dict[Callable[[], object], float] = {}
        self._due: list[tuple[float, int, Callable[[], object]]] = []
        self._order = itertools.count()
        self._loop: task.LoopingCall | None = None

    def __len__(self) -> int:
        return len(self._callbacks) + len(self._parked)

    def __contains__(self, callback: Callable[[], object]) -> bool:
        return callback in self._callbacks or callback in self._parked

    def add(self, callback: Callable[[], object]) -> None:
        """Call ``callback`` every tick from now on (a parked one too: it is woken)."""
        self._parked.pop(callback, None)
        self._callbacks[callback] = None
        if self._loop is None:
            self._loop = task.LoopingCall(self._tick)
            self._loop.clock = self._reactor
            self._loop.start(self._interval, now=False).addErrback(
                lambda failure: self.log.failure("ticker stopped", failure)
            )

    def remove(self, callback: Callable[[], object]) -> None:
        self._callbacks.pop(callback, None)
        self._parked.pop(callback, None)
        if not self._callbacks and not self._parked and self._loop is not None:
            loop, self._loop = self._loop, None
            self._due.clear()
            if loop.running:
                loop.stop()

    def park(self, callback: Callable[[], object], until: float) -> None:
        """Skip ``callback``'s ticks before ``until`` (reactor seconds) unless woken first."""
        if self._callbacks.pop(callback, 0) is None or callback in self._parked:
            self._parked[callback] = until
            heapq.heappush(self._due, (until, next(self._order), callback))

    def wake(self, callback: Callable[[], object]) -> None:
        """A parked ``callback`` ticks again from the next tick on (no-op otherwise)."""
        if self._parked.pop(callback, None) is not None:
            self._callbacks[callback] = None

    def _unpark_due(self, now: float) -> None:
        due, parked = self._due, self._parked
        while due and due[0][0] <= now:
            until, _, callback = heapq.heappop(due)
            if parked.get(callback) == until:
                del parked[callback]
                self._callbacks[callback] = None

    def _tick(self) -> None:
        self._unpark_due(self._reactor.seconds())
        for callback in list(self._callbacks):
            if callback not in self._callbacks:
                continue  # removed (or parked) by an earlier callback of this round
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

    @property
    def next(self) -> float:
        """When the next idle tick is due (reactor seconds): the torrent parks until then."""
        return self._next

    def skip(self, now: float, *, finished: bool, urgent: bool, deadline: float | None) -> bool:
        """Should this idle tick return at once? ``urgent``: state to save; ``deadline``:
        when the seeding time runs out (None: no such goal)."""
        if now < self._next and not urgent:
            return True
        self._next = now + (IDLE_SEED_TICK_INTERVAL if finished else IDLE_TICK_INTERVAL)
        if deadline is not None:
            self._next = min(self._next, max(now + 1, deadline))
        return False
