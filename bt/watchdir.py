"""A watch folder: every ``.torrent`` dropped into it is added to the session.

Polling (not inotify) so it works on every platform and on network shares.
A file is taken only once it has kept the same size and modification time for
one whole scan, so a torrent still being copied in is not read half-written.
Added files are renamed ``NAME.torrent.added`` (as Transmission does), broken
ones ``NAME.torrent.invalid`` with the reason in the log, so a file is never
retried forever nor silently ignored.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from twisted.application.service import Service
from twisted.internet import task

from bt.errors import BtError, DuplicateTorrentError, MetainfoError
from bt.logs import Logger
from bt.metainfo import Metainfo, load_metainfo

__all__ = ["WatchDirectory"]


class WatchDirectory(Service):
    """Scans ``folder`` every ``interval`` seconds and hands new torrents to ``add``."""

    log = Logger()

    def __init__(
        self,
        folder: Path,
        add: Callable[[Metainfo], object],
        *,
        interval: float = 5.0,
        reactor: Any = None,
    ) -> None:
        self.folder = Path(folder)
        self.add = add
        self.interval = interval
        self.reactor = reactor
        self._seen: dict[str, tuple[int, int]] = {}
        #: Files that could not be renamed: skipped while unchanged, not added again.
        self._stuck: dict[str, tuple[int, int]] = {}
        self._loop: task.LoopingCall | None = None

    def startService(self) -> None:
        super().startService()
        if self.reactor is None:
            from twisted.internet import reactor

            self.reactor = reactor
        self.folder.mkdir(parents=True, exist_ok=True)
        self._loop = task.LoopingCall(self.scan)
        self._loop.clock = self.reactor
        self._loop.start(self.interval, now=True).addErrback(
            lambda failure: self.log.failure("watch folder {folder}", failure, folder=self.folder)
        )
        self.log.info("watching {folder} for .torrent files", folder=self.folder)

    def stopService(self) -> None:
        super().stopService()
        if self._loop is not None and self._loop.running:
            self._loop.stop()

    def scan(self) -> None:
        """One pass: take the files that stood still since the previous pass."""
        try:
            names = [n for n in os.listdir(self.folder) if n.lower().endswith(".torrent")]
        except OSError as exc:
            self.log.error(
                "cannot read watch folder {folder}: {error}", folder=self.folder, error=exc
            )
            return
        seen: dict[str, tuple[int, int]] = {}
        for name in sorted(names):
            path = self.folder / name
            try:
                info = path.stat()
            except OSError:
                continue  # gone between listdir and stat
            stamp = (info.st_size, info.st_mtime_ns)
            if self._stuck.get(name) == stamp:
                continue
            if self._seen.get(name) != stamp:
                seen[name] = stamp  # new or still changing: look again next time
                continue
            if not self._take(path):
                self._stuck[name] = stamp
        self._seen = seen

    def _take(self, path: Path) -> bool:
        """Add one file and mark it; False when it could not be marked."""
        try:
            metainfo = load_metainfo(path)
        except MetainfoError as exc:
            self.log.error("watch folder: {error}", error=exc)
            return self._rename(path, ".invalid")
        try:
            self.add(metainfo)
        except DuplicateTorrentError:
            self.log.info("watch folder: {path}: torrent already added", path=path)
        except (BtError, ValueError) as exc:
            # One torrent the session refuses must not stop the folder being watched.
            self.log.error("watch folder: {path}: cannot add: {error}", path=path, error=exc)
            return self._rename(path, ".invalid")
        else:
            self.log.info("watch folder: added {name} from {path}", name=metainfo.name, path=path)
        return self._rename(path, ".added")

    def _rename(self, path: Path, suffix: str) -> bool:
        try:
            os.replace(path, path.with_name(path.name + suffix))
        except OSError as exc:
            # Left in place it would be taken again each scan: say so once, skip it.
            self.log.error("watch folder: cannot rename {path}: {error}", path=path, error=exc)
            return False
        return True
