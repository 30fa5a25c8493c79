"""Piece and block arithmetic of a torrent, in one place (layer 0: pure, no I/O).

A torrent is ``total_length`` bytes cut into pieces of ``piece_length``; only the
last piece may be shorter. A piece is cut into blocks of ``block_size`` (16 KiB,
what every client requests); only a piece's last block may be shorter. Every
module that needs a piece size, a block count or the bytes of some pieces asks
a :class:`PieceGeometry` instead of redoing the last-piece arithmetic.

:class:`Block` is the one block address, ``(index, begin, length)``: the arguments
of a REQUEST, CANCEL or PIECE. It is a NamedTuple because it is made once per
block on the hot paths (picker, upload queue): a tuple is cheaper to build and
hash than a frozen dataclass, and equal to the plain tuple it replaces.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final, NamedTuple

__all__ = ["BLOCK_SIZE", "Block", "PieceGeometry", "piece_count"]

#: Bytes per block: the unit of REQUEST and PIECE that every client uses.
BLOCK_SIZE: Final = 16384


class Block(NamedTuple):
    """One block: the arguments of a REQUEST, CANCEL or PIECE message."""

    index: int
    begin: int
    length: int


def piece_count(total_length: int, piece_length: int) -> int:
    """How many pieces of ``piece_length`` hold ``total_length`` bytes (the last may be short)."""
    return -(-total_length // piece_length)


@dataclass(frozen=True, slots=True)
class PieceGeometry:
    """Piece and block sizes of a torrent, checked once: the counts add up, sizes are positive.

    Piece indexes outside ``0..num_pieces - 1`` raise IndexError.
    """

    num_pieces: int
    piece_length: int
    total_length: int
    block_size: int = BLOCK_SIZE
    #: Bytes of the last piece: ``piece_length`` unless the total is not a multiple of it.
    last_piece_size: int = field(init=False, repr=False, compare=False)
    #: Pieces below this index have only blocks of exactly ``block_size`` (every piece
    #: but the last when the piece length is a multiple of it, else none): the picker
    #: asks per block, so the common case must not redo the arithmetic.
    whole_blocks_below: int = field(init=False, repr=False, compare=False)
    #: Blocks of every piece but the last.
    _blocks_per_piece: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.piece_length <= 0 or self.total_length <= 0:
            raise ValueError(
                f"piece length {self.piece_length} and total length {self.total_length}"
                " must be positive"
            )
        expected = piece_count(self.total_length, self.piece_length)
        if self.num_pieces != expected:
            raise ValueError(
                f"{self.total_length} bytes in pieces of {self.piece_length} make"
                f" {expected} pieces, not {self.num_pieces}"
            )
        if self.block_size <= 0:
            raise ValueError(f"block size {self.block_size} must be positive")
        last = self.total_length - self.piece_length * (self.num_pieces - 1)
        object.__setattr__(self, "last_piece_size", last)
        object.__setattr__(self, "_blocks_per_piece", -(-self.piece_length // self.block_size))
        whole = self.piece_length % self.block_size == 0
        object.__setattr__(self, "whole_blocks_below", self.num_pieces - 1 if whole else 0)

    @classmethod
    def of(
        cls, piece_length: int, total_length: int, block_size: int = BLOCK_SIZE
    ) -> PieceGeometry:
        """The geometry of ``total_length`` bytes in pieces of ``piece_length``."""
        if piece_length <= 0:
            raise ValueError(f"piece length {piece_length} must be positive")
        return cls(piece_count(total_length, piece_length), piece_length, total_length, block_size)

    @property
    def last_piece(self) -> int:
        """Index of the last piece, the only one that may be shorter."""
        return self.num_pieces - 1

    # -- pieces -----------------------------------------------------------------

    def piece_size(self, index: int) -> int:
        """Bytes of piece ``index``."""
        if 0 <= index < self.num_pieces - 1:
            return self.piece_length
        if index == self.num_pieces - 1:
            return self.last_piece_size
        raise IndexError(f"piece index {index} out of range for {self.num_pieces} pieces")

    def piece_offset(self, index: int) -> int:
        """Where piece ``index`` starts in the torrent's byte stream."""
        self._check(index)
        return index * self.piece_length

    def bytes_in(self, pieces: Iterable[int]) -> int:
        """Bytes of the given (distinct) pieces."""
        return sum(self.piece_size(index) for index in pieces)

    def bytes_in_count(self, count: int, *, includes_last: bool) -> int:
        """Bytes of ``count`` distinct pieces, the last piece among them when
        ``includes_last``: O(1), for counts the picker keeps (have, missing)."""
        if not 0 <= count <= self.num_pieces or (includes_last and not count):
            raise ValueError(
                f"{count} pieces{' with the last' if includes_last else ''}"
                f" of a torrent of {self.num_pieces}"
            )
        total = count * self.piece_length
        if includes_last:
            total -= self.piece_length - self.last_piece_size
        return total

    # -- blocks -----------------------------------------------------------------

    def block_count(self, index: int) -> int:
        """Blocks of piece ``index``; the last one may be shorter."""
        if 0 <= index < self.num_pieces - 1:
            return self._blocks_per_piece
        return -(-self.piece_size(index) // self.block_size)

    def block_length(self, index: int, block: int) -> int:
        """Bytes of block number ``block`` of piece ``index``."""
        if 0 <= index < self.whole_blocks_below and 0 <= block < self._blocks_per_piece:
            return self.block_size
        begin = block * self.block_size
        size = self.piece_size(index)
        if not 0 <= begin < size:
            raise IndexError(f"block {block} out of range for piece {index} of {size} bytes")
        return min(self.block_size, size - begin)

    def block(self, index: int, block: int) -> Block:
        """The address of block number ``block`` of piece ``index``."""
        return Block(index, block * self.block_size, self.block_length(index, block))

    def blocks(self, index: int) -> list[Block]:
        """Every block of piece ``index``, in order."""
        size = self.piece_size(index)
        step = self.block_size
        return [Block(index, begin, min(step, size - begin)) for begin in range(0, size, step)]

    def _check(self, index: int) -> None:
        if not 0 <= index < self.num_pieces:
            raise IndexError(f"piece index {index} out of range for {self.num_pieces} pieces")
