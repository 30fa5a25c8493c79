"""An iterative lookup (BEP 5) as a sans-I/O state machine.

The caller sends the queries this returns and feeds back each reply or timeout;
the lookup keeps ``alpha`` queries in flight to the closest nodes not yet asked,
and ends when the ``k`` closest nodes it knows of have all answered, or when it
has queried ``max_queries`` nodes, or when ``deadline`` (absolute time) passed.
The same machine drives find_node and get_peers: tokens and values are kept.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from bt.dht.krpc import NodeInfo

__all__ = ["ALPHA", "Lookup", "LookupResult"]

Peer = tuple[str, int]

ALPHA = 3
K = 8
MAX_QUERIES = 200
DURATION = 60.0
#: Peers kept from get_peers replies; more add nothing to a candidate pool.
MAX_PEERS = 1000


@dataclass(frozen=True, slots=True)
class LookupResult:
    """The k closest responders (with their tokens), the peers found, and counts.

    ``hops`` is how many replies deep the farthest-learned of the k closest was
    (a seed is 1, a node a seed told us of is 2, ...).
    """

    target: bytes
    closest: tuple[tuple[NodeInfo, bytes | None], ...]
    peers: tuple[Peer, ...]
    queried: int
    responded: int
    hops: int


class _State(Enum):
    NEW = 0
    ASKED = 1
    ANSWERED = 2
    FAILED = 3


@dataclass(slots=True)
class _Candidate:
    info: NodeInfo
    depth: int
    state: _State = _State.NEW
    token: bytes | None = None


class Lookup:
    """One lookup for ``target`` starting from ``seeds`` (e.g. the table's closest).

    ``node`` in :meth:`on_response` and :meth:`on_timeout` is a :class:`NodeInfo`
    this lookup asked for; replies from nodes it did not ask are ignored. Nodes
    with ``own_id`` (ours) are never queried.
    """

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
        own_id: bytes | None = None,
    ) -> None:
        self.target = target
        self._goal = int.from_bytes(target, "big")
        self._k = k
        self._alpha = alpha
        self._max_queries = max_queries
        self._deadline = now + duration
        self._own_id = own_id
        self._candidates: dict[bytes, _Candidate] = {}
        self._order: list[tuple[int, bytes]] = []
        self._addresses: set[Peer] = set()
        self._peers: dict[Peer, None] = {}
        self._queried = 0
        self._responded = 0
        self._in_flight = 0
        self._done = False
        for seed in seeds:
            self._learn(seed, 1)

    @property
    def done(self) -> bool:
        return self._done

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def start(self) -> list[NodeInfo]:
        """The first queries to send (up to alpha)."""
        return self._advance()

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
        candidate = self._candidates.get(node.id)
        if candidate is None or candidate.info != node or candidate.state is _State.ANSWERED:
            return []
        if candidate.state is _State.ASKED:
            self._in_flight -= 1
        candidate.state = _State.ANSWERED
        candidate.token = token
        self._responded += 1
        for peer in values:
            if len(self._peers) < MAX_PEERS:
                self._peers[peer] = None
        if not self._done:
            for learned in nodes:
                self._learn(learned, candidate.depth + 1)
        return [] if self.check(now) else self._advance()

    def on_timeout(self, node: NodeInfo, now: float) -> list[NodeInfo]:
        """``node`` did not reply in time: next queries."""
        candidate = self._candidates.get(node.id)
        if candidate is not None and candidate.info == node and candidate.state is _State.ASKED:
            self._in_flight -= 1
            candidate.state = _State.FAILED
        return [] if self.check(now) else self._advance()

    def check(self, now: float) -> bool:
        """Apply the time bound; True when the lookup is done."""
        if now >= self._deadline:
            self._done = True
        return self._done

    def result(self) -> LookupResult:
        closest = self._closest_answered()
        return LookupResult(
            target=self.target,
            closest=tuple((c.info, c.token) for c in closest),
            peers=tuple(self._peers),
            queried=self._queried,
            responded=self._responded,
            hops=max((c.depth for c in closest), default=0),
        )

    def _learn(self, info: NodeInfo, depth: int) -> None:
        if (
            info.id in self._candidates
            or info.address in self._addresses
            or info.id == self._own_id
            or len(info.id) != len(self.target)
            or not 0 < info.port <= 0xFFFF
        ):
            return
        self._candidates[info.id] = _Candidate(info, depth)
        self._addresses.add(info.address)
        bisect.insort(self._order, (int.from_bytes(info.id, "big") ^ self._goal, info.id))

    def _closest_answered(self) -> list[_Candidate]:
        found = []
        for _, node_id in self._order:
            candidate = self._candidates[node_id]
            if candidate.state is _State.ANSWERED:
                found.append(candidate)
                if len(found) == self._k:
                    break
        return found

    def _advance(self) -> list[NodeInfo]:
        """Queries to send now, to the closest nodes not yet asked among the k closest.

        The lookup is done when the k closest nodes not known to have failed
        have all answered, or when nothing is left to ask and nothing in flight.
        """
        if self._done:
            return []
        send: list[NodeInfo] = []
        live = 0
        settled = True  # every live node walked so far has answered
        for _, node_id in self._order:
            candidate = self._candidates[node_id]
            if candidate.state is _State.FAILED:
                continue
            live += 1
            if live > self._k:
                break
            if candidate.state is not _State.ANSWERED:
                settled = False
            if candidate.state is not _State.NEW:
                continue
            if self._in_flight + len(send) >= self._alpha or self._queried >= self._max_queries:
                break
            candidate.state = _State.ASKED
            self._queried += 1
            send.append(candidate.info)
        self._in_flight += len(send)
        if (settled and live > 0) or self._in_flight == 0:
            self._done = True
        return send
