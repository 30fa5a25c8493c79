"""A torrent's trackers as its first peer source: one Announcer per BEP 12 tier and hash.

The announce counters come fresh from the torrent at each announce (through
the narrow :class:`Announced`); the candidates go to ``add_candidates``
tagged as the tracker's. A hybrid torrent (BEP 52) announces under both its
info-hashes, v1 and truncated v2, so v1-only and v2-only peers find it: one
announcer per tier and hash, the v1 ones first.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, Protocol

from twisted.internet import defer
from twisted.internet.defer import Deferred

from bt.candidates import PeerSource
from bt.rate import RateMeter
from bt.tracker.announce import AnnounceRequest
from bt.tracker.announcer import Announcer, Tracker
from bt.tracker.scrape import ScrapeResult

__all__ = ["NUMWANT", "Announced", "Tracker", "Trackers"]

#: Peers asked of a tracker per announce, downloading or seeding (``stopped`` asks none).
NUMWANT = 50


class Announced(Protocol):
    """What an announce tells a tracker about the torrent, read at each announce."""

    info_hash: bytes
    #: Every hash it announces under (``info_hash`` first); a hybrid's two.
    info_hashes: tuple[bytes, ...]
    peer_id: bytes
    port: int
    #: Sent as BEP 7 ``ipv6=`` when the session listens on a specific IPv6 address.
    announce_ipv6: str | None
    upload_rate: RateMeter
    download_rate: RateMeter

    @property
    def bytes_left(self) -> int: ...


class Trackers:
    """The trackers of one torrent: their announcers, a scrape, and closing them."""

    def __init__(
        self,
        trackers: Sequence[Tracker],
        reactor: Any,
        rng: random.Random,
        torrent: Announced,
        add_candidates: Callable[..., None],
    ) -> None:
        self.trackers = list(trackers)
        self._torrent = torrent
        self._key = f"{rng.getrandbits(32):08x}"
        hashes = dict.fromkeys((torrent.info_hash, *torrent.info_hashes))

        def found(info_hash: bytes) -> Callable[[Sequence[tuple[str, int]]], None]:
            if info_hash == torrent.info_hash:
                return lambda peers: add_candidates(peers, PeerSource.TRACKER)
            # peers of the other hash are dialled with it (BEP 52)
            return lambda peers: add_candidates(peers, PeerSource.TRACKER, info_hash)

        self.announcers = [
            Announcer(tracker, reactor, rng, partial(self._request, info_hash), found(info_hash))
            for info_hash in hashes
            for tracker in self.trackers
        ]

    def _request(self, info_hash: bytes, event: str | None) -> AnnounceRequest:
        torrent = self._torrent
        return AnnounceRequest(
            info_hash=info_hash,
            peer_id=torrent.peer_id,
            port=torrent.port,
            uploaded=torrent.upload_rate.total,
            downloaded=torrent.download_rate.total,
            left=torrent.bytes_left,
            event=event,
            key=self._key,
            ipv6=torrent.announce_ipv6,
            numwant=NUMWANT,  # a seed too wants leechers to dial (libtorrent: num_want)
        )

    def scrape(self, info_hash: bytes) -> Deferred[ScrapeResult | None]:
        """Seeders, downloads and leechers as the first tracker able to scrape counts them."""
        for tracker in self.trackers:
            if hasattr(tracker, "scrape"):
                counts = tracker.scrape([info_hash])
                return counts.addCallback(lambda results: results.get(info_hash))
        return defer.succeed(None)

    def close(self) -> Deferred[Any]:
        closing = [t.close() for t in self.trackers if hasattr(t, "close")]
        return defer.DeferredList([d for d in closing if d is not None], consumeErrors=True)
