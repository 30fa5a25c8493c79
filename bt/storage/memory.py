"""IStorage in memory: for tests and for embedding bt without a download folder.

It behaves like :class:`bt.storage.files.FileStorage` where callers can see it:
each file grows like a sparse file as it is written, so reads past what was
written come back short, holes read as zeros, and padding files read as zeros.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Sequence

from zope.interface import implementer

from bt.errors import StorageError
from bt.interfaces import IStorage
from bt.metainfo import Metainfo
from bt.storage.layout import FileSpan, Layout
from bt.storage.vectored import as_views, take

__all__ = ["MemoryStorage"]


@implementer(IStorage)
class MemoryStorage:
    """A torrent's files as bytearrays; ``padding`` holds the indexes of padding files."""

    def __init__(self, layout: Layout, padding: Sequence[int] = ()) -> None:
        self._layout = layout
        self._files = [bytearray() for _ in layout.file_lengths]
        self._padding = frozenset(padding)
        self._lock = threading.Lock()
        self._closed = False
        self.writes = 0
        """How many file spans were written: lets tests see that writes are coalesced."""

    @classmethod
    def for_torrent(cls, metainfo: Metainfo) -> MemoryStorage:
        """Empty storage shaped for ``metainfo`` (its files, pieces and padding)."""
        layout = Layout.from_files(metainfo.files, metainfo.piece_length)
        padding = [index for index, entry in enumerate(metainfo.files) if entry.padding]
        return cls(layout, padding)

    @property
    def layout(self) -> Layout:
        return self._layout

    def file_data(self, file_index: int) -> bytes:
        """What file ``file_index`` holds now (padding files: nothing, they are virtual)."""
        with self._lock:
            return bytes(self._files[file_index])

    def read(self, index: int, begin: int, length: int) -> bytes:
        parts: list[bytes] = []
        with self._lock:
            self._check_open()
            for span in self._layout.piece_spans(index, begin, length):
                if span.file_index in self._padding:
                    parts.append(bytes(span.length))
                    continue
                data = self._files[span.file_index]
                chunk = bytes(data[span.file_offset : span.file_offset + span.length])
                parts.append(chunk)
                if len(chunk) < span.length:
                    break
        return b"".join(parts)

    def write(self, index: int, begin: int, data: object) -> None:
        views = as_views(data)
        total = sum(view.nbytes for view in views)
        self._write_spans(self._layout.piece_spans(index, begin, total), views)

    def write_pieces(self, first: int, data: object) -> None:
        """A run of whole pieces from ``first``, as ``FileStorage.write_pieces``."""
        views = as_views(data)
        total = sum(view.nbytes for view in views)
        self._write_spans(self._layout.run_spans(first, total), views)

    def _write_spans(self, spans: list[FileSpan], views: list[memoryview]) -> None:
        with self._lock:
            self._check_open()
            for span in spans:
                chunk, views = take(views, span.length)
                if span.file_index in self._padding:
                    continue
                target = self._files[span.file_index]
                end = span.file_offset + span.length
                if len(target) < end:
                    target.extend(bytes(end - len(target)))
                position = span.file_offset
                for view in chunk:
                    target[position : position + view.nbytes] = view
                    position += view.nbytes
                self.writes += 1

    def prepare(self) -> None:
        pass  # memory has nothing to create up front

    def set_skipped(self, files: Collection[int]) -> None:
        pass  # memory creates no files, so skipped ones need nothing kept aside

    def parted_pieces(self) -> list[int]:
        return []

    def sync(self) -> None:
        with self._lock:
            self._check_open()

    def existing_lengths(self) -> list[int]:
        with self._lock:
            return [
                length if i in self._padding else len(self._files[i])
                for i, length in enumerate(self._layout.file_lengths)
            ]

    def file_stamps(self) -> tuple[tuple[int, int], ...]:
        """Memory has no clock of its own: a counter of writes stands in for mtime."""
        with self._lock:
            return tuple(
                (0, 0) if i in self._padding else (len(self._files[i]), self.writes)
                for i in range(len(self._files))
            )

    def close(self) -> None:
        with self._lock:
            self._closed = True

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError("memory storage is closed")
