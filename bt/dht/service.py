"""The session's DHT: one node on the ``--listen`` address and port, started and stopped with it.

It owns the UDP port, the node's id and the nodes worth keeping (saved in the
state folder on stop and every few minutes, so a restart bootstraps from
them before the routers), the bucket refresh timer, and the peer sources of
torrents (:mod:`bt.dht.source`).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from twisted.application.service import Service
from twisted.internet import defer
from twisted.internet.address import IPv6Address
from twisted.internet.defer import Deferred
from twisted.internet.error import CannotListenError
from twisted.internet.task import LoopingCall

from bt.dht import persist
from bt.dht.config import DHTConfig
from bt.dht.krpc import NodeInfo
from bt.dht.node import DHTNode
from bt.dht.nodeid import generate_id, is_valid_id
from bt.dht.routing import K
from bt.dht.source import DHTPeerSource
from bt.errors import BtError, DHTError
from bt.logs import Logger
from bt.peer.protocol import DHTPort

if TYPE_CHECKING:
    from bt.listener import PeerListener
    from bt.session import Session

__all__ = ["DHTService", "dht_counts", "dht_service"]

#: How often buckets are checked for a refresh (each refreshes after 15 idle minutes).
REFRESH_CHECK = 60.0
#: Torrent lookups running at once, at most: the rest wait (pending queries are bounded).
CONCURRENT_LOOKUPS = 16
#: Questionable nodes pinged per check, at most.
PINGS_PER_CHECK = 8
#: How often the id and the good nodes are saved while running.
SAVE_EVERY = 5 * 60.0


def dht_service(session: Session) -> DHTService | None:
    """The session's DHT service as its child, or None when its config has no DHT."""
    if session.config.dht is None:
        return None
    service = DHTService(
        session.config.dht,
        session.config.state_dir,
        session.listener,
        session.reactor,
        random.Random(session.rng.getrandbits(64)),
        session.run_blocking,
    )
    service.setServiceParent(session)
    return service


def dht_counts(service: DHTService | None) -> dict[str, int]:
    """The session status's DHT fields; none (null in the API) without a DHT."""
    if service is None:
        return {}
    node = service.node
    if node is None:
        return {"dht_nodes": 0, "dht_lookups": 0, "dht_announces": 0}
    counters = node.counters
    return {
        "dht_nodes": len(node.table),
        "dht_lookups": counters.lookups,
        "dht_announces": counters.announces,
    }


class DHTService(Service):
    """Runs the session's :class:`~bt.dht.node.DHTNode` (see the module docstring)."""

    log = Logger()

    def __init__(
        self,
        config: DHTConfig,
        state_dir: Path,
        listener: PeerListener,
        reactor: Any,
        rng: random.Random,
        run_blocking: Callable[..., Deferred[Any]],
    ) -> None:
        self.config = config
        self.path = state_dir / persist.FILENAME
        self.listener = listener
        self.reactor = reactor
        self.rng = rng
        self.run_blocking = run_blocking
        self.node: DHTNode | None = None
        self.udp: Any = None
        self._loops: list[LoopingCall] = []
        self._bootstrapped = False
        #: Torrents' lookups run a few at a time (each keeps alpha queries in flight).
        self.lookup_turns = defer.DeferredSemaphore(CONCURRENT_LOOKUPS)
        #: Our external address as saved by the last run (kept until nodes tell us again).
        self._external: str | None = None
        self._waiting: list[Deferred[None]] = []
        #: What peer connections need of us: our port for PORT, and pings of theirs.
        self.advert = DHTPort(lambda: self.port, self.ping)

    @property
    def port(self) -> int | None:
        """The UDP port of the node (the TCP listener's number); None when not running."""
        return self.udp.getHost().port if self.udp is not None else None

    def startService(self) -> None:
        super().startService()
        host, port = self._address()
        saved = persist.load(self.path)
        self._external = saved.external_ip
        ipv6 = ":" in host
        node_id = _our_id(saved, host, self.rng)
        self.node = DHTNode(
            node_id,
            self.reactor,
            self.rng,
            allow_same_ip=not self.config.one_node_per_ip,
            ipv6=ipv6,
        )
        try:
            self.udp = self.reactor.listenUDP(port, self.node, interface=host)
        except (CannotListenError, OSError) as exc:  # the DHT is not worth the whole daemon
            self.log.error(
                "DHT off: cannot listen on UDP port {port}: {error}", port=port, error=exc
            )
            self.node = None
            self._ready(None)  # torrents waiting to look up learn there is nothing to wait for
            return
        self.log.info("DHT node on UDP port {port}", port=self.port)
        for call, every in ((self._refresh, REFRESH_CHECK), (self._save_now, SAVE_EVERY)):
            loop = LoopingCall(call)
            loop.clock = self.reactor
            loop.start(every, now=False).addErrback(self._log_failure, "DHT timer")
            self._loops.append(loop)
        self._bootstrap(saved.nodes).addErrback(self._log_failure, "DHT bootstrap")

    def _address(self) -> tuple[str, int]:
        """The TCP listener's address and port: the DHT listens on the same ones."""
        listening = self.listener.listening
        if listening is None:
            raise BtError("the DHT starts after the peer listener")
        host = listening.getHost()
        if isinstance(host, IPv6Address):
            return host.host, host.port
        return ("" if host.host == "0.0.0.0" else host.host), host.port

    def stopService(self) -> Deferred[None]:
        super().stopService()
        for loop in self._loops:
            if loop.running:
                loop.stop()
        self._loops = []
        if self.node is None:
            return defer.succeed(None)
        saved = self._save_now()
        self.node.stop()
        udp, self.udp, self.node = self.udp, None, None
        stopped = defer.maybeDeferred(udp.stopListening)
        return defer.gatherResults([saved, stopped], consumeErrors=True).addBoth(lambda _: None)

    # -- bootstrap, refresh, saving ---------------------------------------------

    def _bootstrap(self, saved: list[NodeInfo]) -> Deferred[None]:
        """Join through the saved nodes first; through the bootstrap nodes if that left us few."""
        assert self.node is not None
        node = self.node

        def from_routers(_: object) -> Deferred[Any] | None:
            if self.node is not node or len(node.table) >= K:
                return None
            return self._join(node, self._resolve_all())

        joined = self._join(node, defer.succeed([n.address for n in saved]), seeds=saved)
        joined.addCallback(from_routers)
        return joined.addBoth(self._ready)

    def _join(
        self,
        node: DHTNode,
        addresses: Deferred[list[tuple[str, int]]],
        seeds: list[NodeInfo] | None = None,
    ) -> Deferred[Any]:
        """find_node(our id) to each address, then a lookup of our id from what they told us."""

        def ask(found: list[tuple[str, int]]) -> Deferred[Any]:
            asked = [node.find_node(address, node.node_id) for address in found]
            return defer.DeferredList(asked, consumeErrors=True)

        def look(results: list[tuple[bool, Any]]) -> Deferred[Any]:
            learned = list(seeds or [])
            for ok, response in results:
                if ok:
                    learned.extend(response.nodes6 if node.ipv6 else response.nodes)
            return node.lookup(node.node_id, seeds=learned)

        return addresses.addCallback(ask).addCallback(look)

    def _resolve_all(self) -> Deferred[list[tuple[str, int]]]:
        """The bootstrap nodes' addresses: names resolved (a name that fails is skipped)."""

        def one(host: str, port: int) -> Deferred[tuple[str, int] | None]:
            if _is_address(host):
                return defer.succeed((host, port))
            resolved = self.reactor.resolve(host)
            resolved.addCallback(lambda ip: (ip, port))
            resolved.addErrback(lambda failure: None)
            return resolved

        found = defer.gatherResults([one(h, p) for h, p in self.config.bootstrap])
        return found.addCallback(lambda addresses: [a for a in addresses if a is not None])

    def _ready(self, result: object) -> object:
        self._bootstrapped = True
        waiting, self._waiting = self._waiting, []
        for deferred in waiting:
            deferred.callback(None)
        if self.node is not None:
            self.log.info("DHT: {count} nodes in the table", count=len(self.node.table))
        return result

    def bootstrapped(self) -> Deferred[None]:
        """Fires once the first bootstrap is over (at once when it is)."""
        if self._bootstrapped:
            return defer.succeed(None)
        waiting: Deferred[None] = Deferred()
        self._waiting.append(waiting)
        return waiting

    def _refresh(self) -> None:
        node = self.node
        if node is None:
            return
        now = self.reactor.seconds()
        node.store.expire(now)
        for target in node.table.refresh_targets(now, self.rng):
            node.lookup(target).addErrback(self._log_failure, "DHT refresh")
        # Questionable nodes are pinged: an answer makes them good, silence bad.
        for info in node.table.questionable(now)[:PINGS_PER_CHECK]:
            node.query(info.address, "ping", info.id).addErrback(lambda f: f.trap(DHTError))

    def _save_now(self) -> Deferred[None]:
        node = self.node
        if node is None:
            return defer.succeed(None)
        good = node.table.good_nodes(self.reactor.seconds())
        data = persist.dump(node.node_id, good, node.external_ip or self._external)
        saved = self.run_blocking(persist.save, self.path, data)
        return saved.addErrback(self._log_failure, "saving the DHT state")

    def source_for(
        self,
        info_hash: bytes,
        add_candidates: Callable[[list[tuple[str, int]], str], Any],
        port: Callable[[], int],
    ) -> DHTPeerSource:
        """A peer source of one torrent (or magnet) through this node."""
        return DHTPeerSource(self, info_hash, add_candidates, port, self.reactor)

    def ping(self, address: tuple[str, int]) -> None:
        """Ping a node a peer told us of (BEP 5 PORT): it joins the table if it answers."""
        if self.node is not None:
            self.node.ping(address).addErrback(lambda failure: failure.trap(DHTError))

    def _log_failure(self, failure: Any, what: str) -> None:
        self.log.failure("{what} failed", failure, what=what)


def _our_id(saved: persist.Saved, host: str, rng: random.Random) -> bytes:
    """The saved id, unless BEP 42 wants another for the address nodes last saw us at.

    At the first start our external address is unknown: the listen address
    (unspecified or local ones are exempt) gives a random id.
    """
    where = saved.external_ip or host or "0.0.0.0"
    if saved.node_id is not None and is_valid_id(saved.node_id, where):
        return saved.node_id
    return generate_id(where, rng)


def _is_address(host: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
