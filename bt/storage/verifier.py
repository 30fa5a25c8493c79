"""What a piece's data must hash to: SHA-1 (v1), a merkle root (v2), or both (layer 0, pure).

The disk queue runs a torrent's verifier in its threads, never on the reactor.
A v1 piece is one SHA-1 over the whole piece. A v2 piece (BEP 52) is the root of
the SHA-256 hashes of its 16 KiB leaves, over ``leaves`` leaves (missing ones are
zero hashes), taken over the real file bytes only (``data_length``); the rest of
the piece is padding and must be zeros. A hybrid piece must pass both: data that
satisfies one view and not the other means the torrent's two views disagree
(no peer can forge data for the hash it passes), an
:class:`~bt.errors.InconsistentHashesError` that stops the torrent.

A v2 failure carries the leaf hashes of the blocks received
(:class:`bt.errors.PieceHashError`), so the swarm can tell the bad blocks from
the good ones once it knows the real leaves.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from hashlib import sha1
from typing import TYPE_CHECKING, Protocol

from bt.errors import InconsistentHashesError, PieceHashError
from bt.merkle import HASH_SIZE, LEAF_SIZE, leaf_hashes, subtree_root

if TYPE_CHECKING:
    from bt.metainfo import Metainfo

__all__ = [
    "BAD_PADDING",
    "HybridVerifier",
    "PieceHash",
    "PieceVerifier",
    "V1Verifier",
    "V2PieceInfo",
    "V2Verifier",
    "piece_verifier",
    "received_leaves",
]

#: The leaf entry of a received block whose padding bytes are not zero: matches no hash.
BAD_PADDING = b""
_ZERO_LEAF = bytes(HASH_SIZE)
_ZERO_BLOCK = bytes(LEAF_SIZE)

Data = bytes | bytearray | memoryview


class V2PieceInfo(Protocol):
    """What a v2 check needs of ``Metainfo.v2_piece(index)`` (``bt.metainfo.V2Piece`` fits)."""

    @property
    def expected(self) -> bytes: ...

    @property
    def data_length(self) -> int: ...

    @property
    def leaves(self) -> int: ...


class PieceHash(Protocol):
    """One piece hashed in pieces (a recheck reads big pieces a chunk at a time)."""

    def update(self, data: Data, /) -> None: ...

    def matches(self) -> bool: ...


class PieceVerifier(Protocol):
    """A torrent's rule for its pieces; every method is thread-safe (no shared state)."""

    @property
    def num_pieces(self) -> int: ...

    def verify(self, index: int, data: Data) -> None:
        """Return if ``data`` (the whole piece) is right; raise PieceHashError if not."""

    def hasher(self, index: int) -> PieceHash:
        """An incremental check of piece ``index``: chunks of 16 KiB multiples, in order."""


class _Sha1:
    __slots__ = ("_digest", "_expected")

    def __init__(self, expected: bytes) -> None:
        self._digest = sha1()
        self._expected = expected

    def update(self, data: Data, /) -> None:
        self._digest.update(data)

    def matches(self) -> bool:
        return self._digest.digest() == self._expected


class V1Verifier:
    """SHA-1 of each whole piece, as BEP 3 says."""

    def __init__(self, piece_hashes: Sequence[bytes]) -> None:
        self._hashes = piece_hashes
        self.num_pieces = len(piece_hashes)

    def verify(self, index: int, data: Data) -> None:
        # One call over one buffer: see bt.storage.disk for why not one per block.
        if sha1(data).digest() != self._hashes[index]:
            raise PieceHashError(index)

    def hasher(self, index: int) -> PieceHash:
        return _Sha1(self._hashes[index])

    def expected(self, index: int) -> bytes:
        return self._hashes[index]


def _zeros(view: memoryview) -> bool:
    """Whether every byte of ``view`` is zero (padding), without a copy.

    ``startswith`` is one memcmp per 16 KiB: ``view == bytes(n)`` compares
    element by element and costs more than hashing the same bytes (1 ms a MiB),
    on every piece that ends a file.
    """
    return all(
        _ZERO_BLOCK.startswith(view[start : start + LEAF_SIZE])
        for start in range(0, view.nbytes, LEAF_SIZE)
    )


def received_leaves(
    data: Data, data_length: int, leaves: Sequence[bytes] | None = None
) -> tuple[bytes, ...]:
    """One entry per 16 KiB block of ``data`` (see ``PieceHashError.leaf_hashes``).

    ``leaves``: the leaf hashes of ``data[:data_length]`` when already computed.
    """
    view = memoryview(data).cast("B")
    real = list(leaf_hashes(view[:data_length]) if leaves is None else leaves)
    blocks = -(-view.nbytes // LEAF_SIZE)
    if real and data_length % LEAF_SIZE:
        tail = view[data_length : len(real) * LEAF_SIZE]
        if not _zeros(tail):
            real[-1] = BAD_PADDING
    for block in range(len(real), blocks):
        padding = view[block * LEAF_SIZE : (block + 1) * LEAF_SIZE]
        real.append(_ZERO_LEAF if _zeros(padding) else BAD_PADDING)
    return tuple(real)


class _MerkleHash:
    __slots__ = ("_leaves", "_padding_ok", "_piece", "_position")

    def __init__(self, piece: V2PieceInfo) -> None:
        self._piece = piece
        self._leaves: list[bytes] = []
        self._position = 0
        self._padding_ok = True

    def update(self, data: Data, /) -> None:
        view = memoryview(data).cast("B")
        start = self._position
        real = min(view.nbytes, max(0, self._piece.data_length - start))
        if real and start % LEAF_SIZE:
            raise ValueError(f"a chunk starts at {start}, not on a {LEAF_SIZE}-byte leaf")
        self._leaves += leaf_hashes(view[:real])
        if real < view.nbytes and not _zeros(view[real:]):
            self._padding_ok = False
        self._position = start + view.nbytes

    def matches(self) -> bool:
        piece = self._piece
        if not self._padding_ok or self._position < piece.data_length:
            return False
        return subtree_root(self._leaves, piece.leaves) == piece.expected


class V2Verifier:
    """The BEP 52 merkle root of each piece's leaves; ``piece(index)`` says what to expect."""

    def __init__(self, num_pieces: int, piece: Callable[[int], V2PieceInfo]) -> None:
        self.num_pieces = num_pieces
        self._piece = piece

    def verify(self, index: int, data: Data) -> None:
        piece = self._piece(index)
        view = memoryview(data).cast("B")
        length = piece.data_length
        if view.nbytes < length:
            raise ValueError(f"piece {index}: {view.nbytes} bytes, its file data is {length}")
        leaves = leaf_hashes(view[:length])
        if subtree_root(leaves, piece.leaves) != piece.expected or not _zeros(view[length:]):
            raise PieceHashError(index, received_leaves(view, length, leaves))

    def hasher(self, index: int) -> PieceHash:
        return _MerkleHash(self._piece(index))

    def data_length(self, index: int) -> int:
        return self._piece(index).data_length


class _Both:
    __slots__ = ("_hashes",)

    def __init__(self, *hashes: PieceHash) -> None:
        self._hashes = hashes

    def update(self, data: Data, /) -> None:
        for digest in self._hashes:
            digest.update(data)

    def matches(self) -> bool:
        return all(digest.matches() for digest in self._hashes)


class HybridVerifier:
    """Both views of a hybrid torrent: a piece is good only if SHA-1 and merkle agree."""

    def __init__(self, v1: V1Verifier, v2: V2Verifier) -> None:
        if v1.num_pieces != v2.num_pieces:
            raise ValueError(f"v1 has {v1.num_pieces} pieces, v2 {v2.num_pieces}")
        self.num_pieces = v1.num_pieces
        self._v1 = v1
        self._v2 = v2

    def verify(self, index: int, data: Data) -> None:
        try:
            self._v2.verify(index, data)
        except PieceHashError as failed:
            if sha1(data).digest() == self._v1.expected(index):
                raise InconsistentHashesError(index, "v1") from None
            raise failed from None  # it carries the leaf hashes
        if sha1(data).digest() != self._v1.expected(index):
            raise InconsistentHashesError(index, "v2")  # no peer can mend that

    def hasher(self, index: int) -> PieceHash:
        return _Both(self._v1.hasher(index), self._v2.hasher(index))


def piece_verifier(metainfo: Metainfo) -> PieceVerifier:
    """The verifier of ``metainfo``'s format: v1 SHA-1, v2 merkle, or hybrid both."""
    kind = metainfo.format
    if kind == "v1":
        return V1Verifier(metainfo.piece_hashes)

    def piece(index: int) -> V2PieceInfo:
        found = metainfo.v2_piece(index)
        if found is None:  # pragma: no cover - the format says the torrent has v2
            raise ValueError(f"piece {index} has no v2 hash")
        return found

    v2 = V2Verifier(metainfo.num_pieces, piece)
    return v2 if kind == "v2" else HybridVerifier(V1Verifier(metainfo.piece_hashes), v2)
