"""Node ids (BEP 5) and their BEP 42 restriction to the node's IP.

Ids are 20 bytes; distance is XOR read as a big-endian integer. BEP 42 ties the
top 21 bits of an id to a CRC32-C of the node's masked IP, so that an attacker
cannot choose ids near a target; local and private addresses are exempt.
"""

from __future__ import annotations

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


def distance(a: bytes, b: bytes) -> int:
    """The XOR distance between two ids."""
    raise NotImplementedError


def common_prefix_bits(a: bytes, b: bytes) -> int:
    """How many leading bits ``a`` and ``b`` share (160 when equal)."""
    raise NotImplementedError


def random_id(rng: random.Random) -> bytes:
    """A uniformly random id."""
    raise NotImplementedError


def crc32c(data: bytes) -> int:
    """CRC32-C (Castagnoli), as BEP 42 uses."""
    raise NotImplementedError


def is_exempt(host: str) -> bool:
    """True for addresses BEP 42 exempts: loopback, private, link-local, unspecified."""
    raise NotImplementedError


def bep42_prefix(host: str, rand: int) -> int:
    """The CRC32-C of ``host``'s masked address with ``rand`` (0..7) in its top bits."""
    raise NotImplementedError


def generate_id(host: str, rng: random.Random) -> bytes:
    """Our id for external address ``host``: BEP 42 compliant (random when exempt)."""
    raise NotImplementedError


def is_valid_id(node_id: bytes, host: str) -> bool:
    """True when ``node_id`` satisfies BEP 42 for ``host`` (always for exempt hosts)."""
    raise NotImplementedError
