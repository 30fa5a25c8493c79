"""BEP 52 hash messages: hash request (21), hashes (22) and hash reject (23).

Each names one file's merkle tree by its 32-byte pieces root and a run of
``length`` nodes of one layer (``base_layer`` levels above the 16 KiB leaves,
starting at ``index``), plus ``proof_layers``: how far above the base layer
the answer's uncle hashes reach. A HASHES message carries the ``length`` base
nodes, then one uncle per layer from the top of the subtree the base nodes
span up to ``proof_layers`` (``bt.merkle.uncle_count``, libtorrent's rule).

Parsing is strict about sizes only: requests and rejects are exactly 48
bytes, and a HASHES message must hold exactly the hashes its header implies,
for a power of two of at most :data:`MAX_HASH_COUNT` base nodes (libtorrent's
limit, a 128 MiB piece; what we ask is always a power of two), so no peer can
make us buffer more. Whether a request names a tree we
have and a range inside it is the server's business (it answers with a
reject, as libtorrent does). Pure: no Twisted.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from bt.errors import RemoteProtocolError
from bt.merkle import HASH_SIZE, uncle_count

__all__ = [
    "HASHES",
    "HASH_HEADER_SIZE",
    "HASH_REJECT",
    "HASH_REQUEST",
    "MAX_HASHES_PAYLOAD",
    "MAX_HASH_COUNT",
    "MAX_TREE_LAYERS",
    "HashMessage",
    "HashReject",
    "HashRequest",
    "Hashes",
    "encode_hash_message",
    "parse_hash_message",
]

HASH_REQUEST: Final = 21
HASHES: Final = 22
HASH_REJECT: Final = 23

#: Base-layer nodes one message may name (libtorrent's validate_hash_request).
MAX_HASH_COUNT: Final = 8192
#: Layers a tree may have above its leaves: 2**63 bytes of 16 KiB blocks is 49.
MAX_TREE_LAYERS: Final = 64
#: pieces root, base layer, index, length, proof layers.
HASH_HEADER_SIZE: Final = 32 + 4 * 4
#: The largest HASHES payload a peer may send: every node and every uncle.
MAX_HASHES_PAYLOAD: Final = HASH_HEADER_SIZE + HASH_SIZE * (MAX_HASH_COUNT + MAX_TREE_LAYERS)

_HEADER: Final = struct.Struct(">32sIIII")
_FRAME: Final = struct.Struct(">IB")


@dataclass(frozen=True, slots=True)
class _Header:
    """What all three messages start with: a file's tree and a run of one layer's nodes."""

    pieces_root: bytes
    base_layer: int
    index: int
    length: int
    proof_layers: int

    @property
    def header(self) -> tuple[bytes, int, int, int, int]:
        return self.pieces_root, self.base_layer, self.index, self.length, self.proof_layers

    @property
    def request(self) -> HashRequest:
        """The request this message is or answers (what a requester matches)."""
        return HashRequest(*self.header)


@dataclass(frozen=True, slots=True)
class HashRequest(_Header):
    """Ask for ``length`` nodes of ``base_layer`` from ``index``, with proofs."""

    def answer(self, hashes: Sequence[bytes]) -> Hashes:
        """The HASHES message answering this request with ``hashes`` (nodes, then uncles)."""
        return Hashes(*self.header, tuple(hashes))

    def reject(self) -> HashReject:
        return HashReject(*self.header)


@dataclass(frozen=True, slots=True)
class Hashes(_Header):
    """The answer: the header of the request and its hashes (nodes, then uncles)."""

    hashes: tuple[bytes, ...]

    @property
    def nodes(self) -> tuple[bytes, ...]:
        return self.hashes[: self.length]

    @property
    def uncles(self) -> tuple[bytes, ...]:
        return self.hashes[self.length :]


@dataclass(frozen=True, slots=True)
class HashReject(_Header):
    """The peer will not send these hashes (same fields as the request)."""


HashMessage = HashRequest | Hashes | HashReject


def _header(msg: HashMessage) -> bytes:
    if len(msg.pieces_root) != HASH_SIZE:
        raise ValueError(f"pieces root must be {HASH_SIZE} bytes, got {len(msg.pieces_root)}")
    return _HEADER.pack(msg.pieces_root, msg.base_layer, msg.index, msg.length, msg.proof_layers)


def encode_hash_message(msg: HashMessage) -> bytes:
    """Length-prefixed wire form of one hash message."""
    if isinstance(msg, Hashes):
        if msg.length < 1 or len(msg.hashes) != msg.length + uncle_count(
            msg.length, msg.proof_layers
        ):
            raise ValueError(
                f"hashes message with {len(msg.hashes)} hashes, its header implies"
                f" {msg.length + uncle_count(msg.length, msg.proof_layers)}"
            )
        body = _header(msg) + b"".join(msg.hashes)
        return _FRAME.pack(1 + len(body), HASHES) + body
    ident = HASH_REQUEST if isinstance(msg, HashRequest) else HASH_REJECT
    return _FRAME.pack(1 + HASH_HEADER_SIZE, ident) + _header(msg)


def parse_hash_message(message_id: int, payload: bytes | bytearray | memoryview) -> HashMessage:
    """Parse the payload of message 21, 22 or 23; a wrong size is the peer's protocol error."""
    size = len(payload)
    if message_id == HASHES:
        if size < HASH_HEADER_SIZE or (size - HASH_HEADER_SIZE) % HASH_SIZE:
            raise RemoteProtocolError(
                f"hashes message with a {size}-byte payload, not a 48-byte header"
                f" and whole {HASH_SIZE}-byte hashes"
            )
        root, base, index, length, proof = _HEADER.unpack_from(payload, 0)
        if not 0 < length <= MAX_HASH_COUNT or length & (length - 1) or proof >= MAX_TREE_LAYERS:
            raise RemoteProtocolError(
                f"hashes message for {length} nodes and {proof} proof layers: not a power"
                f" of two in 1..{MAX_HASH_COUNT}, or over {MAX_TREE_LAYERS - 1} layers"
            )
        expected = length + uncle_count(length, proof)
        received = (size - HASH_HEADER_SIZE) // HASH_SIZE
        if received != expected:
            raise RemoteProtocolError(
                f"hashes message with {received} hashes, its header implies {expected}"
            )
        data = bytes(payload[HASH_HEADER_SIZE:])
        hashes = tuple(data[i : i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE))
        return Hashes(root, base, index, length, proof, hashes)
    if message_id not in (HASH_REQUEST, HASH_REJECT):
        raise ValueError(f"message {message_id} is not a hash message")
    name = "hash-request" if message_id == HASH_REQUEST else "hash-reject"
    if size != HASH_HEADER_SIZE:
        raise RemoteProtocolError(
            f"{name} message with a {size}-byte payload, expected {HASH_HEADER_SIZE} bytes"
        )
    fields = _HEADER.unpack_from(payload, 0)
    return HashRequest(*fields) if message_id == HASH_REQUEST else HashReject(*fields)
