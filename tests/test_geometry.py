"""PieceGeometry: pieces add up to the total, blocks tile each piece, the last ones are short."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bt.geometry import BLOCK_SIZE, Block, PieceGeometry, piece_count


@st.composite
def geometries(draw: st.DrawFn) -> PieceGeometry:
    """Up to 64 pieces of up to 5 blocks, a last piece of any size, small or real blocks."""
    num_pieces = draw(st.integers(1, 64))
    block_size = draw(st.sampled_from([7, 1000, BLOCK_SIZE]))
    # Whole blocks (every real torrent) take the fast paths; any length, the general one.
    whole = st.integers(1, 5).map(lambda blocks: blocks * block_size)
    piece_length = draw(st.one_of(whole, st.integers(1, 5 * BLOCK_SIZE)))
    last = draw(st.integers(1, piece_length))
    total = piece_length * (num_pieces - 1) + last
    return PieceGeometry(num_pieces, piece_length, total, block_size)


@given(geometries())
def test_piece_sizes_add_up_to_the_total_and_only_the_last_is_short(
    geometry: PieceGeometry,
) -> None:
    sizes = [geometry.piece_size(i) for i in range(geometry.num_pieces)]
    assert sum(sizes) == geometry.total_length
    assert all(size == geometry.piece_length for size in sizes[:-1])
    assert 0 < sizes[-1] == geometry.last_piece_size <= geometry.piece_length
    assert geometry.last_piece == geometry.num_pieces - 1
    assert geometry.bytes_in(range(geometry.num_pieces)) == geometry.total_length
    offsets = [geometry.piece_offset(i) for i in range(geometry.num_pieces)]
    assert offsets == [i * geometry.piece_length for i in range(geometry.num_pieces)]
    assert geometry == PieceGeometry.of(
        geometry.piece_length, geometry.total_length, geometry.block_size
    )


@given(geometries(), st.data())
def test_blocks_cover_each_piece_exactly_in_order(
    geometry: PieceGeometry, data: st.DataObject
) -> None:
    index = data.draw(st.integers(0, geometry.num_pieces - 1))
    blocks = geometry.blocks(index)
    assert len(blocks) == geometry.block_count(index)
    position = 0
    for number, block in enumerate(blocks):
        assert block == Block(index, position, block.length)
        assert block == geometry.block(index, number)
        assert geometry.block_length(index, number) == block.length
        assert 0 < block.length <= geometry.block_size
        position += block.length
    assert position == geometry.piece_size(index)
    # Only the last block of a piece may be short.
    assert all(b.length == geometry.block_size for b in blocks[:-1])


@given(geometries(), st.data())
def test_bytes_in_count_matches_summing_the_pieces(
    geometry: PieceGeometry, data: st.DataObject
) -> None:
    pieces = data.draw(st.sets(st.integers(0, geometry.num_pieces - 1)))
    includes_last = geometry.last_piece in pieces
    assert geometry.bytes_in_count(len(pieces), includes_last=includes_last) == geometry.bytes_in(
        pieces
    )


def test_last_piece_and_last_block_sizes() -> None:
    geometry = PieceGeometry.of(2 * BLOCK_SIZE + 100, 2 * (2 * BLOCK_SIZE + 100) + 5000)
    assert geometry.num_pieces == 3
    assert geometry.last_piece_size == 5000
    assert geometry.blocks(0) == [
        Block(0, 0, BLOCK_SIZE),
        Block(0, BLOCK_SIZE, BLOCK_SIZE),
        Block(0, 2 * BLOCK_SIZE, 100),
    ]
    assert geometry.blocks(2) == [Block(2, 0, 5000)]
    exact = PieceGeometry(2, 100, 200)
    assert exact.last_piece_size == 100
    assert exact.bytes_in_count(2, includes_last=True) == 200


def test_a_block_is_the_plain_tuple_it_names() -> None:
    """Block replaces ad hoc (index, begin, length) tuples: equal and hashed alike."""
    assert Block(1, 2, 3) == (1, 2, 3)
    assert hash(Block(1, 2, 3)) == hash((1, 2, 3))
    index, begin, length = Block(4, 5, 6)
    assert (index, begin, length) == (4, 5, 6)


def test_out_of_range_pieces_and_blocks_are_refused() -> None:
    geometry = PieceGeometry(10, 32768, 9 * 32768 + 1000)
    with pytest.raises(IndexError, match="piece index 10 out of range for 10 pieces"):
        geometry.piece_size(10)
    with pytest.raises(IndexError):
        geometry.piece_size(-1)
    with pytest.raises(IndexError):
        geometry.piece_offset(10)
    with pytest.raises(IndexError, match="block 1 out of range for piece 9 of 1000 bytes"):
        geometry.block_length(9, 1)
    with pytest.raises(IndexError):
        geometry.block(0, -1)
    with pytest.raises(ValueError, match="11 pieces of a torrent of 10"):
        geometry.bytes_in_count(11, includes_last=False)
    with pytest.raises(ValueError, match="0 pieces with the last"):
        geometry.bytes_in_count(0, includes_last=True)


def test_geometry_that_does_not_add_up_is_refused() -> None:
    with pytest.raises(ValueError, match="200 bytes in pieces of 100 make 2 pieces, not 3"):
        PieceGeometry(3, 100, 200)
    with pytest.raises(ValueError, match="must be positive"):
        PieceGeometry(0, 100, 0)
    with pytest.raises(ValueError, match="must be positive"):
        PieceGeometry(1, 0, 10)
    with pytest.raises(ValueError, match="block size 0 must be positive"):
        PieceGeometry(1, 10, 10, block_size=0)
    with pytest.raises(ValueError, match="piece length 0 must be positive"):
        PieceGeometry.of(0, 10)
    assert piece_count(10, 3) == 4


@given(
    piece_length=st.integers(1, 5 * BLOCK_SIZE),
    pieces=st.integers(1, 6),
    short=st.integers(0, BLOCK_SIZE),
)
def test_pieces_below_whole_blocks_below_have_only_full_blocks(
    piece_length: int, pieces: int, short: int
) -> None:
    total = max(1, piece_length * pieces - min(short, piece_length - 1))
    geometry = PieceGeometry.of(piece_length, total)
    for index in range(geometry.num_pieces):
        full = all(block.length == BLOCK_SIZE for block in geometry.blocks(index))
        if index < geometry.whole_blocks_below:
            assert full, index
    if piece_length % BLOCK_SIZE == 0:
        assert geometry.whole_blocks_below == geometry.num_pieces - 1
    else:
        assert geometry.whole_blocks_below == 0
