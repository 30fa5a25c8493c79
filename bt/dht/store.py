"""Peers announced to us (BEP 5 announce_peer), bounded and expiring.

At most ``max_torrents`` info-hashes and ``max_peers`` peers each; the least
recently announced is evicted first, and a peer not re-announced within ``ttl``
expires. get_peers replies carry a random subset small enough for a datagram.
"""

from __future__ import annotations

import random
from collections import OrderedDict

__all__ = ["MAX_PEERS", "MAX_TORRENTS", "MAX_VALUES", "TTL", "PeerStore"]

Peer = tuple[str, int]

MAX_TORRENTS = 2000
MAX_PEERS = 200
TTL = 30 * 60.0
#: Peers in one reply: 50 IPv6 values (20 bytes each) plus 8 nodes6 fit 1500 bytes.
MAX_VALUES = 50


class PeerStore:
    """info-hash -> peers, with time passed in."""

    def __init__(
        self, *, max_torrents: int = MAX_TORRENTS, max_peers: int = MAX_PEERS, ttl: float = TTL
    ) -> None:
        self._max_torrents = max_torrents
        self._max_peers = max_peers
        self._ttl = ttl
        # Both levels in announce order, oldest first, so eviction and expiry pop the front.
        self._torrents: OrderedDict[bytes, OrderedDict[Peer, float]] = OrderedDict()

    def __len__(self) -> int:
        """Info-hashes stored."""
        return len(self._torrents)

    @property
    def peer_count(self) -> int:
        return sum(len(peers) for peers in self._torrents.values())

    def add(self, info_hash: bytes, peer: Peer, now: float) -> None:
        """``peer`` announced itself for ``info_hash``."""
        peers = self._torrents.get(info_hash)
        if peers is None:
            self.expire(now)
            while len(self._torrents) >= self._max_torrents:
                self._torrents.popitem(last=False)
            peers = self._torrents[info_hash] = OrderedDict()
        self._torrents.move_to_end(info_hash)
        peers.pop(peer, None)
        peers[peer] = now
        while len(peers) > self._max_peers:
            peers.popitem(last=False)

    def get(
        self,
        info_hash: bytes,
        now: float,
        rng: random.Random,
        *,
        limit: int = MAX_VALUES,
        ipv6: bool = False,
    ) -> list[Peer]:
        """Up to ``limit`` live peers of one address family for ``info_hash``, a random subset."""
        peers = self._torrents.get(info_hash)
        if not peers:
            return []
        self._expire_peers(info_hash, peers, now)
        family = [peer for peer in peers if (":" in peer[0]) == ipv6]
        return rng.sample(family, min(limit, len(family)))

    def expire(self, now: float) -> None:
        """Drop peers older than ttl and torrents left with none."""
        for info_hash, peers in list(self._torrents.items()):
            self._expire_peers(info_hash, peers, now)

    def _expire_peers(self, info_hash: bytes, peers: OrderedDict[Peer, float], now: float) -> None:
        while peers and now - next(iter(peers.values())) >= self._ttl:
            peers.popitem(last=False)
        if not peers:
            del self._torrents[info_hash]
