"""TorrentData: one torrent's data as the torrent sees it, in one collaborator.

The layout of its files, the user's choice of them, the inventory of verified
pieces (resume state or a check), the repair of damage under us, closing it
all on stop, the check again after a disk error, and when the resume state is
saved:
soon after pieces are written (at most every ``interval`` seconds while the
torrent ticks, in a moment while it does not) and again whenever a save
failed. The torrent decides *whether* its pieces are worth saving (its
lifecycle); this object keeps the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from bt.bitfield import Bitfield
from bt.errors import ResumeSaveError
from bt.interfaces import IDiskQueue, IStorage
from bt.logs import Logger
from bt.metainfo import Metainfo
from bt.selection import FileSelection
from bt.status import FilePriority
from bt.storage.damage import DamageRepair, FileCheck
from bt.storage.inventory import Inventory, PieceInventory
from bt.storage.layout import Layout

# Inventory (what a load or a check finds) is part of this face, so re-exported.
__all__ = ["Inventory", "TorrentData"]

#: Seconds to wait before saving the resume state of a torrent that does not tick.
SAVE_SOON = 1.0


class TorrentData:
    """Layout, inventory, damage repair and resume saving of one torrent."""

    log = Logger()

    def __init__(
        self,
        metainfo: Metainfo,
        disk: IDiskQueue,
        resume_path: Path | None,
        *,
        storage: IStorage | None,
        file_priorities: Sequence[FilePriority] | None,
        recheck: bool,
        clock: Any,
        has: Callable[[int], bool],
        lose: Callable[[list[int]], None],
        regain: Callable[[list[int]], None],
        failed: Callable[[Failure], Any],
    ) -> None:
        """``has``, ``lose``, ``regain`` and ``failed`` are the damage repair's
        (bt.storage.damage); ``failed`` also takes a failed fsync. ``storage`` is
        closed after the disk queue stops (the queue never closes what it was given)."""
        self.name = metainfo.name
        self._disk = disk
        self._storage = storage
        self.layout = Layout.from_files(metainfo.files, metainfo.piece_length)
        padding = [f.padding for f in metainfo.files]
        #: The user's choice of files, told to the picker and the storage.
        self.selection = FileSelection(self.layout, padding, file_priorities, disk.set_skipped)
        #: Verified pieces at start-up (resume state or a check), and saving them.
        self.inventory = PieceInventory(
            disk, metainfo, self.layout, resume_path, force_recheck=recheck
        )
        #: Files shortened under us or changed while paused: their pieces dropped and checked.
        self.repair = DamageRepair(
            FileCheck(disk, self.layout, padding),
            self.name,
            ["/".join(f.path) for f in metainfo.files],
            has=has,
            lose=lose,
            regain=regain,
            failed=failed,
            skipped=self.selection.skipped,
        )
        self._clock = clock
        self._failed = failed
        #: Something the resume state records changed since it was last saved.
        self.dirty = False
        self._last_save = clock.seconds()
        self._save_call: Any = None
        self._check_call: Any = None

    def load(self) -> Deferred[Inventory]:
        """The pieces on disk at start-up: the resume state if it holds, else a check.

        Skipped files first: prepare must not create them, and checks read their part file.
        """
        loading = self.selection.tell_storage()
        loading.addCallback(lambda _: self._disk.prepare())
        loading.addCallback(lambda _: self.inventory.load())
        return loading

    def close(self) -> Deferred[None]:
        """Make the writes durable, stop the disk queue, close the storage."""
        closing = self._disk.sync()
        closing.addErrback(self._failed)
        closing.addCallback(lambda _: self._disk.stop())
        closing.addCallback(self._close_storage)
        return closing

    def _close_storage(self, _: object) -> None:
        if self._storage is not None:
            self._storage.close()

    def save(self, have: Bitfield, totals: Callable[[], tuple[int, int]]) -> Deferred[None]:
        """Save the verified pieces ``have`` (they are all written) and byte totals now."""
        self.dirty = False
        self._last_save = self._clock.seconds()
        saving = self.inventory.save(have, totals)
        saving.addErrback(self._not_saved)
        saving.addErrback(self._failed)  # the fsync of the data failed: a disk error
        return saving

    def _not_saved(self, failure: Failure) -> None:
        """The state folder failed, not the data: keep downloading, try again next time."""
        failure.trap(ResumeSaveError)
        self.dirty = True
        self.log.error("{name}: {error}", name=self.name, error=failure.value)

    def due(self, now: float, interval: float) -> bool:
        """Is a save due at this tick (something changed, ``interval`` passed)?"""
        return self.dirty and now - self._last_save >= interval

    def save_soon(self, save: Callable[[], object]) -> None:
        """Call ``save`` in a moment if still dirty; for changes while no tick runs."""
        if self._save_call is None or not self._save_call.active():
            self._save_call = self._clock.callLater(SAVE_SOON, self._save_if_dirty, save)

    def _save_if_dirty(self, save: Callable[[], object]) -> None:
        self._save_call = None
        if self.dirty:
            save()

    def check_later(self, delay: float, check: Callable[[], object]) -> None:
        """After a disk error: ``check`` the data again in ``delay`` seconds."""
        self._check_call = self._clock.callLater(delay, self._check_now, check)

    def _check_now(self, check: Callable[[], object]) -> None:
        self._check_call = None
        check()

    def cancel_check(self) -> None:
        self._check_call = _cancelled(self._check_call)

    def cancel(self) -> None:
        """The torrent stops: no check after an error, no save in a moment (it saves
        once more itself)."""
        self.cancel_check()
        self._save_call = _cancelled(self._save_call)


def _cancelled(call: Any) -> None:
    """Cancel a delayed call if it is still to come; None, to forget it."""
    if call is not None and call.active():
        call.cancel()
