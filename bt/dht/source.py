"""The DHT as a peer source of one torrent (or magnet): get_peers, then announce_peer.

About every 15 minutes (sooner when the torrent needs peers) it looks the
info-hash up in the DHT, hands the peers found to the torrent's candidate
pool tagged ``PeerSource.DHT``, and announces our listen port to the closest
nodes that gave a token. Private torrents never get one (bt.extensions.standard).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twisted.internet import defer
from twisted.internet.defer import Deferred
from zope.interface import implementer

from bt.candidates import PeerSource
from bt.dht.lookup import LookupResult
from bt.logs import Logger
from bt.peersources import IPeerSource

if TYPE_CHECKING:
    from bt.dht.service import DHTService

__all__ = ["DHTPeerSource"]

#: Between two lookups of one torrent.
INTERVAL = 15 * 60.0
#: Distinct peers remembered (to count each once in status), at most.
MAX_SEEN = 10_000
#: The soonest a torrent short of peers (or one whose lookup found none) looks again.
SOONEST = 30.0


@implementer(IPeerSource)
class DHTPeerSource:
    """Finds peers of ``info_hash`` through the session's DHT."""

    tag = PeerSource.DHT
    log = Logger()

    def __init__(
        self,
        dht: DHTService,
        info_hash: bytes,
        add_candidates: Callable[[list[tuple[str, int]], str], Any],
        port: Callable[[], int],
        reactor: Any,
    ) -> None:
        self.dht = dht
        self.info_hash = info_hash
        self.add_candidates = add_candidates
        self.port = port
        self.reactor = reactor
        self.running = False
        #: Peers the DHT gave us for this torrent (status), and lookups done.
        self.peers_found = 0
        self.lookups = 0
        self._seen: set[tuple[str, int]] = set()
        self._timer: Any = None
        self._busy = False
        self._last: float | None = None

    def start(self) -> None:
        self.running = True
        self.dht.bootstrapped().addCallback(lambda _: self._schedule(0.0))

    def completed(self) -> None:
        """Nothing to say: the DHT has no 'completed' event."""

    def need_peers(self) -> None:
        now = self.reactor.seconds()
        if self.running and not self._busy and (self._last is None or now - self._last >= SOONEST):
            self._schedule(0.0)

    def stop(self) -> Deferred[None]:
        self.running = False
        self._cancel()
        return defer.succeed(None)

    def _cancel(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _schedule(self, delay: float) -> None:
        if not self.running:
            return
        self._cancel()
        self._timer = self.reactor.callLater(delay, self._look)

    def _look(self) -> None:
        self._timer = None
        if self.dht.node is None or not self.running:
            return
        self._busy = True
        self._last = self.reactor.seconds()
        # A thousand torrents starting at once wait their turn: a few lookups at a time.
        looked = self.dht.lookup_turns.run(self._announce)
        looked.addCallback(self._found)
        looked.addErrback(lambda failure: self.log.failure("DHT lookup failed", failure))
        looked.addBoth(self._done)

    def _announce(self) -> Deferred[LookupResult | None]:
        node = self.dht.node
        if node is None or not self.running:  # stopped while waiting for its turn
            return defer.succeed(None)
        self.lookups += 1
        return node.announce(self.info_hash, self.port())

    def _found(self, result: LookupResult | None) -> None:
        if result is None:
            return
        peers = [peer for peer in result.peers if peer[1] > 0]
        fresh = [peer for peer in peers if peer not in self._seen]
        if len(self._seen) > MAX_SEEN:  # bounded: a long-lived swarm's churn
            self._seen.clear()
        self._seen.update(fresh)
        self.peers_found += len(fresh)
        if peers and self.running:
            self.add_candidates(peers, PeerSource.DHT)

    def _done(self, _: object) -> None:
        self._busy = False
        self._schedule(INTERVAL if self._seen else SOONEST)
