"""What a torrent holds on disk: from resume state when it can be trusted, else by hashing.

``PieceInventory`` answers two questions for the torrent: at start-up, which
pieces are verified on disk (and the saved transfer counters); while running,
save that knowledge durably. Both run their blocking parts in the disk queue.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twisted.internet import defer
from twisted.internet.defer import Deferred

from bt.bitfield import Bitfield
from bt.logs import Logger
from bt.metainfo import Metainfo
from bt.storage.changes import changed_files, describe_files, pieces_of_files
from bt.storage.disk import DiskQueue
from bt.storage.layout import Layout
from bt.storage.recheck import pieces_with_data, recheck
from bt.storage.resume import (
    FileStamp,
    ResumeError,
    ResumeState,
    load_resume,
    resume_key,
    save_resume,
)


@dataclass(frozen=True)
class Inventory:
    """Verified pieces on disk, and the counters saved with them (0 after a check)."""

    pieces: list[int]
    uploaded: int = 0
    downloaded: int = 0
    #: Exactly the resume state as saved: nothing new to write (10,000 torrents
    #: restarted must not rewrite 10,000 unchanged files, each with two fsyncs).
    saved: bool = False


class PieceInventory:
    """Loads, checks and saves one torrent's verified-piece state."""

    log = Logger()

    def __init__(
        self,
        disk: DiskQueue,
        metainfo: Metainfo,
        layout: Layout,
        resume_path: Path | None,
        *,
        force_recheck: bool = False,
    ) -> None:
        self.disk = disk
        self.metainfo = metainfo
        self.layout = layout
        self.resume_path = resume_path
        self.force_recheck = force_recheck
        self._saving: Deferred[None] | None = None
        #: Each file's (size, mtime) when last loaded or saved: what "changed" is measured
        #: against when a paused torrent resumes (None before either).
        self.stamps: tuple[FileStamp, ...] | None = None

    @property
    def name(self) -> str:
        return self.metainfo.name

    def load(self) -> Deferred[Inventory]:
        """Valid resume state: its pieces, no hashing. Otherwise check the data on disk."""
        if self.resume_path is None or self.force_recheck:
            return self.check("--recheck asked for it" if self.force_recheck else None)
        stamps = self.disk.file_stamps()
        saved = self.disk.call(load_resume, self.resume_path)
        saved.addErrback(lambda failure: failure.trap(ResumeError) and failure.value)
        both = defer.gatherResults([saved, stamps], consumeErrors=True)
        both.addErrback(lambda failure: failure.value.subFailure)  # the StorageError itself
        both.addCallback(self._use)
        return both

    def _use(self, result: list[Any]) -> Deferred[Inventory] | Inventory:
        data, stamps = result
        if data is None:
            return self.check(None)
        if isinstance(data, ResumeError):  # the state file could not be read
            return self.check(f"resume state unusable ({data})")
        try:
            state = ResumeState.decode(data, resume_key(self.metainfo), self.metainfo.num_pieces)
        except ResumeError as exc:
            return self.check(f"resume state unusable ({exc})")
        changed = changed_files(state.files, stamps)
        if changed is None:
            return self.check("the resume state lists other files")
        self.stamps = tuple(stamps)
        if changed:
            return self._check_files(state, changed)
        self.log.info(
            "{name}: resumed {count} verified pieces from saved state",
            name=self.name,
            count=state.have.count(),
        )
        return Inventory(list(state.have), state.uploaded, state.downloaded, saved=True)

    def _check_files(self, state: ResumeState, changed: list[int]) -> Deferred[Inventory]:
        """Trust the saved pieces of unchanged files; hash only the changed files' pieces."""
        doubt = set(pieces_of_files(self.layout, changed))
        trusted = [index for index in state.have if index not in doubt]
        names = ["/".join(entry.path) for entry in self.metainfo.files]
        self.log.info(
            "{name}: {files} changed since the resume state was saved; "
            "checking their {count} pieces, trusting the other {trusted}",
            name=self.name,
            files=describe_files(names, changed),
            count=len(doubt),
            trusted=len(trusted),
        )
        found = self._pieces_with_data()
        found.addCallback(
            lambda candidates: recheck(self.disk.hash_piece, [i for i in candidates if i in doubt])
        )
        return found.addCallback(
            lambda valid: Inventory(sorted(trusted + valid), state.uploaded, state.downloaded)
        )

    def _pieces_with_data(self) -> Deferred[list[int]]:
        """Pieces some of whose bytes exist: in the files, or in the part file (pieces that
        straddle into skipped files count too)."""
        found = defer.gatherResults(
            [self.disk.existing_lengths(), self.disk.parted_pieces()], consumeErrors=True
        )
        found.addErrback(lambda failure: failure.value.subFailure)
        padding = [f.padding for f in self.metainfo.files]
        return found.addCallback(
            lambda both: pieces_with_data(self.layout, both[0], padding, both[1])
        )

    def check(self, why: str | None) -> Deferred[Inventory]:
        """Hash whatever data exists; a seed seeds and a partial download resumes."""
        if why:
            self.log.info("{name}: checking existing data: {why}", name=self.name, why=why)
        found = self._pieces_with_data()
        found.addCallback(self._hash_existing)
        found.addCallback(Inventory)
        return found

    def _hash_existing(self, candidates: list[int]) -> Deferred[list[int]]:
        if not candidates:
            return defer.succeed([])
        self.log.info(
            "{name}: checking {count} pieces of existing data",
            name=self.name,
            count=len(candidates),
        )
        step = max(1, len(candidates) // 10)

        def progress(done: int, total: int) -> None:
            if done % step == 0 and done < total:
                self.log.info(
                    "{name}: checked {done}/{total} pieces", name=self.name, done=done, total=total
                )

        return recheck(self.disk.hash_piece, candidates, on_progress=progress)

    def _remember(self, stamps: Sequence[FileStamp]) -> None:
        self.stamps = tuple(stamps)

    def save(self, have: Bitfield, counters: Callable[[], tuple[int, int]]) -> Deferred[None]:
        """fsync the data, then save ``have`` (pieces already written); one save at a time.

        ``counters()`` gives (uploaded, downloaded) when the state is written.
        """
        if self.resume_path is None:
            # Nothing to save, but a paused torrent compares these stamps when resumed.
            stamps = self.disk.file_stamps()
            return stamps.addCallback(self._remember)
        if self._saving is not None:
            return self._saving
        path = self.resume_path
        info_hash = resume_key(self.metainfo)
        saving = self.disk.sync()
        saving.addCallback(lambda _: self.disk.file_stamps())
        saving.addCallback(lambda stamps: self._remember(stamps) or stamps)
        saving.addCallback(
            lambda stamps: self.disk.call(
                save_resume,
                path,
                ResumeState(info_hash, have, tuple(stamps), *counters()).encode(),
            )
        )

        def done(result: object) -> object:
            self._saving = None
            return result

        saving.addBoth(done)
        self._saving = saving
        return saving
