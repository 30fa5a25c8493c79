"""zope.interface contracts between bt's layers.

An interface names what a collaborator must do so it can be injected (real
files, memory, a test double) without the user knowing which it got.
"""

from __future__ import annotations

from collections.abc import Collection

from zope.interface import Interface

__all__ = ["IStorage"]


class IStorage(Interface):
    """A torrent's data, addressed by piece: the blocking side of the disk queue.

    Every method blocks and runs in the disk thread pool (``bt.storage.disk``),
    never in the reactor thread. Implementations must allow ``read`` and
    ``write`` from several pool threads at once.

    Failures of the medium (disk full, permission denied, a path escaping the
    download folder, use after ``close``) raise ``bt.errors.StorageError``.
    A range outside the torrent raises ``ValueError``: that is a caller's bug.
    """

    def read(index: int, begin: int, length: int) -> bytes:
        """Return ``length`` bytes at ``begin`` in piece ``index``.

        Data that is not there yet (a file missing or shorter than the range)
        is not an error and is not invented: the result is then the contiguous
        prefix that exists, so it is *shorter* than ``length``. Callers that
        serve blocks treat short as missing; hash checks treat it as a failed
        check. Padding files (BEP 47) read as zeros. A hole inside a sparse file
        reads as zeros, as the OS returns it; the piece hash catches that.
        """

    def write(index: int, begin: int, data: object) -> None:
        """Write one contiguous run of bytes starting at ``begin`` in piece ``index``.

        ``data`` is a bytes-like object or a sequence of bytes-like objects
        (e.g. the blocks of a piece, in order) taken as their concatenation.
        Passing the blocks rather than joining them lets the storage issue one
        vectored write per file span with no copy. Padding files are skipped.
        """

    def prepare() -> None:
        """Create what exists whatever the data: zero-length files (and their folders).

        Called once when the torrent starts; other files appear on first write.
        """

    def set_skipped(files: Collection[int]) -> None:
        """Which files the user skips (a collection of indexes; padding ignored).

        Skipped files are not created: bytes of pieces that straddle into one are
        kept aside (a part file) and still read back for seeding and hash checks.
        A file no longer skipped gets those bytes moved into it before this returns.
        Called when the torrent starts (before ``prepare``) and on every change.
        """

    def parted_pieces() -> list[int]:
        """Pieces with bytes kept aside for skipped files: worth hashing in a check
        although those files do not exist (``existing_lengths`` counts them as 0)."""

    def sync() -> None:
        """Make everything written so far durable (fsync): call before saving resume state."""

    def existing_lengths() -> list[int]:
        """Per file, how many bytes exist now (0 when missing); for resume checks.

        Padding files report their full length: they are always complete.
        """

    def file_stamps() -> tuple[tuple[int, int], ...]:
        """Per file, (size, modification time in ns) now; (0, 0) when missing or padding.

        Resume state is trusted only while these are unchanged since it was saved.
        """

    def close() -> None:
        """Release open files. Idempotent; any later read or write raises StorageError."""
