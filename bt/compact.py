"""Compact peer addresses (BEP 23, BEP 7): 6 or 18 bytes per peer, as trackers and PEX send them.

One codec for every place that carries them (tracker replies, ut_pex, the
DHT later). Pure; a length that is not a whole number of entries is a
``ValueError`` that the caller turns into its own error type.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterable

__all__ = ["IPV4", "IPV6", "pack_peers", "unpack_peers"]

Peer = tuple[str, int]

IPV4 = struct.Struct("!4sH")
IPV6 = struct.Struct("!16sH")
_ADDRESS = {IPV4.size: ipaddress.IPv4Address, IPV6.size: ipaddress.IPv6Address}


def unpack_peers(data: bytes, entry: struct.Struct = IPV4) -> tuple[Peer, ...]:
    """The peers in ``data``, ``entry.size`` bytes each (address, big-endian port)."""
    if len(data) % entry.size:
        raise ValueError(f"{len(data)} bytes, not a multiple of {entry.size}")
    address = _ADDRESS[entry.size]
    return tuple((str(address(packed)), port) for packed, port in entry.iter_unpack(data))


def pack_peers(peers: Iterable[Peer], entry: struct.Struct = IPV4) -> bytes:
    """``peers`` (all of ``entry``'s family) as one compact string."""
    address = _ADDRESS[entry.size]
    return b"".join(entry.pack(address(host).packed, port) for host, port in peers)
