"""Which files changed or shrank under a torrent, and which of our pieces that puts in doubt.

Pure rules (no Twisted, no I/O), used by the start-up inventory and by
:mod:`bt.storage.damage`, which runs them over the disk queue.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence

from bt.storage.layout import Layout
from bt.storage.resume import FileStamp

__all__ = ["changed_files", "describe_files", "pieces_of_files", "short_files"]


def changed_files(saved: Sequence[FileStamp], now: Sequence[FileStamp]) -> list[int] | None:
    """Files whose (size, mtime) differ from ``saved``; None when the lists do not match
    at all (not this torrent's file list: everything is in doubt)."""
    if len(saved) != len(now):
        return None
    return [
        index
        for index, (old, new) in enumerate(zip(saved, now, strict=True))
        if tuple(old) != tuple(new)
    ]


def pieces_of_files(layout: Layout, files: Iterable[int]) -> list[int]:
    """Every piece holding bytes of one of ``files`` (pieces straddling into them too)."""
    pieces: set[int] = set()
    for file_index in files:
        pieces.update(layout.pieces_of_file(file_index))
    return sorted(pieces)


def short_files(
    layout: Layout,
    existing: Sequence[int],
    has: Callable[[int], bool],
    padding: Sequence[bool] = (),
    skipped: Collection[int] = (),
    parted: Collection[int] = (),
) -> list[int]:
    """Files now shorter than a piece we have needs them to be: shortened or deleted.

    A file of a download in progress is short by nature (sparse, written as
    pieces arrive); it counts only if a piece ``has`` says we have reaches past its end.
    A skipped file need not exist: the part file holds the bytes of the pieces
    straddling into it (``parted``). Only a piece we have whose bytes are neither
    in the file nor in the part file makes it count: a skipped file that kept its
    own bytes and was then deleted or cut is damage like any other.
    """
    damaged = []
    piece_length = layout.piece_length
    for file_index, length in enumerate(layout.file_lengths):
        if (padding and padding[file_index]) or existing[file_index] >= length:
            continue
        first_gone = (layout.file_offset(file_index) + existing[file_index]) // piece_length
        pieces = layout.pieces_of_file(file_index)
        elsewhere = parted if file_index in skipped else ()
        gone = range(first_gone, pieces.stop)
        if any(has(index) and index not in elsewhere for index in gone):
            damaged.append(file_index)
    return damaged


def describe_files(names: Sequence[str], files: Sequence[int], limit: int = 3) -> str:
    """``a, b and 2 more files``: file names for one log line, however many there are."""
    shown = [names[index] for index in files[:limit]]
    rest = len(files) - len(shown)
    return ", ".join(shown) + (f" and {rest} more files" if rest else "")
