"""Peers announced to us (BEP 5 announce_peer), bounded and expiring.

At most ``max_torrents`` info-hashes and ``max_peers`` peers each; the least
recently announced is evicted first, and a peer not re-announced within ``ttl``
expires. get_peers replies carry a random subset small enough for a datagram.
"""

from __future__ import annotations

import random

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
        raise NotImplementedError

    def __len__(self) -> int:
        """Info-hashes stored."""
        raise NotImplementedError

    @property
    def peer_count(self) -> int:
        raise NotImplementedError

    def add(self, info_hash: bytes, peer: Peer, now: float) -> None:
        """``peer`` announced itself for ``info_hash``."""
        raise NotImplementedError

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
        raise NotImplementedError

    def expire(self, now: float) -> None:
        """Drop peers older than ttl and torrents left with none."""
        raise NotImplementedError
