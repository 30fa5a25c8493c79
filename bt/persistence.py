"""What a session keeps across restarts: its torrents' records and the global limits.

The files are :mod:`bt.registry` (one record and .torrent per torrent) and
:mod:`bt.settings` (the limits last in force). This object decides *when* they
are written: after each change of a remembered torrent or of the limits, one
write at a time and in order, in the disk threads, so the state folder sees the
events in the order they happened and never a half-applied mix.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from twisted.internet import defer
from twisted.internet.defer import Deferred

from bt.errors import BtError
from bt.logs import Logger
from bt.progress import format_bytes
from bt.registry import RegistryEntry, TorrentRecord, TorrentRegistry
from bt.settings import SessionSettings, SettingsFile
from bt.torrentprefs import TorrentPrefs

if TYPE_CHECKING:
    from bt.torrent import Torrent
    from bt.torrentconfig import SharedLimits

__all__ = ["SessionMemory"]


class SessionMemory:
    """The session's state folder, written serially off the reactor."""

    log = Logger()

    def __init__(self, state_dir: Path, run: Callable[..., Deferred[Any]]) -> None:
        """``run(job, *args)`` runs blocking file work (the session's disk threads)."""
        self._run = run
        self.registry = TorrentRegistry(state_dir)
        #: The global limits last in force, kept across restarts.
        self.settings = SettingsFile(state_dir)
        #: Torrents whose settings are saved (not those given their own storage).
        self.remembered: set[bytes] = set()
        #: When each torrent was added (the rest of its record is read off the torrent).
        self.added: dict[bytes, float] = {}
        #: Each torrent's labels and seed-ratio goal (bt.torrentprefs), kept in its record.
        self.prefs: dict[bytes, TorrentPrefs] = {}
        #: What settings.json holds (limits, download folder, seed ratio), as last saved.
        self.saved_settings = SessionSettings()
        self._writes: Deferred[Any] = defer.succeed(None)

    def load(self) -> Iterator[RegistryEntry]:
        """Every remembered torrent, broken entries included (blocking: before the reactor)."""
        return self.registry.load()

    def save(self, torrent: Torrent, torrent_file: bytes | None = None) -> None:
        """Write a remembered torrent's record (and .torrent), in order, off the reactor."""
        info_hash = torrent.metainfo.info_hash
        if info_hash not in self.remembered:
            return
        saved = self.serially(self.registry.save, info_hash, self.record(torrent), torrent_file)
        saved.addErrback(
            lambda failure: self.log.failure("cannot remember torrent settings", failure)
        )

    def record(self, torrent: Torrent) -> TorrentRecord:
        """The torrent's settings as they are now (what :meth:`save` writes)."""
        info_hash = torrent.metainfo.info_hash
        prefs = self.prefs.get(info_hash, TorrentPrefs())
        return TorrentRecord(
            paused=torrent.paused,
            download_dir=torrent.download_dir or None,
            file_priorities=list(torrent.file_priorities),
            upload_limit=torrent.upload_bucket.rate,
            download_limit=torrent.download_bucket.rate,
            added=self.added[info_hash],
            labels=list(prefs.labels),
            seed_ratio_mode=prefs.ratio_mode,
            seed_ratio=prefs.own_ratio,
        )

    def serially(self, job: Callable[..., Any], *args: Any) -> Deferred[Any]:
        """Run a registry job after every one queued before it; fires with its outcome."""
        done: Deferred[Any] = Deferred()

        def run(_: object) -> Deferred[Any]:
            work = self._run(job, *args)
            work.chainDeferred(done)  # the queue goes on whatever this job's outcome
            return work

        self._writes.addCallback(run)
        return done

    def flushed(self) -> Deferred[Any]:
        """Fires once every write queued so far is done (the session waits for it at stop)."""
        return self._writes

    def save_limits(self, limits: SharedLimits) -> Deferred[None]:
        """Save the global limits now in force; never errbacks (a failure is logged)."""
        return self.save_settings(
            replace(
                self.saved_settings,
                upload_limit=limits.upload.rate,
                download_limit=limits.download.rate,
            )
        )

    def save_settings(self, settings: SessionSettings) -> Deferred[None]:
        """Save the session's settings; never errbacks (a failure is logged)."""
        self.saved_settings = settings
        saved = self.serially(self.settings.save, settings)
        saved.addErrback(
            lambda failure: self.log.failure("cannot remember the session settings", failure)
        )
        return saved.addCallback(lambda _: None)

    def restore_limits(
        self, limits: SharedLimits, *, given_upload: bool, given_download: bool, now: float
    ) -> list[str]:
        """Take the global limits saved at run time, unless the configuration gives them.

        Like Transmission's ``settings.json``, the file holds the limits last in
        force; a limit given at start (``--upload-limit``) wins and is saved.
        Returns the problems found (an unreadable file: the given limits apply).
        """
        try:
            saved = self.settings.load()
        except BtError as exc:
            self.log.error("{error}; using the global limits of the command line", error=exc)
            return [str(exc)]
        given = {"upload": given_upload, "download": given_download}
        if saved is not None:
            self.saved_settings = saved
        if saved is None:
            if any(given.values()):
                self.save_limits(limits)
            return []
        if not given["upload"]:
            limits.upload.set_rate(saved.upload_limit, now)
        if not given["download"]:
            limits.download.set_rate(saved.download_limit, now)
        overridden = [
            f"{name} {_shown_rate(old)}"
            for name, old, bucket in (
                ("upload", saved.upload_limit, limits.upload),
                ("download", saved.download_limit, limits.download),
            )
            if given[name] and bucket.rate != old
        ]
        self.log.info(
            "global limits: upload {upload}, download {download} ({source})",
            upload=_shown_rate(limits.upload.rate),
            download=_shown_rate(limits.download.rate),
            source=f"the command line replaces the saved {' and '.join(overridden)}"
            if overridden
            else f"as last set, from {self.settings.path}",
        )
        if overridden:
            self.save_limits(limits)
        return []


def _shown_rate(rate: float | None) -> str:
    return "unlimited" if rate is None else f"{format_bytes(rate)}/s"
