"""The routing table (BEP 5): k-buckets split around our own id.

Time is passed in (seconds, any monotonic origin). A node is *good* when it
replied within :data:`GOOD_FOR`, *bad* after :data:`MAX_FAILURES` unanswered
queries in a row, otherwise *questionable*. A full bucket keeps newcomers in a
replacement cache and swaps one in when a member turns bad. By default one node
per IP address (``allow_same_ip`` relaxes it, for loopback networks), and BEP 42
ids are required only when ``enforce_node_id`` is set.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum

from bt.dht.krpc import NodeInfo

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
        raise NotImplementedError


@dataclass(slots=True)
class Bucket:
    """Ids in ``[lo, hi)`` with up to k nodes and a replacement cache."""

    lo: int
    hi: int
    nodes: list[Node]
    replacements: list[Node]
    last_changed: float = 0.0


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
        raise NotImplementedError

    def __len__(self) -> int:
        """Nodes in the table (not counting replacement caches)."""
        raise NotImplementedError

    def __iter__(self) -> Iterator[Node]:
        raise NotImplementedError

    @property
    def buckets(self) -> list[Bucket]:
        raise NotImplementedError

    def get(self, node_id: bytes) -> Node | None:
        raise NotImplementedError

    def add(self, info: NodeInfo, now: float, *, replied: bool = False) -> bool:
        """Record that we heard from ``info`` (a reply when ``replied``).

        Returns True when the node is in the table afterwards; a refused node
        (our own id, same IP as another, bad BEP 42 id, full bucket) may wait
        in a replacement cache.
        """
        raise NotImplementedError

    def failed(self, node_id: bytes, now: float) -> None:
        """A query to ``node_id`` timed out: count it; a bad node gives way to a replacement."""
        raise NotImplementedError

    def remove(self, node_id: bytes) -> None:
        raise NotImplementedError

    def closest(self, target: bytes, n: int = K, *, include_bad: bool = False) -> list[NodeInfo]:
        """The ``n`` nodes closest to ``target`` by XOR distance, closest first."""
        raise NotImplementedError

    def good_nodes(self, now: float) -> list[NodeInfo]:
        raise NotImplementedError

    def questionable(self, now: float) -> list[NodeInfo]:
        """Nodes to ping: neither good nor bad."""
        raise NotImplementedError

    def touch(self, target: bytes, now: float) -> None:
        """A lookup for ``target`` ran: its bucket counts as refreshed."""
        raise NotImplementedError

    def refresh_targets(
        self, now: float, rng: random.Random, interval: float = REFRESH_INTERVAL
    ) -> list[bytes]:
        """A random id in each bucket unchanged for ``interval``: find_node them."""
        raise NotImplementedError
