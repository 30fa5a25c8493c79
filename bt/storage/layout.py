"""Where a torrent's bytes live: piece and block ranges -> spans of files.

A torrent is one concatenated byte stream cut into pieces; files are
consecutive runs of that stream. Every read, write and hash check goes through
this mapping, so it is pure, checked once here, and tested on its own.
Zero-length files take no room in the stream and never appear in a span.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from bt.geometry import PieceGeometry, piece_count

__all__ = ["FileSpan", "Layout", "SizedFile"]


class SizedFile(Protocol):
    """What :meth:`Layout.from_files` needs of a file entry (``bt.metainfo.FileEntry`` fits)."""

    @property
    def length(self) -> int: ...

    @property
    def offset(self) -> int: ...


@dataclass(frozen=True, slots=True)
class FileSpan:
    """``length`` bytes of file ``file_index`` starting at ``file_offset`` in that file."""

    file_index: int
    file_offset: int
    length: int


class Layout:
    """The geometry of a torrent: file boundaries and piece size, nothing else.

    ``total_length`` is optional and, when given, must match the sum of the file
    lengths: it catches a caller pairing files with the wrong torrent.
    """

    __slots__ = (
        "_ends",
        "_file_lengths",
        "_file_starts",
        "_geometry",
        "_indexes",
        "_starts",
        "num_pieces",
        "piece_length",
        "total_length",
    )

    def __init__(
        self,
        file_lengths: Sequence[int],
        piece_length: int,
        total_length: int | None = None,
    ) -> None:
        if piece_length <= 0:
            raise ValueError(f"piece length must be positive, got {piece_length}")
        lengths = tuple(file_lengths)
        if any(length < 0 for length in lengths):
            raise ValueError(f"negative file length in {lengths}")
        total = sum(lengths)
        if total_length is not None and total_length != total:
            raise ValueError(f"total length {total_length} != sum of file lengths {total}")
        self.piece_length = piece_length
        self.total_length = total
        self.num_pieces = piece_count(total, piece_length)
        # An empty torrent has no pieces and so no geometry: _check_piece refuses every index.
        self._geometry = PieceGeometry(self.num_pieces, piece_length, total) if total else None
        self._file_lengths = lengths
        starts: list[int] = []
        position = 0
        for length in lengths:
            starts.append(position)
            position += length
        self._file_starts = tuple(starts)
        # Only files that occupy bytes take part in the bisect: a zero-length
        # file shares its start with the next file and would shadow it.
        occupied = [i for i, length in enumerate(lengths) if length > 0]
        self._indexes = tuple(occupied)
        self._starts = tuple(starts[i] for i in occupied)
        self._ends = tuple(starts[i] + lengths[i] for i in occupied)

    @classmethod
    def from_files(cls, files: Iterable[SizedFile], piece_length: int) -> Layout:
        """Build from file entries, checking their offsets are consecutive."""
        lengths: list[int] = []
        position = 0
        for index, entry in enumerate(files):
            if entry.offset != position:
                raise ValueError(f"file {index} starts at {entry.offset}, expected {position}")
            lengths.append(entry.length)
            position += entry.length
        return cls(lengths, piece_length)

    @property
    def file_lengths(self) -> tuple[int, ...]:
        return self._file_lengths

    @property
    def num_files(self) -> int:
        return len(self._file_lengths)

    def file_offset(self, file_index: int) -> int:
        """Where file ``file_index`` starts in the torrent's byte stream."""
        return self._file_starts[file_index]

    def piece_size(self, index: int) -> int:
        """Length of piece ``index``; only the last piece may be shorter."""
        self._check_piece(index)
        return self._geometry.piece_size(index)  # type: ignore[union-attr]  # index checked

    def spans(self, offset: int, length: int) -> list[FileSpan]:
        """The file spans covering ``length`` bytes of the stream from ``offset``, in order."""
        if offset < 0 or length < 0 or offset + length > self.total_length:
            raise ValueError(
                f"range {offset}+{length} outside the torrent's {self.total_length} bytes"
            )
        result: list[FileSpan] = []
        if length == 0:
            return result
        position = bisect_right(self._starts, offset) - 1
        end = offset + length
        while offset < end:
            file_end = self._ends[position]
            take = min(end, file_end) - offset
            result.append(FileSpan(self._indexes[position], offset - self._starts[position], take))
            offset += take
            position += 1
        return result

    def piece_spans(self, index: int, begin: int = 0, length: int | None = None) -> list[FileSpan]:
        """Spans of ``length`` bytes at ``begin`` inside piece ``index`` (default: to its end)."""
        size = self.piece_size(index)
        if length is None:
            length = size - begin
        if begin < 0 or length < 0 or begin + length > size:
            raise ValueError(f"range {begin}+{length} outside piece {index} of {size} bytes")
        return self.spans(index * self.piece_length + begin, length)

    def run_spans(self, first: int, length: int) -> list[FileSpan]:
        """Spans of a run of whole pieces: ``length`` bytes from the start of ``first``,
        which must end where a piece ends (ValueError otherwise)."""
        self._check_piece(first)
        offset = first * self.piece_length
        end = offset + length
        if length <= 0 or not (end % self.piece_length == 0 or end == self.total_length):
            raise ValueError(f"run {length} bytes from piece {first} does not end a piece")
        return self.spans(offset, length)

    def files_of_piece(self, index: int) -> list[int]:
        """Indexes of the files holding bytes of piece ``index`` (zero-length files excluded)."""
        return [span.file_index for span in self.piece_spans(index)]

    def pieces_of_file(self, file_index: int) -> range:
        """Pieces holding bytes of file ``file_index``; empty for a zero-length file."""
        length = self._file_lengths[file_index]
        if length == 0:
            return range(0)
        start = self._file_starts[file_index]
        return range(start // self.piece_length, (start + length - 1) // self.piece_length + 1)

    def _check_piece(self, index: int) -> None:
        if not 0 <= index < self.num_pieces:
            raise ValueError(f"piece {index} outside 0..{self.num_pieces - 1}")

    def __repr__(self) -> str:
        return (
            f"Layout(files={len(self._file_lengths)}, piece_length={self.piece_length}, "
            f"total_length={self.total_length})"
        )
