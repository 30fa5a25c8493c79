"""The routing table (BEP 5): k-buckets split around our own id.

Time is passed in (seconds, any monotonic origin). A node is *good* when it
replied within :data:`GOOD_FOR`, *bad* after :data:`MAX_FAILURES` unanswered
queries in a row, otherwise *questionable*. A full bucket keeps newcomers in a
replacement cache and swaps one in when a member turns bad. By default one node
per IP address (``allow_same_ip`` relaxes it, for loopback networks), and BEP 42
ids are required only when ``enforce_node_id`` is set.
"""

from __future__ import annotations

import bisect
import heapq
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import Enum

from bt.dht.krpc import NodeInfo
from bt.dht.nodeid import ID_BITS, ID_BYTES, id_to_int, int_to_id, is_valid_id

__all__ = [
    "GOOD_FOR",
    "MAX_FAILURES",
    "REFRESH_INTERVAL",
    "Bucket",
    "K",
    "Liveness",
    "Node",
    "RoutingTable",
]

K = 8
GOOD_FOR = 15 * 60.0
REFRESH_INTERVAL = 15 * 60.0
MAX_FAILURES = 2
REPLACEMENTS = 8


class Liveness(Enum):
    GOOD = "good"
    QUESTIONABLE = "questionable"
    BAD = "bad"


@dataclass(slots=True)
class Node:
    """A node in the table: its contact and what we know of its liveness."""

    info: NodeInfo
    last_reply: float | None = None
    last_seen: float = 0.0
    failures: int = 0

    @property
    def id(self) -> bytes:
        return self.info.id

    def liveness(self, now: float) -> Liveness:
        if self.failures >= MAX_FAILURES:
            return Liveness.BAD
        if self.failures == 0 and self.last_reply is not None and now - self.last_seen < GOOD_FOR:
            return Liveness.GOOD
        return Liveness.QUESTIONABLE


@dataclass(slots=True, eq=False)
class Bucket:
    """Ids in ``[lo, hi)`` with up to k nodes and a replacement cache."""

    lo: int
    hi: int
    nodes: list[Node] = field(default_factory=list)
    replacements: list[Node] = field(default_factory=list)
    last_changed: float = 0.0

    def covers(self, value: int) -> bool:
        return self.lo <= value < self.hi


class RoutingTable:
    """k-buckets around ``own_id``."""

    def __init__(
        self,
        own_id: bytes,
        *,
        k: int = K,
        allow_same_ip: bool = False,
        enforce_node_id: bool = False,
        replacements: int = REPLACEMENTS,
    ) -> None:
        self.own_id = own_id
        self._own = id_to_int(own_id)
        self.k = k
        self.allow_same_ip = allow_same_ip
        self.enforce_node_id = enforce_node_id
        self._replacements = replacements
        self._buckets = [Bucket(0, 1 << ID_BITS)]
        self._los = [0]
        self._nodes: dict[bytes, Node] = {}
        self._ips: dict[str, bytes] = {}

    def __len__(self) -> int:
        """Nodes in the table (not counting replacement caches)."""
        return len(self._nodes)

    def __iter__(self) -> Iterator[Node]:
        return iter(list(self._nodes.values()))

    @property
    def buckets(self) -> list[Bucket]:
        return list(self._buckets)

    def get(self, node_id: bytes) -> Node | None:
        return self._nodes.get(node_id)

    def _bucket(self, value: int) -> Bucket:
        return self._buckets[bisect.bisect_right(self._los, value) - 1]

    def add(self, info: NodeInfo, now: float, *, replied: bool = False) -> bool:
        """Record that we heard from ``info`` (a reply when ``replied``).

        Returns True when the node is in the table afterwards; a refused node
        (our own id, same IP as another, bad BEP 42 id, full bucket) may wait
        in a replacement cache.
        """
        existing = self._nodes.get(info.id)
        if existing is not None:
            if existing.info.address == info.address:
                _heard(existing, now, replied)
                if replied:
                    self._bucket(id_to_int(info.id)).last_changed = now
            # A known id from a new address is ignored: it may be spoofed.
            return True
        if not self._acceptable(info):
            return False
        node = _heard(Node(info), now, replied)
        value = id_to_int(info.id)
        while True:
            bucket = self._bucket(value)
            if len(bucket.nodes) < self.k:
                self._insert(bucket, node, now)
                return True
            if bucket.covers(self._own) and bucket.hi - bucket.lo > 1:
                self._split(bucket, now)
                continue
            worse = self._evictable(bucket, now, replied)
            if worse is not None:
                self._drop(bucket, worse)
                self._insert(bucket, node, now)
                return True
            self._remember(bucket, node)
            return False

    @staticmethod
    def _evictable(bucket: Bucket, now: float, replied: bool) -> Node | None:
        """A member a newcomer may take the place of: a bad node, or, for a node that
        replied, one that never did (it only sent us queries, maybe from a spoofed address)."""
        for member in bucket.nodes:
            if member.liveness(now) is Liveness.BAD:
                return member
        if replied:
            for member in bucket.nodes:
                if member.last_reply is None:
                    return member
        return None

    def _acceptable(self, info: NodeInfo) -> bool:
        if info.id == self.own_id or len(info.id) != ID_BYTES or not 0 < info.port <= 0xFFFF:
            return False
        if not self.allow_same_ip and info.host in self._ips:
            return False
        return not self.enforce_node_id or is_valid_id(info.id, info.host)

    def _insert(self, bucket: Bucket, node: Node, now: float) -> None:
        bucket.replacements = [n for n in bucket.replacements if n.id != node.id]
        bucket.nodes.append(node)
        bucket.last_changed = now
        self._nodes[node.id] = node
        self._ips[node.info.host] = node.id

    def _drop(self, bucket: Bucket, node: Node) -> None:
        bucket.nodes.remove(node)
        del self._nodes[node.id]
        if self._ips.get(node.info.host) == node.id:
            del self._ips[node.info.host]

    def _remember(self, bucket: Bucket, node: Node) -> None:
        cache = bucket.replacements
        for index, waiting in enumerate(cache):
            if waiting.id == node.id or (
                not self.allow_same_ip and waiting.info.host == node.info.host
            ):
                del cache[index]
                break
        cache.append(node)
        if len(cache) > self._replacements:
            del cache[0]

    def _promote(self, bucket: Bucket, now: float) -> None:
        """Fill ``bucket`` from its cache, most recently heard first."""
        cache = bucket.replacements
        while cache and len(bucket.nodes) < self.k:
            node = cache.pop()
            if self._acceptable(node.info) and node.id not in self._nodes:
                self._insert(bucket, node, now)

    def _split(self, bucket: Bucket, now: float) -> None:
        middle = (bucket.lo + bucket.hi) // 2
        low, high = Bucket(bucket.lo, middle), Bucket(middle, bucket.hi)
        for half in (low, high):
            half.nodes = [node for node in bucket.nodes if half.covers(id_to_int(node.id))]
            half.replacements = [
                node for node in bucket.replacements if half.covers(id_to_int(node.id))
            ]
            half.last_changed = bucket.last_changed
        index = bisect.bisect_right(self._los, bucket.lo) - 1
        self._buckets[index : index + 1] = [low, high]
        self._los[index : index + 1] = [low.lo, high.lo]
        for half in (low, high):
            self._promote(half, now)

    def failed(self, node_id: bytes, now: float) -> None:
        """A query to ``node_id`` timed out: count it; a bad node gives way to a replacement."""
        node = self._nodes.get(node_id)
        bucket = self._bucket(id_to_int(node_id))
        if node is None:
            bucket.replacements = [n for n in bucket.replacements if n.id != node_id]
            return
        node.failures += 1
        if node.liveness(now) is Liveness.BAD and bucket.replacements:
            self._drop(bucket, node)
            self._promote(bucket, now)

    def remove(self, node_id: bytes) -> None:
        bucket = self._bucket(id_to_int(node_id))
        node = self._nodes.get(node_id)
        if node is not None:
            self._drop(bucket, node)
            self._promote(bucket, bucket.last_changed)

    def closest(
        self, target: bytes, n: int = K, *, include_bad: bool = False, verified_only: bool = False
    ) -> list[NodeInfo]:
        """The ``n`` nodes closest to ``target`` by XOR distance, closest first.

        ``verified_only`` leaves out nodes that never replied to us: what we tell
        other nodes should be addresses we know answer, not ones a forged query named.
        """
        goal = id_to_int(target)
        nodes: Iterable[Node] = self._nodes.values()
        if not include_bad:
            nodes = [node for node in nodes if node.failures < MAX_FAILURES]
        if verified_only:
            nodes = [node for node in nodes if node.last_reply is not None]
        best = heapq.nsmallest(n, nodes, key=lambda node: id_to_int(node.id) ^ goal)
        return [node.info for node in best]

    def good_nodes(self, now: float) -> list[NodeInfo]:
        return [node.info for node in self._nodes.values() if node.liveness(now) is Liveness.GOOD]

    def questionable(self, now: float) -> list[NodeInfo]:
        """Nodes to ping: neither good nor bad."""
        return [
            node.info
            for node in self._nodes.values()
            if node.liveness(now) is Liveness.QUESTIONABLE
        ]

    def touch(self, target: bytes, now: float) -> None:
        """A lookup for ``target`` ran: its bucket counts as refreshed."""
        self._bucket(id_to_int(target)).last_changed = now

    def refresh_targets(
        self, now: float, rng: random.Random, interval: float = REFRESH_INTERVAL
    ) -> list[bytes]:
        """A random id in each bucket unchanged for ``interval``: find_node them."""
        return [
            int_to_id(rng.randrange(bucket.lo, bucket.hi))
            for bucket in self._buckets
            if now - bucket.last_changed >= interval
        ]


def _heard(node: Node, now: float, replied: bool) -> Node:
    node.last_seen = max(node.last_seen, now)
    if replied:
        node.last_reply = now
        node.failures = 0
    return node
