"""Peer sources: where a torrent's candidates come from (trackers; PEX, DHT, magnet next).

A peer source feeds candidate addresses, tagged with its
:class:`~bt.candidates.PeerSource`, to the ``add_candidates(peers, source)``
callable it was built with, and follows the torrent's life through the
calls of :class:`IPeerSource`. A new source registers with the torrent's
:class:`PeerSources`; neither the torrent nor the swarm changes for it.
The tracker announcer (``bt.tracker.announcer.Announcer``) is the first.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from twisted.internet import defer
from twisted.internet.defer import Deferred
from zope.interface import Attribute, Interface

from bt.logs import Logger

__all__ = ["IPeerSource", "PeerSources"]


class IPeerSource(Interface):
    """Something that finds peers for one torrent."""

    tag = Attribute("The bt.candidates.PeerSource its candidates carry.")
    running = Attribute("True between start() and stop().")

    def start() -> None:
        """The torrent joined the swarm: look for peers."""

    def completed() -> None:
        """The download completed (trackers are told; others may ignore it)."""

    def need_peers() -> None:
        """The torrent has few peers: look for more soon, if the source can."""

    def stop() -> Deferred[None]:
        """The torrent left the swarm: say goodbye; fires when done."""


class PeerSources:
    """The peer sources registered with one torrent, driven together."""

    log = Logger()

    def __init__(self, name: str, sources: Iterable[Any] = ()) -> None:
        self.name = name
        self.sources: list[Any] = list(sources)

    def register(self, source: Any) -> None:
        self.sources.append(source)

    def start(self, *, completed: bool = False) -> None:
        """Start every source; ``completed``: the download finished while we were away."""
        for source in self.sources:
            source.start()
            if completed:
                source.completed()

    def completed(self) -> None:
        for source in self.sources:
            source.completed()

    def need_peers(self) -> None:
        for source in self.sources:
            source.need_peers()

    def stop(self, *, every: bool = False) -> Deferred[Any]:
        """Stop the running sources (``every``: all of them); fires when all are done."""
        stops = [source.stop() for source in self.sources if every or source.running]
        for stop in stops:
            stop.addErrback(self._log_failure)
        return defer.DeferredList(stops, consumeErrors=True)

    def _log_failure(self, failure: Any) -> None:
        self.log.failure(
            "{name}: unexpected error in {what}", failure, name=self.name, what="announce stopped"
        )
