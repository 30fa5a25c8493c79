"""File priorities become piece priorities; verified bytes are counted per file."""

from __future__ import annotations

import pytest

from bt.policy.priority import Priority
from bt.priorities import file_done_bytes, piece_priorities, updated_priorities
from bt.status import FilePriority
from bt.storage.layout import Layout

SKIP, NORMAL, HIGH = FilePriority.SKIP, FilePriority.NORMAL, FilePriority.HIGH


def test_a_piece_takes_the_highest_priority_of_the_files_it_holds() -> None:
    # pieces of 10 bytes: file 0 = 0..14, file 1 = 15..29, file 2 = 30..34
    layout = Layout([15, 15, 5], 10)
    assert piece_priorities(layout, [SKIP, HIGH, SKIP], [False] * 3) == [
        Priority.SKIP,
        Priority.HIGH,
        Priority.HIGH,
        Priority.SKIP,
    ]
    assert piece_priorities(layout, [NORMAL, SKIP, SKIP], [False] * 3) == [
        Priority.NORMAL,
        Priority.NORMAL,
        Priority.SKIP,
        Priority.SKIP,
    ]


def test_padding_files_do_not_make_a_piece_wanted() -> None:
    layout = Layout([5, 5, 10], 10)  # file 1 pads file 0 to the piece boundary
    assert piece_priorities(layout, [SKIP, NORMAL, NORMAL], [False, True, False]) == [
        Priority.SKIP,
        Priority.NORMAL,
    ]


def test_zero_length_files_hold_no_piece() -> None:
    layout = Layout([10, 0, 10], 10)
    assert piece_priorities(layout, [NORMAL, HIGH, NORMAL], [False] * 3) == [Priority.NORMAL] * 2


def test_updated_priorities_checks_index_and_value() -> None:
    assert updated_priorities([NORMAL, NORMAL], {1: "skip"}) == [NORMAL, SKIP]  # type: ignore[dict-item]
    with pytest.raises(ValueError, match=r"file index -1 is not in 0\.\.1"):
        updated_priorities([NORMAL, NORMAL], {-1: SKIP})
    with pytest.raises(ValueError, match="file 0: priority 'x' is not one of skip, normal, high"):
        updated_priorities([NORMAL], {0: "x"})  # type: ignore[dict-item]


def test_file_done_bytes_counts_only_verified_pieces() -> None:
    layout = Layout([15, 15, 5], 10)
    have = {1, 3}
    assert file_done_bytes(layout, have.__contains__) == [5, 5, 5]
    assert file_done_bytes(layout, lambda i: True) == [15, 15, 5]
