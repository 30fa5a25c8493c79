"""Bitfield: wire round-trips, strict parsing, and the O(1) running count."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bt.bitfield import Bitfield
from bt.errors import BitfieldError


@st.composite
def length_and_indexes(draw: st.DrawFn) -> tuple[int, set[int]]:
    length = draw(st.integers(min_value=0, max_value=300))
    if not length:
        return 0, set()
    return length, draw(st.sets(st.integers(min_value=0, max_value=length - 1)))


def test_new_bitfield_is_empty() -> None:
    bitfield = Bitfield(10)
    assert bitfield.length == 10
    assert bitfield.count() == 0
    assert bitfield.is_empty()
    assert not bitfield.is_complete()
    assert list(bitfield) == []
    assert bitfield.to_bytes() == b"\x00\x00"


def test_wire_bit_order_is_big_endian() -> None:
    """Piece 0 is the high bit of the first byte, as BEP 3 says."""
    bitfield = Bitfield(10)
    bitfield.add(0)
    bitfield.add(9)
    assert bitfield.to_bytes() == b"\x80\x40"


def test_add_and_discard_are_idempotent_for_the_count() -> None:
    bitfield = Bitfield(8)
    bitfield.add(3)
    bitfield.add(3)
    assert bitfield.count() == 1
    assert 3 in bitfield
    bitfield.discard(3)
    bitfield.discard(3)
    assert bitfield.count() == 0
    assert 3 not in bitfield


@pytest.mark.parametrize("index", [-1, 10, 100])
def test_out_of_range_index_is_an_index_error(index: int) -> None:
    bitfield = Bitfield(10)
    with pytest.raises(IndexError, match=f"piece index {index} out of range for 10 pieces"):
        bitfield.add(index)
    with pytest.raises(IndexError):
        bitfield.discard(index)
    with pytest.raises(IndexError):
        _ = index in bitfield


def test_negative_length_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        Bitfield(-1)


@pytest.mark.parametrize("length", [0, 1, 7, 8, 9, 16, 17])
def test_full_sets_every_piece_and_no_spare_bit(length: int) -> None:
    bitfield = Bitfield.full(length)
    assert bitfield.count() == length
    assert bitfield.is_complete()
    assert list(bitfield) == list(range(length))
    assert Bitfield.from_bytes(bitfield.to_bytes(), length) == bitfield


def test_from_bytes_refuses_wrong_byte_count() -> None:
    with pytest.raises(BitfieldError, match="bitfield of 3 bytes for 10 pieces, expected 2 bytes"):
        Bitfield.from_bytes(b"\x00\x00\x00", 10)
    with pytest.raises(BitfieldError, match="bitfield of 1 bytes for 10 pieces, expected 2 bytes"):
        Bitfield.from_bytes(b"\x00", 10)


@pytest.mark.parametrize("last", [0x20, 0x01, 0x3F])
def test_from_bytes_refuses_spare_bits(last: int) -> None:
    """10 pieces use the top 2 bits of byte 1; the other 6 must be clear."""
    with pytest.raises(BitfieldError, match=r"spare bits set after the last piece \(9\)"):
        Bitfield.from_bytes(bytes([0xFF, 0xC0 | last]), 10)


def test_from_bytes_accepts_exactly_the_used_bits() -> None:
    bitfield = Bitfield.from_bytes(b"\xff\xc0", 10)
    assert bitfield.is_complete()


def test_copy_is_independent() -> None:
    original = Bitfield(5)
    original.add(1)
    clone = original.copy()
    clone.add(2)
    assert list(original) == [1]
    assert list(clone) == [1, 2]
    assert clone.count() == 2


def test_equality_needs_same_length_and_bits() -> None:
    assert Bitfield(8) == Bitfield(8)
    assert Bitfield(8) != Bitfield(9)
    one = Bitfield(8)
    one.add(0)
    assert one != Bitfield(8)
    assert Bitfield(8) != b"\x00"


def test_bitfield_is_unhashable_because_mutable() -> None:
    with pytest.raises(TypeError):
        hash(Bitfield(1))


@given(length_and_indexes())
def test_matches_a_python_set(case: tuple[int, set[int]]) -> None:
    length, indexes = case
    bitfield = Bitfield(length)
    for index in indexes:
        bitfield.add(index)
    assert list(bitfield) == sorted(indexes)
    assert bitfield.count() == len(indexes)
    assert bitfield.is_complete() == (len(indexes) == length)
    assert bitfield.is_empty() == (not indexes)
    assert all((i in bitfield) == (i in indexes) for i in range(length))


@given(length_and_indexes())
def test_wire_round_trip(case: tuple[int, set[int]]) -> None:
    length, indexes = case
    bitfield = Bitfield(length)
    for index in indexes:
        bitfield.add(index)
    parsed = Bitfield.from_bytes(bitfield.to_bytes(), length)
    assert parsed == bitfield
    assert parsed.count() == len(indexes)


@given(st.binary(max_size=40), st.integers(min_value=0, max_value=320))
def test_from_bytes_garbage_raises_only_bitfield_error(data: bytes, length: int) -> None:
    try:
        bitfield = Bitfield.from_bytes(data, length)
    except BitfieldError:
        return
    assert bitfield.to_bytes() == data
    assert bitfield.count() == len(list(bitfield))
