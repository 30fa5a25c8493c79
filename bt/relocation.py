"""Moving a torrent's data to another download folder (Transmission's torrent-set-location).

A torrent's folder is fixed for its life (its storage opens files under it), so
a move rebuilds the torrent: stop it (writes flushed, files closed, resume
state saved), move its files in the disk threads (:mod:`bt.storage.relocate`),
remember the new folder, and build the torrent again from the same record with
only ``download_dir`` changed, paused if it was paused. The files keep their
size and modification time, so the saved resume state applies to them and no
verified piece is hashed or downloaded again.

With ``move=False`` the data is not touched: the torrent looks for its files in
the new folder, and its resume state is dropped so it checks what is there.

The file move and the registry write are one job in the session's ordered
state-folder writes (``SessionMemory.serially``): a shutdown waits for both,
and the record never names a folder the files are not in. If the move fails,
every file is back in the old folder and the torrent is rebuilt there.

The event stream sees the old torrent stop and the rebuilt one added under the
same info-hash.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from bt.errors import BtError, MoveError
from bt.logs import Logger
from bt.registry import TorrentRecord, TorrentRegistry
from bt.storage.relocate import Relocated, relocate_files

if TYPE_CHECKING:
    from bt.session import Session

__all__ = ["Relocations"]

log = Logger()


class Relocations:
    """The session's moves of torrents' data, one at a time per torrent."""

    def __init__(self, session: Session) -> None:
        self._session = session
        #: Torrents whose move is under way (a second move of one is refused meanwhile).
        self.moving: set[bytes] = set()

    def move(self, info_hash: bytes, download_dir: Path, *, move: bool = True) -> Deferred[None]:
        """Move the torrent's data to ``download_dir`` (absolute); fires once it runs
        there again, or errbacks with MoveError (the torrent then runs where it was)."""
        session = self._session
        folder = Path(download_dir)
        if not folder.is_absolute():
            raise MoveError(f"{download_dir}: the new download folder must be an absolute path")
        folder = Path(os.path.normpath(folder))
        if info_hash in session.magnets:
            return session.magnets.set_download_dir(info_hash, folder)
        torrent = session.get(info_hash)
        info_hash = torrent.metainfo.info_hash  # its key, if named by its other hash
        if not torrent.download_dir:
            raise MoveError(f"{torrent.title}: its data is not in files; it cannot be moved")
        if info_hash in self.moving:
            raise MoveError(f"{torrent.title}: already being moved")
        old = Path(torrent.download_dir)
        if Path(os.path.normpath(old)) == folder:
            return defer.succeed(None)
        memory = session.memory
        before = memory.record(torrent)
        after = replace(before, download_dir=str(folder))
        remembered = info_hash in memory.remembered
        resume = session._resume_path(torrent.metainfo)
        self.moving.add(info_hash)
        log.info(
            "{name}: {how} {old} to {new}",
            name=torrent.title,
            how="moving its data from" if move else "looking for its data in",
            old=old,
            new=folder,
        )
        stopped = defer.maybeDeferred(torrent.disownServiceParent)

        def relocate(_: object) -> Deferred[Any]:
            return memory.serially(
                _relocate,
                old if move else None,
                folder,
                torrent.metainfo.files,
                memory.registry if remembered else None,
                info_hash,
                after,
                None if move else resume,
            )

        def rebuild(outcome: object) -> object:
            self.moving.discard(info_hash)
            if session.torrents.get(info_hash) is not torrent:
                return outcome  # removed meanwhile
            record = before if isinstance(outcome, Failure) else after
            del session.torrents[info_hash]
            session._build(torrent.metainfo, record, None)
            if isinstance(outcome, Relocated):
                log.info(
                    "{name}: now in {new} ({renamed} renamed, {copied} copied{left})",
                    name=torrent.title,
                    new=folder,
                    renamed=outcome.renamed,
                    copied=outcome.copied,
                    left=f"; could not delete {', '.join(outcome.left_behind)}"
                    if outcome.left_behind
                    else "",
                )
            return outcome

        stopped.addCallback(relocate)
        stopped.addBoth(rebuild)
        return stopped.addCallback(lambda _: None)


def _relocate(
    old: Path | None,
    new: Path,
    files: Any,
    registry: TorrentRegistry | None,
    info_hash: bytes,
    record: TorrentRecord,
    resume: Path | None,
) -> Relocated:
    """Blocking, in the disk threads: move (``old`` None: no move, drop ``resume``), then
    remember the new folder."""
    moved = Relocated() if old is None else relocate_files(old, new, files)
    if resume is not None:
        resume.unlink(missing_ok=True)  # what is in the new folder gets checked
    if registry is not None:
        try:
            registry.save(info_hash, record)
        except (OSError, BtError) as exc:  # the files are moved: the torrent runs there
            log.error("cannot remember the new folder {new}: {error}", new=new, error=exc)
    return moved
