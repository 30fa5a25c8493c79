"""Tracker clients for every torrent of a session: one per announce URL, one HTTP pool.

The session builds one ``TrackerFactory``; each torrent gets its BEP 12 tiers
from it. HTTP trackers share one treq client and connection pool (closed when
the session stops); UDP trackers each get their own seeded random source.
"""

from __future__ import annotations

import random
from typing import Any

from twisted.internet.defer import Deferred

from bt.errors import TrackerError
from bt.logs import Logger
from bt.metainfo import Metainfo
from bt.tracker.announcer import Tracker
from bt.tracker.http import HTTPTracker, make_http_client
from bt.tracker.tiers import build_tiers
from bt.tracker.udp import UDPTracker

__all__ = ["TrackerFactory"]


class TrackerFactory:
    """Builds the trackers of a torrent; owns the HTTP client they share."""

    log = Logger()

    def __init__(self, reactor: Any, rng: random.Random) -> None:
        self.reactor = reactor
        #: The session's random source: tier shuffles and UDP transaction ids.
        self.rng = rng
        self.http_client, self._http_pool = make_http_client(reactor)

    def tiers_for(self, metainfo: Metainfo) -> list[Tracker]:
        """BEP 12: one tier per announce-list entry; each tier is announced to on its own."""

        def make_tracker(url: str) -> Tracker | None:
            try:
                return self.for_url(url)
            except TrackerError as exc:
                self.log.warn("{name}: skipping tracker: {error}", name=metainfo.name, error=exc)
                return None

        tiers = build_tiers(metainfo.trackers, make_tracker, self.rng)
        if not tiers:
            self.log.warn(
                "{name}: no usable tracker; waiting for incoming peers", name=metainfo.name
            )
        return list(tiers)

    def for_url(self, url: str) -> Tracker | None:
        """A client for one announce URL; None for schemes bt does not speak."""
        if url.startswith(("http://", "https://")):
            return HTTPTracker(url, self.http_client, self.reactor)
        if url.startswith("udp://"):
            # 15 s doubling, 4 tries: about 4 minutes before a dead tracker counts as failed.
            return UDPTracker(
                url, self.reactor, rng=random.Random(self.rng.getrandbits(64)), max_retries=3
            )
        return None

    def close(self) -> Deferred[None]:
        """Close the HTTP connections kept open between announces (at session stop)."""
        return self._http_pool.closeCachedConnections()
