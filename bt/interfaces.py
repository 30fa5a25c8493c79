"""zope.interface contracts between bt's layers.

An interface names what a collaborator must do so it can be injected (real
files, memory, a test double) without the user knowing which it got.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING, Any

from zope.interface import Interface

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred

__all__ = ["IDiskQueue", "IStorage"]


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

        A storage may also offer ``write_pieces(first, data)``: whole pieces from
        ``first`` on, one after another, in one call (``FileStorage`` and
        ``MemoryStorage`` do); the disk queue then writes adjacent small pieces so.
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


class IDiskQueue(Interface):
    """A torrent's storage seen from the reactor: every job returns a Deferred.

    What a torrent (its inventory, damage checks, completion chain and seeding
    reads) asks of ``bt.storage.disk.DiskQueue``; tests give the torrent a fake
    that provides this interface instead. Work offered before ``start`` or after
    ``stop`` fails with ``bt.errors.StorageError``; a piece or range that does
    not exist raises ``ValueError`` at once.
    """

    def start() -> None:
        """Begin accepting work (the threads run from here on)."""

    def stop() -> Deferred[None]:
        """Refuse new work; fires once every job already queued has finished."""

    def verify_and_write(index: int, blocks: Sequence[bytes]) -> Deferred[None]:
        """Hash piece ``index`` from its blocks; write it only if the hash matches.

        Fails with ``bt.errors.PieceHashError`` (nothing written) when it does not;
        for a v2 or hybrid piece its ``leaf_hashes`` are those of the blocks received.
        """

    def write_piece(index: int, blocks: Sequence[bytes], sink: Any, token: Any) -> None:
        """``verify_and_write`` without a Deferred: ``sink(results)`` gets ``(token, None
        or the Failure)`` of this piece in one list with other pieces written alongside
        (small pieces go to the disk in batches)."""

    def read(index: int, begin: int, length: int) -> Deferred[bytes]:
        """Bytes to serve to a peer; ``DataMissingError`` if they are not all on disk."""

    def read_now(index: int, begin: int, sizes: Sequence[int]) -> list[bytearray] | None:
        """Buffers of ``sizes`` bytes from ``begin``, at once, if they are in memory now
        (the page cache); None otherwise (then :meth:`read`). Never waits for the disk."""

    def hash_piece(index: int) -> Deferred[bool]:
        """Whether piece ``index`` on disk matches its hash (missing data: False)."""

    def call(job: Callable[..., Any], *args: object) -> Deferred[Any]:
        """Run any blocking job (resume state I/O, say) off the reactor."""

    def file_stamps() -> Deferred[tuple[tuple[int, int], ...]]:
        """``IStorage.file_stamps``, off the reactor."""

    def existing_lengths() -> Deferred[list[int]]:
        """``IStorage.existing_lengths``, off the reactor."""

    def prepare() -> Deferred[None]:
        """``IStorage.prepare``, off the reactor."""

    def set_skipped(files: frozenset[int]) -> Deferred[None]:
        """``IStorage.set_skipped``, off the reactor (it may move data)."""

    def parted_pieces() -> Deferred[list[int]]:
        """``IStorage.parted_pieces``, off the reactor."""

    def sync() -> Deferred[None]:
        """``IStorage.sync``, off the reactor: before saving resume state that claims pieces."""

    def add_pressure_listener(listener: Any) -> None:
        """Pause ``listener`` (``pauseProducing``) while too many pieces wait to be written,
        at once if that is so now; ``resumeProducing`` once the queue has drained."""

    def remove_pressure_listener(listener: Any) -> None:
        """Forget ``listener`` (a peer that disconnected); it is not resumed."""
