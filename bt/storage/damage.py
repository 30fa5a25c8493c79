"""Data that changed under a torrent: which files, which of our pieces that puts in doubt.

A file shortened or deleted while it is seeded, or changed while bt was stopped
or the torrent paused, must not be served as if it were intact. Only the pieces
of the files concerned are checked again, never the whole torrent: the pieces
that still verify come back at once, the rest are downloaded again.

The pure rules live in :mod:`bt.storage.changes`; :class:`FileCheck` runs them over the disk
queue, and :class:`DamageRepair` is the single flight a torrent drives: drop the
pieces, verify them, hand back the ones that passed.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any

from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from bt.errors import DataMissingError
from bt.logs import Logger
from bt.storage.changes import changed_files, describe_files, pieces_of_files, short_files
from bt.storage.disk import DiskQueue
from bt.storage.layout import Layout
from bt.storage.recheck import recheck
from bt.storage.resume import FileStamp

__all__ = ["DamageRepair", "FileCheck"]


class FileCheck:
    """The disk side: file sizes and stamps now, and hashing pieces, in the disk threads."""

    def __init__(self, disk: DiskQueue, layout: Layout, padding: Sequence[bool]) -> None:
        self.disk = disk
        self.layout = layout
        self.padding = tuple(padding)

    def damaged(
        self, has: Callable[[int], bool], skipped: Collection[int] = ()
    ) -> Deferred[tuple[list[int], list[int]]]:
        """(files shorter than our pieces need, every file's bytes on disk now)."""
        found = defer.gatherResults(
            [self.disk.existing_lengths(), self.disk.parted_pieces()], consumeErrors=True
        )
        found.addErrback(lambda failure: failure.value.subFailure)  # the StorageError itself
        return found.addCallback(
            lambda both: (
                short_files(self.layout, both[0], has, self.padding, skipped, set(both[1])),
                both[0],
            )
        )

    def changed(self, saved: Sequence[FileStamp] | None) -> Deferred[list[int]]:
        """Files whose size or mtime differ from ``saved`` (None: nothing to compare, [])."""
        if saved is None:
            return defer.succeed([])

        def compare(now: Sequence[FileStamp]) -> list[int]:
            changed = changed_files(saved, now)
            return list(range(len(now))) if changed is None else changed

        return self.disk.file_stamps().addCallback(compare)

    def verify(self, pieces: Sequence[int]) -> Deferred[list[int]]:
        """The pieces of ``pieces`` that match their hash on disk now."""
        return recheck(self.disk.hash_piece, pieces)


class DamageRepair:
    """Drops the pieces of damaged or changed files, verifies them again, gives back the good.

    The torrent supplies ``has`` (is a piece had now), ``lose(pieces)`` (take
    them out of the bitfield, the resume state and the peers' requests),
    ``regain(pieces)`` (they verified: have them again), ``failed(failure)``
    (a real disk error while checking: the torrent's disk-error path) and
    ``skipped()`` (the files the user skips, never counted as shortened).
    Any number of short reads at once make one check of the file sizes.
    """

    log = Logger()

    def __init__(
        self,
        check: FileCheck,
        name: str,
        file_names: Sequence[str],
        *,
        has: Callable[[int], bool],
        lose: Callable[[list[int]], None],
        regain: Callable[[list[int]], None],
        failed: Callable[[Failure], Any],
        skipped: Callable[[], Collection[int]] = frozenset,
    ) -> None:
        self.check = check
        self.name = name
        self.file_names = tuple(file_names)
        self._has = has
        self._lose = lose
        self._regain = regain
        self._failed = failed
        self._skipped = skipped
        #: Pieces dropped because their data went away; peers may still think we have them.
        self.lost: set[int] = set()
        self._message: str | None = None
        self._checking = False
        self._again = False

    @property
    def error(self) -> str | None:
        """What was damaged, while some of its pieces are still missing (then None)."""
        if self._message is None:
            return None
        self.lost = {index for index in self.lost if not self._has(index)}
        if not self.lost and not self._checking:
            self._message = None
        return self._message

    def read_failed(self, index: int, error: Exception) -> None:
        """A block of ``index`` could not be read for a peer: data gone (which files
        shrank?) or a failing disk (that file's pieces are checked again)."""
        if not self._has(index):
            return
        if isinstance(error, DataMissingError):
            self.short_read()
        else:
            self.read_error(index, error)

    def was_lost(self, index: int) -> bool:
        """Did we announce ``index`` and lose its data since (peers may ask for it)?"""
        return index in self.lost

    def short_read(self) -> None:
        """A read of a piece we have came back short: find the files that shrank."""
        if self._checking:
            self._again = True  # another file may have shrunk after the sizes were read
            return
        self._checking = True
        self._again = False
        checking = self.check.damaged(self._has, self._skipped())
        checking.addCallback(self._damaged)
        checking.addErrback(self._check_failed)
        checking.addErrback(self._unexpected)

    def read_error(self, index: int, error: Exception) -> None:
        """Reading piece ``index`` failed (EIO and the like): its files' pieces are no
        longer trusted. They leave the bitfield and are hashed again; a check that fails
        the same way is a disk error (``failed``), which stops the torrent."""
        padding = self.check.padding
        files = [f for f in self.check.layout.files_of_piece(index) if not padding[f]]
        pieces = self._doubted(files)
        if not pieces:
            return
        self._message = (
            f"cannot read piece {index} of {describe_files(self.file_names, files)}: {error}; "
            f"its {len(pieces)} pieces are checked again"
        )
        self.log.error("{name}: {message}", name=self.name, message=self._message)
        self._drop(pieces, files)

    def _damaged(self, result: tuple[list[int], list[int]]) -> None:
        files, existing = result
        self._checking = False
        if files:
            lengths = self.check.layout.file_lengths
            sizes = ", ".join(
                f"{self.file_names[i]} has {existing[i]} of {lengths[i]} bytes" for i in files[:3]
            )
            more = f" and {len(files) - 3} more files" if len(files) > 3 else ""
            pieces = self._doubted(files)
            self._message = (
                f"data changed on disk: {sizes}{more} (shortened or deleted while in use); "
                f"its {len(pieces)} pieces are checked again, the rest downloaded again"
            )
            self.log.error("{name}: {message}", name=self.name, message=self._message)
            self._drop(pieces, files)
        if self._again:
            self.short_read()

    def _check_failed(self, failure: Failure) -> None:
        self._checking = False
        self._failed(failure)

    def files_changed(self, saved: Sequence[FileStamp] | None, when: str) -> Deferred[None]:
        """Drop the pieces of files changed since ``saved`` stamps; fires once they are
        dropped (their check goes on behind), fails on a disk error."""
        changed = self.check.changed(saved)

        def drop(files: list[int]) -> None:
            pieces = self._doubted(files)
            if not pieces:
                return
            self.log.info(
                "{name}: {files} changed {when}; checking its {count} pieces again",
                name=self.name,
                files=describe_files(self.file_names, files),
                when=when,
                count=len(pieces),
            )
            self._drop(pieces, files)

        return changed.addCallback(drop)

    def _doubted(self, files: list[int]) -> list[int]:
        """The pieces we have that hold bytes of ``files``."""
        return [index for index in pieces_of_files(self.check.layout, files) if self._has(index)]

    def _drop(self, pieces: list[int], files: list[int]) -> None:
        if not pieces:
            return
        self.lost.update(pieces)
        self._lose(pieces)
        verifying = self.check.verify(pieces)
        verifying.addCallback(self._verified, files, len(pieces))
        verifying.addErrback(self._failed)
        verifying.addErrback(self._unexpected)

    def _unexpected(self, failure: Failure) -> None:
        """Not a disk error (``failed`` takes those): a bug, logged whole."""
        self.log.failure("{name}: checking damaged data failed", failure, name=self.name)

    def _verified(self, valid: list[int], files: list[int], total: int) -> None:
        self._regain(valid)
        self.log.info(
            "{name}: {valid} of {total} pieces of {files} verified again{rest}",
            name=self.name,
            valid=len(valid),
            total=total,
            files=describe_files(self.file_names, files),
            rest=f"; downloading the other {total - len(valid)}" if len(valid) < total else "",
        )
