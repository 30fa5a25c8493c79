"""FileSelection: which of a torrent's files the user wants, applied to picker and storage.

The pure rules live in bt.priorities (a piece is as urgent as its most urgent
file); this object holds the user's priorities and carries a change to the two
places it matters: the picker's piece priorities and the storage's skipped set
(whose part file takes the bytes of skipped files, bt.storage.partfile).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from twisted.internet import defer
from twisted.internet.defer import Deferred

from bt.policy.picker import PiecePicker
from bt.priorities import piece_priorities, skipped_files, updated_priorities
from bt.status import FilePriority
from bt.storage.layout import Layout

__all__ = ["FileSelection"]


class FileSelection:
    """The user's file priorities; ``set_skipped`` is the disk job that tells the storage."""

    def __init__(
        self,
        layout: Layout,
        padding: Sequence[bool],
        priorities: Sequence[FilePriority] | None,
        set_skipped: Callable[[frozenset[int]], Deferred[None]],
    ) -> None:
        self.layout = layout
        self.padding = list(padding)
        self.priorities = list(priorities or [FilePriority.NORMAL] * layout.num_files)
        self._set_skipped = set_skipped
        #: set_skipped jobs, one at a time (see tell_storage).
        self._jobs: Deferred[None] = defer.succeed(None)

    def piece_priorities(self) -> list[int]:
        return piece_priorities(self.layout, self.priorities, self.padding)

    def skipped(self) -> frozenset[int]:
        """The files the user skips (padding files never count: they are never real)."""
        return skipped_files(self.priorities, self.padding)

    def prioritise(self, picker: PiecePicker) -> None:
        """Give ``picker`` the piece priorities these files make (changed ones only)."""
        for index, priority in enumerate(self.piece_priorities()):
            if picker.piece_priority(index) != priority:
                picker.set_piece_priority(index, priority)

    def change(
        self, changes: Mapping[int, FilePriority], picker: PiecePicker, *, running: bool
    ) -> Deferred[None] | None:
        """Apply ``changes`` (a bad one raises ValueError, changing nothing) to the
        priorities and ``picker``; while ``running``, a change of the skipped set is
        told to the storage, and the Deferred returned fires once it moved the data."""
        before = self.skipped()
        self.priorities = updated_priorities(self.priorities, changes)
        # In the disk threads (the storage orders it against writes there): a file
        # wanted again gets its bytes from the part file, and its new stamp is saved.
        moved = self.tell_storage() if running and self.skipped() != before else None
        self.prioritise(picker)
        return moved

    def tell_storage(self) -> Deferred[None]:
        """Tell the storage which files are skipped, one job at a time.

        Each job reads the set when it runs: two jobs in two disk threads could
        otherwise finish in the wrong order and leave the older set in force.
        """
        done: Deferred[None] = Deferred()

        def run(_: object) -> Deferred[None]:
            job = self._set_skipped(self.skipped())
            job.chainDeferred(done)  # the queue goes on whatever this job's outcome
            return job

        self._jobs.addCallback(run)
        return done
