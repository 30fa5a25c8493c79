"""A set of piece indexes stored as the BEP 3 bitfield: piece 0 is the high bit of byte 0.

Keeping the wire layout as the storage makes ``to_bytes`` and ``from_bytes`` a
single copy, and a running count makes "how many pieces" O(1) for the choker and
the picker, which ask it constantly.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

from bt.errors import BitfieldError

__all__ = ["Bitfield", "set_indexes"]

#: Bit offsets (0 = most significant) set in each byte value, so iteration skips
#: empty bytes and never tests bits one by one.
_OFFSETS: tuple[tuple[int, ...], ...] = tuple(
    tuple(bit for bit in range(8) if value & (0x80 >> bit)) for value in range(256)
)


def _byte_count(length: int) -> int:
    return (length + 7) >> 3


class Bitfield:
    """A mutable set of piece indexes in ``range(length)``.

    There is deliberately no ``__len__``: "length" (pieces in the torrent) and
    "count" (pieces set) are both natural readings, so each has its own name.
    """

    __slots__ = ("_bits", "_count", "length")

    length: int

    def __init__(self, length: int) -> None:
        if length < 0:
            raise ValueError(f"bitfield length must not be negative, got {length}")
        self.length = length
        self._bits = bytearray(_byte_count(length))
        self._count = 0

    @classmethod
    def from_bytes(
        cls,
        data: bytes | bytearray | memoryview,
        length: int,
        *,
        spare_bits: Literal["refuse", "clear"] = "refuse",
    ) -> Bitfield:
        """Parse wire bytes; refuse a wrong byte count, and spare trailing bits set
        unless ``spare_bits="clear"``.

        BEP 3 asks for both refusals. A peer's bitfield clears its spare bits
        instead, as libtorrent does: they name no piece, so they cannot hurt.
        """
        if length < 0:
            raise ValueError(f"bitfield length must not be negative, got {length}")
        expected = _byte_count(length)
        if len(data) != expected:
            raise BitfieldError(
                f"bitfield of {len(data)} bytes for {length} pieces, expected {expected} bytes"
            )
        bits = bytearray(data)
        spare = expected * 8 - length
        if spare and bits[-1] & ((1 << spare) - 1):
            if spare_bits == "clear":
                bits[-1] &= 0xFF ^ ((1 << spare) - 1)
            else:
                raise BitfieldError(
                    f"bitfield has spare bits set after the last piece ({length - 1}):"
                    f" last byte is {bits[-1]:#04x}"
                )
        bitfield = cls.__new__(cls)
        bitfield.length = length
        bitfield._bits = bits
        bitfield._count = int.from_bytes(bits, "big").bit_count()
        return bitfield

    @classmethod
    def full(cls, length: int) -> Bitfield:
        """Every piece set: a seed's bitfield."""
        bitfield = cls(length)
        if length:
            bits = bitfield._bits
            bits[:] = b"\xff" * len(bits)
            bits[-1] = (0xFF << (len(bits) * 8 - length)) & 0xFF
            bitfield._count = length
        return bitfield

    def to_bytes(self) -> bytes:
        """The BEP 3 wire form (spare bits are always clear)."""
        return bytes(self._bits)

    def copy(self) -> Bitfield:
        """An independent copy: a snapshot for a policy to look at."""
        bitfield = Bitfield.__new__(Bitfield)
        bitfield.length = self.length
        bitfield._bits = bytearray(self._bits)
        bitfield._count = self._count
        return bitfield

    def _check(self, index: int) -> None:
        if not 0 <= index < self.length:
            raise IndexError(f"piece index {index} out of range for {self.length} pieces")

    def __contains__(self, index: int) -> bool:
        if not 0 <= index < self.length:
            self._check(index)
        return bool(self._bits[index >> 3] & (0x80 >> (index & 7)))

    def add(self, index: int) -> None:
        """Set ``index``; setting it again is a no-op (keeps the count right)."""
        if not 0 <= index < self.length:
            self._check(index)
        bits = self._bits
        position = index >> 3
        mask = 0x80 >> (index & 7)
        byte = bits[position]
        if not byte & mask:
            bits[position] = byte | mask
            self._count += 1

    def discard(self, index: int) -> None:
        """Clear ``index``; clearing a clear bit is a no-op."""
        if not 0 <= index < self.length:
            self._check(index)
        bits = self._bits
        position = index >> 3
        mask = 0x80 >> (index & 7)
        byte = bits[position]
        if byte & mask:
            bits[position] = byte & ~mask
            self._count -= 1

    def count(self) -> int:
        """How many pieces are set, in O(1)."""
        return self._count

    def is_complete(self) -> bool:
        return self._count == self.length

    def is_empty(self) -> bool:
        return self._count == 0

    def __iter__(self) -> Iterator[int]:
        """Set indexes in increasing order."""
        offsets = _OFFSETS
        for position, byte in enumerate(self._bits):
            if byte:
                base = position << 3
                for bit in offsets[byte]:
                    yield base + bit

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Bitfield):
            return NotImplemented
        return self.length == other.length and self._bits == other._bits

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"Bitfield(length={self.length}, count={self._count})"


def set_indexes(value: int, length: int) -> Iterator[int]:
    """Indexes of the set bits of a big-endian bitfield integer of ``length`` bits
    (bitfield arithmetic done on ints), highest bit (piece 0) first."""
    width = (length + 7) // 8 * 8
    while value:
        top = value.bit_length() - 1
        yield width - 1 - top
        value ^= 1 << top
