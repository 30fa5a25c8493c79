"""File priorities -> piece priorities, and how much of each file is verified.

Pure policy: a piece is as urgent as the most urgent file it holds bytes of
(libtorrent's rule), so a piece shared by a skipped and a wanted file is
downloaded, and it may write a few bytes into the skipped file.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from bt.policy.priority import Priority
from bt.status import FilePriority
from bt.storage.layout import Layout

__all__ = ["file_done_bytes", "piece_priorities", "skipped_files", "updated_priorities"]


def piece_priorities(
    layout: Layout, files: Sequence[FilePriority], padding: Sequence[bool]
) -> list[int]:
    """The priority (bt.policy.priority) of every piece; O(pieces + files)."""
    if len(files) != layout.num_files:
        raise ValueError(f"{len(files)} file priorities for {layout.num_files} files")
    result = [int(Priority.SKIP)] * layout.num_pieces
    holds_data = [False] * layout.num_pieces
    for file_index, priority in enumerate(files):
        if padding[file_index]:
            continue
        value = priority.piece_priority
        for piece in layout.pieces_of_file(file_index):
            holds_data[piece] = True
            if value > result[piece]:
                result[piece] = value
    # A piece of padding alone (never in practice) is trivially complete: keep it wanted.
    return [p if held else Priority.NORMAL for p, held in zip(result, holds_data, strict=True)]


def skipped_files(files: Sequence[FilePriority], padding: Sequence[bool]) -> frozenset[int]:
    """Indexes of the files the user skips (padding files are never "skipped": never real)."""
    return frozenset(
        index
        for index, (priority, pad) in enumerate(zip(files, padding, strict=True))
        if priority is FilePriority.SKIP and not pad
    )


def updated_priorities(
    current: Sequence[FilePriority], changes: Mapping[int, FilePriority]
) -> list[FilePriority]:
    """``current`` with ``changes`` applied; a bad index or value raises ValueError naming it."""
    result = list(current)
    for index, priority in changes.items():
        if not isinstance(index, int) or not 0 <= index < len(result):
            raise ValueError(f"file index {index!r} is not in 0..{len(result) - 1}")
        try:
            result[index] = FilePriority(priority)
        except ValueError:
            choices = ", ".join(p.value for p in FilePriority)
            message = f"file {index}: priority {priority!r} is not one of {choices}"
            raise ValueError(message) from None
    return result


def file_done_bytes(layout: Layout, has_piece: Callable[[int], bool]) -> list[int]:
    """Per file, the bytes that lie inside verified pieces."""
    piece_length = layout.piece_length
    done = []
    for file_index, length in enumerate(layout.file_lengths):
        start = layout.file_offset(file_index)
        end = start + length
        total = 0
        for piece in layout.pieces_of_file(file_index):
            if has_piece(piece):
                piece_start = piece * piece_length
                total += min(end, piece_start + piece_length) - max(start, piece_start)
        done.append(total)
    return done
