"""A simulated DHT of many in-memory nodes, for lookup tests and bench/dht_lookup.py.

Each node has a real RoutingTable filled the way a settled DHT fills one (up to
k nodes from every distance range, closest buckets split around its id), a
PeerStore and Tokens, and answers find_node/get_peers/announce_peer the way
bt's responder does. Queries are delivered through a task.Clock with random
latency; a fraction of nodes is dead and never answers, so lookups meet
timeouts. Everything is deterministic from the seed. No sockets.
"""

from __future__ import annotations

import bisect
import random
from dataclasses import dataclass, field

from twisted.internet.task import Clock

from bt.dht.krpc import NodeInfo
from bt.dht.lookup import Lookup, LookupResult
from bt.dht.nodeid import ID_BITS, id_to_int, int_to_id, random_id
from bt.dht.routing import K, RoutingTable
from bt.dht.store import PeerStore
from bt.dht.tokens import Tokens

Peer = tuple[str, int]

TIMEOUT = 2.0


@dataclass
class SimNode:
    info: NodeInfo
    table: RoutingTable | None = None
    store: PeerStore = field(default_factory=PeerStore)
    tokens: Tokens | None = None
    alive: bool = True


class SimNetwork:
    """``size`` nodes; tables are built on first use so 10,000 nodes stay cheap."""

    def __init__(
        self,
        size: int,
        seed: int = 1,
        *,
        dead_fraction: float = 0.0,
        latency: tuple[float, float] = (0.01, 0.2),
        k: int = K,
    ) -> None:
        self.rng = random.Random(seed)
        self.k = k
        self.latency = latency
        self.clock = Clock()
        self.queries = 0
        self.nodes: dict[bytes, SimNode] = {}
        for index in range(size):
            node_id = random_id(self.rng)
            host = f"10.{index >> 16 & 255}.{index >> 8 & 255}.{index & 255}"
            self.nodes[node_id] = SimNode(NodeInfo(node_id, host, 6881))
        self.ids = sorted(self.nodes, key=id_to_int)
        self._values = [id_to_int(node_id) for node_id in self.ids]
        for node in self.rng.sample(list(self.nodes.values()), int(size * dead_fraction)):
            node.alive = False

    def table(self, node_id: bytes) -> RoutingTable:
        """``node_id``'s routing table: up to k live nodes from each distance range."""
        node = self.nodes[node_id]
        if node.table is None:
            node.table = self.fill(RoutingTable(node_id, k=self.k), random.Random(node_id))
        return node.table

    def fill(self, table: RoutingTable, rng: random.Random) -> RoutingTable:
        """Fill ``table`` as a long-running node would: k from every range sharing i bits."""
        own = id_to_int(table.own_id)
        for shared in range(ID_BITS):
            lo, hi = self._range(own, shared)
            mine = self._range(own, shared + 1)
            below = mine[0] - lo  # the range is [lo, hi) minus our own half [mine)
            count = below + hi - mine[1]
            for pick in rng.sample(range(count), min(count, 2 * self.k)):
                node = self.nodes[self.ids[lo + pick if pick < below else mine[1] + pick - below]]
                if node.alive or rng.random() < 0.5:  # some dead nodes linger in tables
                    table.add(node.info, 0.0, replied=True)
            if mine[1] - mine[0] <= (1 if own in self._values else 0):
                break
        return table

    def _range(self, own: int, shared: int) -> tuple[int, int]:
        """Indexes of the ids sharing ``shared`` leading bits with ``own``."""
        span = ID_BITS - shared
        base = own >> span << span
        return (
            bisect.bisect_left(self._values, base),
            bisect.bisect_left(self._values, base + (1 << span)),
        )

    def random_node(self) -> SimNode:
        return self.nodes[self.rng.choice(self.ids)]

    def closest_ids(self, target: bytes, n: int, *, alive: bool = True) -> list[bytes]:
        """The true ``n`` closest ids (the oracle a lookup is judged against)."""
        goal = id_to_int(target)
        found = sorted(
            (node_id for node_id, node in self.nodes.items() if node.alive or not alive),
            key=lambda node_id: id_to_int(node_id) ^ goal,
        )
        return found[:n]

    def answer(
        self, node_id: bytes, target: bytes, querier: NodeInfo, *, get_peers: bool
    ) -> tuple[list[NodeInfo], list[Peer], bytes | None]:
        """What ``node_id`` replies to find_node/get_peers for ``target``."""
        self.queries += 1
        node = self.nodes[node_id]
        nodes = self.table(node_id).closest(target, self.k)
        if not get_peers:
            return nodes, [], None
        if node.tokens is None:
            node.tokens = Tokens(random.Random(node_id).randbytes, self.clock.seconds())
        token = node.tokens.issue(querier.host, self.clock.seconds())
        peers = node.store.get(target, self.clock.seconds(), self.rng)
        return nodes, peers, token

    def announce(self, node_id: bytes, info_hash: bytes, peer: Peer, token: bytes | None) -> bool:
        """An announce_peer to ``node_id``: stored only with a token it issued to the peer's IP."""
        node = self.nodes[node_id]
        now = self.clock.seconds()
        if token is None or node.tokens is None or not node.tokens.check(token, peer[0], now):
            return False
        node.store.add(info_hash, peer, now)
        return True

    def lookup(
        self, start: SimNode, target: bytes, *, get_peers: bool = False, **options: object
    ) -> LookupResult:
        """Run one lookup from ``start`` to the end, advancing the clock."""
        seeds = self.table(start.info.id).closest(target, self.k)
        lookup = Lookup(target, seeds, self.clock.seconds(), own_id=start.info.id, **options)
        pending: dict[NodeInfo, object] = {}

        def send(nodes: list[NodeInfo]) -> None:
            for node in nodes:
                if self.nodes[node.id].alive if node.id in self.nodes else False:
                    delay = self.rng.uniform(*self.latency)
                    pending[node] = self.clock.callLater(delay, reply, node)
                else:
                    pending[node] = self.clock.callLater(TIMEOUT, timeout, node)

        def reply(node: NodeInfo) -> None:
            del pending[node]
            nodes, values, token = self.answer(node.id, target, start.info, get_peers=get_peers)
            send(lookup.on_response(node, nodes, self.clock.seconds(), values=values, token=token))

        def timeout(node: NodeInfo) -> None:
            del pending[node]
            send(lookup.on_timeout(node, self.clock.seconds()))

        send(lookup.start())
        while not lookup.done and pending:
            calls = self.clock.getDelayedCalls()
            self.clock.advance(min(call.getTime() for call in calls) - self.clock.seconds())
        for call in pending.values():
            call.cancel()  # type: ignore[attr-defined]
        return lookup.result()


def target_near(node_id: bytes, rng: random.Random, shared: int) -> bytes:
    """An id sharing ``shared`` leading bits with ``node_id``."""
    span = ID_BITS - shared
    return int_to_id(id_to_int(node_id) >> span << span | rng.getrandbits(span))
