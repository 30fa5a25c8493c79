"""An iterative lookup (BEP 5) as a sans-I/O state machine.

The caller sends the queries this returns and feeds back each reply or timeout;
the lookup keeps ``alpha`` queries in flight to the closest nodes not yet asked,
and ends when the ``k`` closest nodes it knows of have all answered, or when it
has queried ``max_queries`` nodes, or when ``deadline`` (absolute time) passed.
The same machine drives find_node and get_peers: tokens and values are kept.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from bt.dht.krpc import NodeInfo

__all__ = ["ALPHA", "Lookup", "LookupResult"]

Peer = tuple[str, int]

ALPHA = 3
K = 8
MAX_QUERIES = 200
DURATION = 60.0


@dataclass(frozen=True, slots=True)
class LookupResult:
    """The k closest responders (with their tokens), the peers found, and counts."""

    target: bytes
    closest: tuple[tuple[NodeInfo, bytes | None], ...]
    peers: tuple[Peer, ...]
    queried: int
    responded: int
    hops: int


class Lookup:
    """One lookup for ``target`` starting from ``seeds`` (e.g. the table's closest)."""

    def __init__(
        self,
        target: bytes,
        seeds: Iterable[NodeInfo],
        now: float,
        *,
        k: int = K,
        alpha: int = ALPHA,
        max_queries: int = MAX_QUERIES,
        duration: float = DURATION,
    ) -> None:
        raise NotImplementedError

    @property
    def done(self) -> bool:
        raise NotImplementedError

    @property
    def in_flight(self) -> int:
        raise NotImplementedError

    def start(self) -> list[NodeInfo]:
        """The first queries to send (up to alpha)."""
        raise NotImplementedError

    def on_response(
        self,
        node: NodeInfo,
        nodes: Iterable[NodeInfo],
        now: float,
        *,
        values: Iterable[Peer] = (),
        token: bytes | None = None,
    ) -> list[NodeInfo]:
        """``node`` replied with closer ``nodes`` (and maybe peers and a token): next queries."""
        raise NotImplementedError

    def on_timeout(self, node: NodeInfo, now: float) -> list[NodeInfo]:
        """``node`` did not reply in time: next queries."""
        raise NotImplementedError

    def check(self, now: float) -> bool:
        """Apply the time bound; True when the lookup is done."""
        raise NotImplementedError

    def result(self) -> LookupResult:
        raise NotImplementedError
