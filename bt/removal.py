"""Removing a torrent from the session: stop it, forget it, and maybe delete its data.

The order matters: the torrent is stopped first (state saved, files closed),
then forgotten in the session's ordered state-folder writes, so the registry
sees one order of events, and a removal that failed to stop still forgets the
torrent (else it would come back at restart).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from twisted.internet import defer
from twisted.internet.defer import Deferred

from bt.storage.delete import delete_files

if TYPE_CHECKING:
    from bt.session import Session

__all__ = ["remove_torrent"]


def remove_torrent(
    session: Session, info_hash: bytes, *, delete_data: bool = False
) -> Deferred[None]:
    """Stop the torrent, forget it, and with ``delete_data`` delete its files.

    Fires once the torrent is stopped (state saved, files closed) and, when
    asked, its files are gone. Folders left empty by the deletion go too.
    """
    session.events.removing(info_hash)
    if info_hash in session.magnets:
        return session.magnets.remove(info_hash)
    torrent = session.get(info_hash)
    info_hash = torrent.metainfo.info_hash  # its key, if named by its other hash
    del session.torrents[info_hash]
    session.memory.added.pop(info_hash, None)
    remembered = info_hash in session.memory.remembered
    session.memory.remembered.discard(info_hash)
    stopped = defer.maybeDeferred(torrent.disownServiceParent)
    resume = session._resume_path(torrent.metainfo)
    parts = session._parts_path(info_hash)
    folder = Path(torrent.download_dir) if torrent.download_dir else None

    def forget() -> None:
        if remembered:
            session.memory.registry.forget(info_hash)
        resume.unlink(missing_ok=True)
        if delete_data and folder is not None:
            delete_files(folder, torrent.metainfo, parts)

    # Forgotten even if stopping failed (else it would come back at restart), and
    # after any settings write queued before: the registry sees one order of events.
    stopped.addErrback(
        lambda failure: session.log.failure("stopping {name}", failure, name=torrent.title)
    )
    stopped.addCallback(lambda _: session.memory.serially(forget))
    stopped.addCallback(
        lambda _: session.log.info(
            "{name}: removed{data}",
            name=torrent.title,
            data=" with its data" if delete_data and folder else "",
        )
    )
    session._removing[info_hash] = stopped

    def removed(result: object) -> object:
        session._removing.pop(info_hash, None)
        return result

    return stopped.addBoth(removed)
