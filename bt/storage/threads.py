"""The session's one pool of disk threads, shared by every torrent's disk queue.

1,000 torrents use one pool, not 2,000 threads. It starts before the torrents
(they queue disk jobs at once) and stops after them; a reactor shutdown trigger
stops it too, as for the reactor's own pool, since non-daemon threads would
hang the process's exit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

__all__ = ["DiskThreads"]


class DiskThreads:
    """A ``bt-disk`` thread pool with its start, stop and shutdown safety net."""

    def __init__(self, reactor: Any, maxthreads: int) -> None:
        self.reactor = reactor
        #: Handed to every torrent's DiskQueue (which then does not own it).
        self.pool = ThreadPool(minthreads=1, maxthreads=maxthreads, name="bt-disk")
        self._trigger: Any = None

    @property
    def started(self) -> bool:
        return bool(self.pool.started)

    def start(self) -> None:
        self.pool.start()
        self._trigger = self.reactor.addSystemEventTrigger("during", "shutdown", self._at_shutdown)

    def stop(self) -> None:
        """Join the threads; every queue using them is idle by now, so it is quick."""
        if self._trigger is not None:
            self.reactor.removeSystemEventTrigger(self._trigger)
            self._trigger = None
        if self.pool.started:
            self.pool.stop()

    def _at_shutdown(self) -> None:
        self._trigger = None  # firing: it must not be removed now
        self.stop()

    def run(self, job: Callable[..., Any], *args: Any) -> Deferred[Any]:
        """Blocking file work: in the threads once they run, else right here."""
        if self.pool.started:
            return deferToThreadPool(self.reactor, self.pool, job, *args)
        return defer.maybeDeferred(job, *args)
