"""BEP 6 allowed-fast sets: pieces a choked peer may still request from us.

The set depends only on the peer's IP address, the info-hash and the number
of pieces, so both sides can compute it and it cannot be gamed by
reconnecting from the same address. Pure: the algorithm of BEP 6, verbatim.
"""

from __future__ import annotations

import hashlib
import ipaddress

__all__ = ["ALLOWED_FAST_COUNT", "allowed_fast_set"]

#: libtorrent and BEP 6's example use ten pieces.
ALLOWED_FAST_COUNT = 10


def allowed_fast_set(
    ip: str, info_hash: bytes, num_pieces: int, count: int = ALLOWED_FAST_COUNT
) -> list[int]:
    """The first ``count`` allowed-fast piece indexes for a peer at ``ip``, in BEP 6 order.

    BEP 6 defines the set for IPv4 (the /24 network is hashed); an IPv6 peer
    gets the set of its /48 computed the same way over 16 bytes, as libtorrent does.
    """
    count = min(count, num_pieces)
    if count <= 0:
        return []
    address = ipaddress.ip_address(ip)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if isinstance(address, ipaddress.IPv4Address):
        masked = (int(address) & 0xFFFFFF00).to_bytes(4, "big")
    else:
        masked = (int(address) & ~((1 << 80) - 1)).to_bytes(16, "big")
    pieces: list[int] = []
    digest = masked + info_hash
    while len(pieces) < count:
        digest = hashlib.sha1(digest).digest()
        for offset in range(0, 20, 4):
            if len(pieces) == count:
                break
            index = int.from_bytes(digest[offset : offset + 4], "big") % num_pieces
            if index not in pieces:
                pieces.append(index)
    return pieces
