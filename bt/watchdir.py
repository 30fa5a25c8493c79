"""A watch folder: every ``.torrent`` (or ``.magnet``, one link) dropped into it is added.

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from twisted.application.service import Service
from twisted.internet import task
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThreadPool

from bt.errors import BtError, DuplicateTorrentError, MagnetError, MetainfoError
from bt.logs import Logger
from bt.magnet import MAX_MAGNET_LENGTH, MagnetLink, parse_magnet
from bt.metainfo import Metainfo, load_metainfo

__all__ = ["WatchDirectory"]


Stamp = tuple[int, int]  # size, mtime in ns


class WatchDirectory(Service):
    """Scans ``folder`` every ``interval`` seconds and hands new torrents to ``add``.

    Listing, reading and renaming files run through ``run_blocking`` (the
    session's disk threads; a thread of the reactor's pool by default), never
    in the reactor thread: a watch folder may sit on a slow network share.
    """

    log = Logger()

    def __init__(
        self,
        folder: Path,
        add: Callable[[Metainfo], object],
        *,
        add_magnet: Callable[[MagnetLink], object] | None = None,
        interval: float = 5.0,
        reactor: Any = None,
        run_blocking: Callable[..., Deferred[Any]] | None = None,
    ) -> None:
        self.folder = Path(folder)
        self.add = add
        #: ``NAME.magnet`` files hold one magnet link each (without it they are left alone).
        self.add_magnet = add_magnet
        self.interval = interval
        self.reactor = reactor
        self._run_blocking = run_blocking
        self._seen: dict[str, Stamp] = {}
        #: Files that could not be renamed: skipped while unchanged, not added again.
        self._stuck: dict[str, Stamp] = {}
        self._loop: task.LoopingCall | None = None

    def startService(self) -> None:
        super().startService()
        if self.reactor is None:
            from twisted.internet import reactor

            self.reactor = reactor
        if self._run_blocking is None:
            pool = self.reactor.getThreadPool()
            self._run_blocking = lambda job, *args: deferToThreadPool(
                self.reactor, pool, job, *args
            )
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

    def scan(self) -> Deferred[None]:
        """One pass: take the files that stood still since the previous pass."""
        assert self._run_blocking is not None  # set by startService
        suffixes = (".torrent", ".magnet") if self.add_magnet is not None else (".torrent",)
        surveyed = self._run_blocking(
            _survey, self.folder, dict(self._seen), dict(self._stuck), suffixes
        )
        surveyed.addCallback(self._take_ready)
        surveyed.addErrback(
            lambda failure: self.log.failure("watch folder {folder}", failure, folder=self.folder)
        )
        return surveyed

    def _take_ready(self, survey: _Survey) -> Deferred[None] | None:
        if survey.error is not None:
            self.log.error(
                "cannot read watch folder {folder}: {error}", folder=self.folder, error=survey.error
            )
            return None
        self._seen = survey.changing
        marks = [(path, stamp, self._take(path, loaded)) for path, stamp, loaded in survey.ready]
        if not marks:
            return None
        assert self._run_blocking is not None
        renamed = self._run_blocking(_rename_all, [(path, suffix) for path, _, suffix in marks])
        renamed.addCallback(self._note_stuck, marks)
        return renamed

    def _take(self, path: Path, loaded: Metainfo | MagnetLink | BtError) -> str:
        """Add one torrent; the suffix its file gets."""
        if isinstance(loaded, BtError):
            self.log.error("watch folder: {error}", error=loaded)
            return ".invalid"
        try:
            if isinstance(loaded, MagnetLink):
                assert self.add_magnet is not None
                self.add_magnet(loaded)
            else:
                self.add(loaded)
        except DuplicateTorrentError:
            self.log.info("watch folder: {path}: torrent already added", path=path)
        except (BtError, ValueError) as exc:
            # One torrent the session refuses must not stop the folder being watched.
            self.log.error("watch folder: {path}: cannot add: {error}", path=path, error=exc)
            return ".invalid"
        else:
            name = loaded.display_name if isinstance(loaded, MagnetLink) else loaded.name
            self.log.info("watch folder: added {name} from {path}", name=name, path=path)
        return ".added"

    def _note_stuck(
        self, failures: dict[Path, OSError], marks: list[tuple[Path, Stamp, str]]
    ) -> None:
        for path, stamp, _ in marks:
            error = failures.get(path)
            if error is not None:
                # Left in place it would be taken again each scan: say so once, skip it.
                self.log.error(
                    "watch folder: cannot rename {path}: {error}", path=path, error=error
                )
                self._stuck[path.name] = stamp


# -- in a thread ------------------------------------------------------------------------


@dataclass
class _Survey:
    #: Files seen for the first time or changed since the last scan: looked at again.
    changing: dict[str, Stamp] = field(default_factory=dict)
    #: Files that stood still for a whole scan, read: a Metainfo or why not.
    ready: list[tuple[Path, Stamp, Metainfo | MagnetLink | BtError]] = field(default_factory=list)
    error: OSError | None = None


def _survey(
    folder: Path,
    seen: dict[str, Stamp],
    stuck: dict[str, Stamp],
    suffixes: tuple[str, ...] = (".torrent",),
) -> _Survey:
    survey = _Survey()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        names = sorted(n for n in os.listdir(folder) if n.lower().endswith(suffixes))
    except OSError as exc:
        survey.error = exc
        return survey
    for name in names:
        path = folder / name
        try:
            info = path.stat()
        except OSError:
            continue  # gone between listdir and stat
        stamp = (info.st_size, info.st_mtime_ns)
        if stuck.get(name) == stamp:
            continue
        if seen.get(name) != stamp:
            survey.changing[name] = stamp  # new or still changing: look again next time
            continue
        try:
            loaded: Metainfo | MagnetLink | BtError = _load(path)
        except (MetainfoError, MagnetError) as exc:
            loaded = exc
        survey.ready.append((path, stamp, loaded))
    return survey


def _load(path: Path) -> Metainfo | MagnetLink:
    if not path.name.lower().endswith(".magnet"):
        return load_metainfo(path)
    try:
        text = path.read_bytes()[: MAX_MAGNET_LENGTH + 1].decode("utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise MagnetError(f"{path}: cannot read a magnet link: {exc}") from None
    try:
        return parse_magnet(text)
    except MagnetError as exc:
        raise MagnetError(f"{path}: {exc}") from None


def _rename_all(marks: list[tuple[Path, str]]) -> dict[Path, OSError]:
    failures: dict[Path, OSError] = {}
    for path, suffix in marks:
        try:
            os.replace(path, path.with_name(path.name + suffix))
        except OSError as exc:
            failures[path] = exc
    return failures
