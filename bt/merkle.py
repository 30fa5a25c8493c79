"""BitTorrent v2 merkle trees (BEP 52): SHA-256 over 16 KiB leaves, per file (layer 0: pure).

Every file of a v2 torrent has its own binary tree. The leaves are the SHA-256 of
each 16 KiB block of the file (the last block may be short); the leaf layer is
padded with zero hashes to a power of two, so a node whose subtree holds only
padding is :func:`pad_hash` of its height. Layers are numbered from the leaves
(layer 0) up, as the hash request message numbers them. The *piece layer* is the
layer whose nodes each cover one piece (``log2(piece_length / 16 KiB)``); the
.torrent carries it for every file longer than one piece, and the *pieces root*
(the file's root) for every non-empty file.

Nothing here does I/O: callers hash in their own threads (the disk pool).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from hashlib import sha256
from typing import Final

from bt.geometry import piece_count

__all__ = [
    "HASH_SIZE",
    "LEAF_SIZE",
    "MerkleTree",
    "file_root",
    "file_tree_hashes",
    "is_piece_length",
    "layer_of_piece_length",
    "leaf_count",
    "leaf_hashes",
    "next_power_of_two",
    "pad_hash",
    "piece_layer_from_leaves",
    "piece_layer_matches",
    "piece_leaves",
    "piece_root",
    "proof_top",
    "split_hashes",
    "subtree_root",
    "uncle_count",
    "verify_proof",
]

#: Bytes per leaf: a v2 block.
LEAF_SIZE: Final = 16384
#: Bytes per node: a SHA-256 digest.
HASH_SIZE: Final = 32


def next_power_of_two(n: int) -> int:
    """The smallest power of two >= ``n`` (1 for n <= 1): the padded width of a layer."""
    return 1 if n <= 1 else 1 << (n - 1).bit_length()


def _log2(width: int) -> int:
    if width < 1 or width & (width - 1):
        raise ValueError(f"width {width} is not a power of two")
    return width.bit_length() - 1


def leaf_count(length: int) -> int:
    """How many 16 KiB leaves (blocks) a file of ``length`` bytes has; the last may be short."""
    if length < 0:
        raise ValueError(f"length {length} is negative")
    return -(-length // LEAF_SIZE)


def is_piece_length(piece_length: int) -> bool:
    """BEP 52's rule for a piece length: a power of two of at least 16 KiB."""
    return piece_length >= LEAF_SIZE and not piece_length & (piece_length - 1)


def layer_of_piece_length(piece_length: int) -> int:
    """The layer whose nodes each cover one piece: log2(piece_length / 16 KiB)."""
    if not is_piece_length(piece_length):
        raise ValueError(f"piece length {piece_length} is not a power of two >= {LEAF_SIZE}")
    return (piece_length // LEAF_SIZE).bit_length() - 1


@cache
def pad_hash(height: int) -> bytes:
    """Root of a subtree of padding ``height`` layers above the leaves (height 0: zeros)."""
    if height < 0:
        raise ValueError(f"height {height} is negative")
    if height == 0:
        return bytes(HASH_SIZE)
    below = pad_hash(height - 1)
    return sha256(below + below).digest()


def leaf_hashes(data: bytes | bytearray | memoryview) -> list[bytes]:
    """SHA-256 of each 16 KiB slice of ``data`` (the last may be short; empty data: [])."""
    view = memoryview(data)
    return [sha256(view[i : i + LEAF_SIZE]).digest() for i in range(0, len(view), LEAF_SIZE)]


def _parents(level: list[bytes], height: int) -> list[bytes]:
    """The layer above ``level`` (nodes at ``height``), a missing right sibling being padding."""
    if len(level) % 2:
        level = [*level, pad_hash(height)]
    return [sha256(level[i] + level[i + 1]).digest() for i in range(0, len(level), 2)]


def subtree_root(hashes: Sequence[bytes], width: int, height: int = 0) -> bytes:
    """Root over ``hashes`` (nodes at ``height``) padded with ``pad_hash(height)`` to ``width``."""
    levels = _log2(width)
    if len(hashes) > width:
        raise ValueError(f"{len(hashes)} hashes do not fit a width of {width}")
    if not hashes:
        return pad_hash(height + levels)
    level = list(hashes)
    for step in range(levels):
        level = _parents(level, height + step)
    return level[0]


def piece_leaves(file_length: int, piece_length: int) -> int:
    """Leaves under one piece's root in a file of ``file_length`` bytes: a whole piece's,
    or, for a file of one piece or less, its padded leaves (that root is the pieces root)."""
    per_piece = piece_length // LEAF_SIZE
    leaves = leaf_count(file_length)
    return per_piece if leaves > per_piece else next_power_of_two(leaves)


def piece_root(data: bytes | bytearray | memoryview, leaves: int) -> bytes:
    """The root of one piece's data over ``leaves`` leaves (missing leaves are zero hashes)."""
    return subtree_root(leaf_hashes(data), leaves)


def split_hashes(joined: bytes, where: str = "hashes") -> list[bytes]:
    """Cut concatenated 32-byte hashes apart; ValueError naming ``where`` if the size is wrong."""
    if len(joined) % HASH_SIZE:
        raise ValueError(f"{where}: {len(joined)} bytes is not a multiple of {HASH_SIZE}")
    return [bytes(joined[i : i + HASH_SIZE]) for i in range(0, len(joined), HASH_SIZE)]


def file_root(length: int, piece_layer: Sequence[bytes], piece_length: int) -> bytes:
    """The pieces root of a file longer than one piece, from its piece layer."""
    height = layer_of_piece_length(piece_length)
    if length <= piece_length:
        raise ValueError(f"a file of {length} bytes has no piece layer at {piece_length}")
    expected = piece_count(length, piece_length)
    if len(piece_layer) != expected:
        raise ValueError(f"{length} bytes need {expected} piece hashes, not {len(piece_layer)}")
    return subtree_root(piece_layer, next_power_of_two(len(piece_layer)), height)


def piece_layer_matches(
    root: bytes, length: int, piece_layer: Sequence[bytes], piece_length: int
) -> bool:
    """Whether ``piece_layer`` (the right number of 32-byte hashes) hashes up to ``root``."""
    if any(len(node) != HASH_SIZE for node in piece_layer):
        return False
    try:
        return file_root(length, piece_layer, piece_length) == root
    except ValueError:
        return False


def piece_layer_from_leaves(leaves: Sequence[bytes], piece_length: int) -> list[bytes]:
    """The piece layer of a file from all its leaf hashes (one root per piece of leaves)."""
    per_piece = piece_length // LEAF_SIZE
    layer_of_piece_length(piece_length)
    return [
        subtree_root(leaves[i : i + per_piece], per_piece) for i in range(0, len(leaves), per_piece)
    ]


def file_tree_hashes(leaves: Sequence[bytes], piece_length: int) -> tuple[bytes, list[bytes]]:
    """A non-empty file's ``(pieces root, piece layer)`` from its leaf hashes, as BEP 52 says.

    A file of one piece or less has no piece layer (``[]``): its root is over
    ``next_power_of_two(len(leaves))`` leaves. What ``bt create`` writes (it hashes
    piece by piece in parallel instead: bt.createv2).
    """
    if not leaves:
        raise ValueError("an empty file has no merkle tree")
    per_piece = piece_length // LEAF_SIZE
    height = layer_of_piece_length(piece_length)
    if len(leaves) <= per_piece:
        return subtree_root(leaves, next_power_of_two(len(leaves))), []
    layer = piece_layer_from_leaves(leaves, piece_length)
    return subtree_root(layer, next_power_of_two(len(layer)), height), layer


# --- proofs (hash request / hashes messages) -------------------------------------------------


def uncle_count(length: int, proof_layers: int) -> int:
    """Uncle hashes after ``length`` base hashes in a HASHES message (libtorrent's count).

    The ``length`` base nodes make a subtree of ``log2(length)`` layers; every
    proof layer above its root's child layer adds the sibling of the ancestor there.
    """
    return max(0, proof_layers - _log2(length) + 1)


def _check_request(base_layer: int, index: int, length: int, proof_layers: int) -> None:
    _log2(length)
    if base_layer < 0 or proof_layers < 0 or index < 0:
        raise ValueError("base layer, index and proof layers must not be negative")
    if index % length:
        raise ValueError(f"index {index} is not a multiple of length {length}")


def proof_top(
    hashes: Sequence[bytes], base_layer: int, index: int, length: int, proof_layers: int
) -> tuple[int, int, bytes]:
    """The node a HASHES payload hashes up to: ``(layer, index in layer, hash)``.

    ``hashes`` are the ``length`` base nodes then the uncles, bottom up; ValueError
    if their number or size is wrong. The caller compares the hash with the node
    it already trusts at that place (the pieces root for a full proof).
    """
    _check_request(base_layer, index, length, proof_layers)
    uncles = uncle_count(length, proof_layers)
    if len(hashes) != length + uncles:
        raise ValueError(f"expected {length} + {uncles} hashes, got {len(hashes)}")
    if any(len(node) != HASH_SIZE for node in hashes):
        raise ValueError(f"a hash is not {HASH_SIZE} bytes")
    layer = base_layer
    level = list(hashes[:length])
    while len(level) > 1:
        level = [sha256(level[i] + level[i + 1]).digest() for i in range(0, len(level), 2)]
        layer += 1
    node, position = level[0], index // length
    for uncle in hashes[length:]:
        node = sha256(uncle + node if position % 2 else node + uncle).digest()
        position //= 2
        layer += 1
    return layer, position, node


def verify_proof(
    hashes: Sequence[bytes],
    base_layer: int,
    index: int,
    length: int,
    proof_layers: int,
    expected: bytes,
) -> bool:
    """Whether a HASHES payload hashes up to ``expected`` (never raises for bad input)."""
    try:
        return proof_top(hashes, base_layer, index, length, proof_layers)[2] == expected
    except ValueError:
        return False


class MerkleTree:
    """The known layers of one file's tree: all of them, or the piece layer and up.

    Layer ``h`` is stored without its all-padding tail (``ceil(leaves / 2**h)``
    nodes); nodes beyond it are ``pad_hash(h)``. Layers below the lowest known one
    are None.
    """

    __slots__ = ("_layers", "leaves", "width")

    def __init__(self, layers: list[list[bytes] | None], leaves: int) -> None:
        self._layers = layers
        self.leaves = leaves
        """Real (unpadded) leaves of the file."""
        self.width = next_power_of_two(leaves)
        """Leaves of the padded tree: a power of two."""

    @classmethod
    def from_leaves(cls, leaves: Sequence[bytes]) -> MerkleTree:
        """The whole tree from the file's leaf hashes."""
        if not leaves:
            raise ValueError("an empty file has no merkle tree")
        return cls._build(list(leaves), 0, len(leaves), [])

    @classmethod
    def from_piece_layer(
        cls, piece_layer: Sequence[bytes], length: int, piece_length: int
    ) -> MerkleTree:
        """The piece layer and the layers above it of a file of ``length`` > piece_length."""
        height = layer_of_piece_length(piece_length)
        # the count only: the layers built next reach the root (no second pass over them)
        expected = piece_count(length, piece_length) if length > piece_length else 0
        if not expected or len(piece_layer) != expected:
            raise ValueError(
                f"a file of {length} bytes has {expected} piece hashes at {piece_length},"
                f" not {len(piece_layer)}"
            )
        below: list[list[bytes] | None] = [None] * height
        return cls._build(list(piece_layer), height, leaf_count(length), below)

    @classmethod
    def _build(
        cls, level: list[bytes], height: int, leaves: int, below: list[list[bytes] | None]
    ) -> MerkleTree:
        layers: list[list[bytes] | None] = [*below, level]
        top = _log2(next_power_of_two(leaves))
        while height < top:
            level = _parents(level, height)
            height += 1
            layers.append(level)
        return cls(layers, leaves)

    @property
    def root(self) -> bytes:
        top = self._layers[-1]
        assert top is not None
        return top[0]

    @property
    def height(self) -> int:
        """Layers above the leaves: the root's layer."""
        return len(self._layers) - 1

    def layer(self, height: int) -> list[bytes] | None:
        """The unpadded nodes of layer ``height``, or None if not known."""
        if not 0 <= height <= self.height:
            raise IndexError(f"layer {height} outside 0..{self.height}")
        known = self._layers[height]
        return None if known is None else list(known)

    def node(self, height: int, index: int) -> bytes | None:
        """One node (padding beyond the file), or None if its layer is not known."""
        known = self._layers[height] if 0 <= height <= self.height else None
        if known is None or not 0 <= index < self.width >> height:
            return None
        return known[index] if index < len(known) else pad_hash(height)

    def proof(self, base_layer: int, index: int, length: int, proof_layers: int) -> list[bytes]:
        """The HASHES payload for a hash request: ``length`` base nodes, then the uncles.

        ValueError when the request does not fit this tree or needs a layer not known.
        """
        _check_request(base_layer, index, length, proof_layers)
        if base_layer + proof_layers >= self.height or index + length > self.width >> base_layer:
            raise ValueError(
                f"request (layer {base_layer}, index {index}, length {length},"
                f" proof layers {proof_layers}) does not fit a tree of height {self.height}"
            )
        out: list[bytes] = []
        for position in range(index, index + length):
            node = self.node(base_layer, position)
            if node is None:
                raise ValueError(f"layer {base_layer} is not known")
            out.append(node)
        layer, position = base_layer + _log2(length), index // length
        for _ in range(uncle_count(length, proof_layers)):
            uncle = self.node(layer, position ^ 1)
            if uncle is None:
                raise ValueError(f"layer {layer} is not known")
            out.append(uncle)
            layer, position = layer + 1, position // 2
        return out

    def verify(
        self, hashes: Sequence[bytes], base_layer: int, index: int, length: int, proof_layers: int
    ) -> bool:
        """Whether a HASHES payload hashes up to the node this tree has at that place."""
        try:
            layer, position, node = proof_top(hashes, base_layer, index, length, proof_layers)
        except ValueError:
            return False
        return self.node(layer, position) == node
