"""The pure rules of bt.storage.changes: which files changed or shrank, which pieces that doubts."""

from __future__ import annotations

from bt.storage.changes import changed_files, describe_files, pieces_of_files, short_files
from bt.storage.layout import Layout

#: Pieces of 10 bytes over files of 25, 0, 10 and 15 bytes: piece 2 straddles files 0 and 2.
LAYOUT = Layout([25, 0, 10, 15], 10)


def test_changed_files_compares_size_and_mtime_per_file() -> None:
    saved = [(25, 1), (0, 0), (10, 5), (15, 7)]
    assert changed_files(saved, saved) == []
    assert changed_files(saved, [(25, 1), (0, 0), (10, 6), (14, 7)]) == [2, 3]
    assert changed_files(saved, saved[:3]) is None, "another file list: all in doubt"


def test_pieces_of_files_include_the_pieces_straddling_into_them() -> None:
    assert pieces_of_files(LAYOUT, [2]) == [2, 3]
    assert pieces_of_files(LAYOUT, [0, 3]) == [0, 1, 2, 3, 4]
    assert pieces_of_files(LAYOUT, [1]) == [], "a zero-length file holds no piece"


def test_a_short_file_counts_only_if_a_piece_we_have_reaches_past_its_end() -> None:
    full = list(LAYOUT.file_lengths)
    have_all = lambda index: True  # noqa: E731
    assert short_files(LAYOUT, full, have_all) == []
    # File 3 (bytes 35..50) cut to 3 bytes: pieces 3 and 4 reach past its end.
    assert short_files(LAYOUT, [25, 0, 10, 3], have_all) == [3]
    assert short_files(LAYOUT, [25, 0, 10, 3], lambda index: index < 3) == [], (
        "a download in progress: sparse files are short, nothing we have is missing"
    )
    # File 0 cut to 20 bytes: piece 2 (bytes 20..30) is gone, pieces 0 and 1 are not.
    assert short_files(LAYOUT, [20, 0, 10, 15], lambda index: index == 2) == [0]
    assert short_files(LAYOUT, [20, 0, 10, 15], lambda index: index < 2) == []
    assert short_files(LAYOUT, [0, 0, 10, 15], have_all, [True, False, False, False]) == [], (
        "padding files are never on disk"
    )
    assert short_files(LAYOUT, [0, 0, 10, 15], lambda i: i == 2, skipped={0}, parted={2}) == [], (
        "a skipped file need not exist: the part file holds its straddling piece"
    )
    assert short_files(LAYOUT, [0, 0, 10, 15], have_all, skipped={0}, parted={2}) == [0], (
        "a skipped file that kept its own bytes (pieces 0 and 1) and was then deleted"
    )


def test_describe_files_keeps_a_log_line_short() -> None:
    names = [f"f{i}" for i in range(6)]
    assert describe_files(names, [4]) == "f4"
    assert describe_files(names, [0, 1, 2, 3, 5]) == "f0, f1, f2 and 2 more files"
