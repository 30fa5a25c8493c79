"""Layout: torrent byte ranges to file spans, the arithmetic every disk job trusts."""

from __future__ import annotations

from typing import NamedTuple

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bt.storage.layout import FileSpan, Layout


class Entry(NamedTuple):
    length: int
    offset: int


def test_single_file_spans_are_offsets_into_that_file() -> None:
    layout = Layout([100], piece_length=32)
    assert layout.num_pieces == 4
    assert layout.spans(10, 20) == [FileSpan(0, 10, 20)]
    assert layout.piece_spans(3) == [FileSpan(0, 96, 4)]


def test_last_piece_is_shorter_and_others_are_full() -> None:
    layout = Layout([10, 20, 5], piece_length=16, total_length=35)
    assert layout.num_pieces == 3
    assert [layout.piece_size(i) for i in range(3)] == [16, 16, 3]


def test_exact_multiple_has_no_short_last_piece() -> None:
    layout = Layout([64], piece_length=16)
    assert layout.num_pieces == 4
    assert layout.piece_size(3) == 16


def test_spans_cross_file_boundaries_in_order() -> None:
    layout = Layout([10, 20, 5], piece_length=16)
    assert layout.piece_spans(0) == [FileSpan(0, 0, 10), FileSpan(1, 0, 6)]
    assert layout.piece_spans(1) == [FileSpan(1, 6, 14), FileSpan(2, 0, 2)]
    assert layout.piece_spans(2) == [FileSpan(2, 2, 3)]


def test_zero_length_files_never_appear_even_at_boundaries() -> None:
    # Empty files first, between, and last: they share offsets with their neighbours.
    layout = Layout([0, 10, 0, 0, 6, 0], piece_length=8)
    assert layout.spans(0, 16) == [FileSpan(1, 0, 10), FileSpan(4, 0, 6)]
    assert layout.spans(10, 1) == [FileSpan(4, 0, 1)]
    assert layout.piece_spans(1) == [FileSpan(1, 8, 2), FileSpan(4, 0, 6)]
    assert layout.files_of_piece(1) == [1, 4]
    assert layout.pieces_of_file(2) == range(0)
    assert layout.pieces_of_file(4) == range(1, 2)


def test_block_inside_a_piece() -> None:
    layout = Layout([10, 20, 5], piece_length=16)
    assert layout.piece_spans(1, begin=2, length=4) == [FileSpan(1, 8, 4)]
    assert layout.piece_spans(0, begin=9) == [FileSpan(0, 9, 1), FileSpan(1, 0, 6)]
    assert layout.piece_spans(0, begin=16) == []


def test_files_of_piece_and_pieces_of_file_agree() -> None:
    layout = Layout([5, 40, 3, 0, 12], piece_length=16)
    for file_index in range(layout.num_files):
        for piece in layout.pieces_of_file(file_index):
            assert file_index in layout.files_of_piece(piece)
    for piece in range(layout.num_pieces):
        for file_index in layout.files_of_piece(piece):
            assert piece in layout.pieces_of_file(file_index)


@pytest.mark.parametrize(
    ("offset", "length"),
    [(-1, 1), (0, -1), (0, 36), (35, 1), (36, 0)],
)
def test_ranges_outside_the_torrent_are_refused(offset: int, length: int) -> None:
    layout = Layout([10, 20, 5], piece_length=16)
    with pytest.raises(ValueError):
        layout.spans(offset, length)


def test_empty_range_at_the_end_is_empty() -> None:
    assert Layout([10], piece_length=4).spans(10, 0) == []


@pytest.mark.parametrize(
    ("index", "begin", "length"),
    [(-1, 0, None), (3, 0, None), (2, 0, 4), (0, -1, 1), (0, 10, 7), (1, 0, -1)],
)
def test_piece_ranges_outside_the_piece_are_refused(
    index: int, begin: int, length: int | None
) -> None:
    layout = Layout([10, 20, 5], piece_length=16)
    with pytest.raises(ValueError):
        layout.piece_spans(index, begin, length)


def test_bad_geometry_is_refused() -> None:
    with pytest.raises(ValueError):
        Layout([10], piece_length=0)
    with pytest.raises(ValueError):
        Layout([10, -1], piece_length=4)
    with pytest.raises(ValueError):
        Layout([10, 5], piece_length=4, total_length=16)


def test_from_files_checks_offsets_are_consecutive() -> None:
    layout = Layout.from_files([Entry(10, 0), Entry(0, 10), Entry(6, 10)], piece_length=4)
    assert layout.file_lengths == (10, 0, 6)
    assert layout.file_offset(2) == 10
    with pytest.raises(ValueError):
        Layout.from_files([Entry(10, 0), Entry(6, 11)], piece_length=4)


@given(
    lengths=st.lists(st.integers(0, 50), min_size=1, max_size=8),
    piece_length=st.integers(1, 40),
    data=st.data(),
)
def test_spans_tile_any_range_exactly(
    lengths: list[int], piece_length: int, data: st.DataObject
) -> None:
    """Spans are contiguous, inside their files, skip empty files and add up to the range."""
    layout = Layout(lengths, piece_length)
    total = layout.total_length
    offset = data.draw(st.integers(0, total))
    length = data.draw(st.integers(0, total - offset))
    position = offset
    for span in layout.spans(offset, length):
        assert span.length > 0
        assert lengths[span.file_index] > 0
        assert layout.file_offset(span.file_index) + span.file_offset == position
        assert span.file_offset + span.length <= lengths[span.file_index]
        position += span.length
    assert position == offset + length
    assert sum(layout.piece_size(i) for i in range(layout.num_pieces)) == total
