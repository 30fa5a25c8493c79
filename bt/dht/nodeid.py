"""Node ids (BEP 5) and their BEP 42 restriction to the node's IP.

Ids are 20 bytes; distance is XOR read as a big-endian integer. BEP 42 ties the
top 21 bits of an id to a CRC32-C of the node's masked IP, so that an attacker
cannot choose ids near a target; local and private addresses are exempt.
"""

from __future__ import annotations

import ipaddress
import random

__all__ = [
    "ID_BITS",
    "ID_BYTES",
    "bep42_prefix",
    "common_prefix_bits",
    "crc32c",
    "distance",
    "generate_id",
    "id_to_int",
    "int_to_id",
    "is_exempt",
    "is_valid_id",
    "random_id",
]

ID_BITS = 160
ID_BYTES = 20


def id_to_int(node_id: bytes) -> int:
    """``node_id`` as a big-endian integer."""
    return int.from_bytes(node_id, "big")


def int_to_id(value: int) -> bytes:
    """The 20-byte id of integer ``value``."""
    return value.to_bytes(ID_BYTES, "big")


_V4_MASK = bytes((0x03, 0x0F, 0x3F, 0xFF))
_V6_MASK = bytes((0x01, 0x03, 0x07, 0x0F, 0x1F, 0x3F, 0x7F, 0xFF))


def _crc32c_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC32C = _crc32c_table()


def distance(a: bytes, b: bytes) -> int:
    """The XOR distance between two ids."""
    return id_to_int(a) ^ id_to_int(b)


def common_prefix_bits(a: bytes, b: bytes) -> int:
    """How many leading bits ``a`` and ``b`` share (160 when equal)."""
    return ID_BITS - distance(a, b).bit_length()


def random_id(rng: random.Random) -> bytes:
    """A uniformly random id."""
    return int_to_id(rng.getrandbits(ID_BITS))


def crc32c(data: bytes) -> int:
    """CRC32-C (Castagnoli), as BEP 42 uses."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC32C[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def is_exempt(host: str) -> bool:
    """True for addresses BEP 42 exempts: loopback, private, link-local, unspecified."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False  # not an address at all: nothing to exempt
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_unspecified
        or address.is_reserved
    )


def bep42_prefix(host: str, rand: int) -> int:
    """The CRC32-C of ``host``'s masked address with ``rand`` (0..7) in its top bits."""
    packed = ipaddress.ip_address(host).packed
    mask = _V4_MASK if len(packed) == 4 else _V6_MASK
    masked = bytearray(p & m for p, m in zip(packed, mask, strict=False))
    masked[0] |= (rand & 0x07) << 5
    return crc32c(bytes(masked))


def generate_id(host: str, rng: random.Random) -> bytes:
    """Our id for external address ``host``: BEP 42 compliant (random when exempt)."""
    node_id = bytearray(random_id(rng))
    if is_exempt(host):
        return bytes(node_id)
    rand = node_id[19]
    crc = bep42_prefix(host, rand)
    node_id[0] = crc >> 24 & 0xFF
    node_id[1] = crc >> 16 & 0xFF
    node_id[2] = (crc >> 8 & 0xF8) | (node_id[2] & 0x07)
    return bytes(node_id)


def is_valid_id(node_id: bytes, host: str) -> bool:
    """True when ``node_id`` satisfies BEP 42 for ``host`` (always for exempt hosts)."""
    if is_exempt(host):
        return True
    if len(node_id) != ID_BYTES:
        return False
    try:
        crc = bep42_prefix(host, node_id[19])
    except ValueError:
        return False
    return (id_to_int(node_id[:3]) ^ (crc >> 8)) & 0xFFFFF8 == 0
