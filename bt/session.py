"""Session: the daemon's root service, holding every torrent of the process.

It owns what torrents share: our peer id, the listening port, the tracker
HTTP client, and the order of shutdown (peers, then trackers, then disks).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from twisted.application.service import MultiService
from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from bt.dht.config import DHTConfig
from bt.dht.service import dht_service
from bt.errors import BtError, DuplicateTorrentError
from bt.extensions.standard import install_standard_extensions
from bt.interfaces import IStorage
from bt.listener import PeerListener
from bt.logs import Logger
from bt.magnet import MagnetLink
from bt.magnets import Magnets
from bt.metainfo import Metainfo, torrent_bytes
from bt.peer.incoming import HALF_OPEN_LIMIT, HALF_OPEN_TIMEOUT, IncomingPeerFactory
from bt.peerid import make_peer_id
from bt.persistence import SessionMemory
from bt.policy.ratelimit import TokenBucket
from bt.policy.slots import ConnectionSlots
from bt.registry import TorrentRecord
from bt.relocation import Relocations
from bt.removal import remove_torrent
from bt.sessionevents import SessionEvents
from bt.sessionprefs import restore_session_prefs
from bt.sessionstatus import session_status
from bt.settings import configured_limit as _given
from bt.settings import user_limit as _limit
from bt.snapshot import torrent_status
from bt.statelock import StateDirLock
from bt.status import UNCHANGED, FilePriority, SessionStatus, TorrentStatus
from bt.storage.disk import DiskQueue
from bt.storage.files import FileStorage
from bt.storage.layout import Layout
from bt.storage.partfile import PartFile
from bt.storage.readcache import ReadCachePool
from bt.storage.resume import resume_key
from bt.storage.threads import DiskThreads
from bt.swarm.swarm import Swarm
from bt.ticker import Ticker
from bt.torrent import Torrent
from bt.torrentconfig import SharedLimits, TorrentConfig
from bt.torrentindex import TorrentIndex
from bt.tracker.announcer import Tracker
from bt.tracker.factory import TrackerFactory


@dataclass(frozen=True)
class SessionConfig:
    """Settings shared by all torrents of one process."""

    download_dir: Path
    state_dir: Path
    listen: str = "tcp:6881"
    torrent: TorrentConfig = field(default_factory=TorrentConfig)
    #: Global rate limits in bytes/s (None: unlimited) and connection ceiling.
    #: UNCHANGED (not given): the limit last in force, saved in the state folder
    #: (see :mod:`bt.settings`), else unlimited; a value given here overrides it.
    upload_limit: float | None = UNCHANGED
    download_limit: float | None = UNCHANGED
    max_connections: int | None = 500
    #: Incoming connections still waiting for their handshake: at most this many
    #: (the oldest is closed to make room), each for at most this many seconds.
    #: They take no connection slot until their handshake arrives.
    half_open_limit: int = HALF_OPEN_LIMIT
    half_open_timeout: float = HALF_OPEN_TIMEOUT
    #: Hash all existing data at start even when resume state looks valid.
    recheck: bool = False
    #: The umask of downloaded files and folders (0o022: 0644/0755); None: the process's.
    data_umask: int | None = None
    #: The DHT node (BEP 5) and its bootstrap nodes; None: no DHT (``--no-dht``).
    dht: DHTConfig | None = None
    #: Settings the command line gave, which win over saved ones (bt.sessionprefs).
    given: frozenset[str] = frozenset({"download_dir", "seed_ratio"})


class Session(MultiService):
    """Root service: owns the torrents; started and stopped by twistd."""

    log = Logger()

    def __init__(
        self, config: SessionConfig, reactor: Any = None, rng: random.Random | None = None
    ) -> None:
        super().__init__()
        if reactor is None:
            from twisted.internet import reactor as default_reactor

            reactor = default_reactor
        self.config = config
        self.reactor = reactor
        self.rng = rng or random.Random()
        self.peer_id = make_peer_id(self.rng)
        #: By info-hash; ``find`` by any (a hybrid's v2 one too, BEP 52).
        self.torrents = TorrentIndex[Torrent](lambda torrent: torrent.metainfo.info_hashes)
        #: Every torrent's tracker clients, sharing one HTTP connection pool.
        self.tracker_factory = TrackerFactory(reactor, self.rng)
        now = reactor.seconds()
        self.limits = SharedLimits(
            TokenBucket(_given(config.upload_limit), now),
            TokenBucket(_given(config.download_limit), now),
            ConnectionSlots(config.max_connections),
            #: One byte budget for every torrent's seeding reads (32 MiB, not 32 MiB each).
            read_cache=ReadCachePool(),
        )
        #: The peer port, bound by ``listen``.
        self.listener = PeerListener(reactor, config.listen)
        #: Held while the session runs: one process per state folder.
        self.state_lock = StateDirLock(config.state_dir)
        #: One timer for every torrent's once-a-second tick.
        self.ticker = Ticker(reactor)
        #: Torrents being stopped and forgotten; adding one again must wait.
        self._removing: dict[bytes, Deferred[Any]] = {}
        #: One pool of disk threads for every torrent: 1,000 torrents, not 2,000 threads.
        self.disk_threads = DiskThreads(reactor, config.torrent.disk_threads)
        #: The torrents and global limits remembered in the state folder.
        self.memory = SessionMemory(config.state_dir, self.disk_threads.run)
        #: What happens to torrents, for the control API's event stream (bt.sessionevents).
        self.events = SessionEvents(self)
        self.dht = dht_service(self)  # the DHT node (bt.dht.service); None: --no-dht
        #: Magnets still fetching their metadata (bt.magnets): torrents once it arrives.
        self.magnets = Magnets(self)
        self.relocations = Relocations(self)  # data moved to another folder (bt.relocation)

    @property
    def port(self) -> int:
        """The port peers reach us on (known once the listener is up)."""
        return self.listener.port

    @property
    def announce_ipv6(self) -> str | None:
        """BEP 7 ``ipv6=``: our address when we listen on one specific IPv6 address."""
        return self.listener.announce_ipv6

    # -- torrents: add, find, remove -------------------------------------------

    def add_torrent(
        self,
        metainfo: Metainfo,
        *,
        paused: bool = False,
        download_dir: Path | None = None,
        file_priorities: Sequence[FilePriority] | None = None,
        storage: IStorage | None = None,
        remember: bool = True,
    ) -> Torrent:
        """Add a torrent; it starts now if the session runs, else with the session.

        ``storage`` replaces the files under ``download_dir`` (say, a
        :class:`~bt.storage.memory.MemoryStorage`); such a torrent is not
        remembered across restarts. Raises DuplicateTorrentError when the
        session already holds the torrent.
        """
        if metainfo.info_hash in self.torrents or metainfo.info_hash in self.magnets:
            raise DuplicateTorrentError(f"{metainfo.name}: already added")
        if metainfo.info_hash in self._removing:
            raise DuplicateTorrentError(f"{metainfo.name}: still being removed; add it again later")
        remembered = remember and storage is None
        copy = torrent_bytes(metainfo) if remembered else None  # before anything starts
        if file_priorities is not None and len(file_priorities) != len(metainfo.files):
            raise ValueError(
                f"{len(file_priorities)} file priorities for {len(metainfo.files)} files"
            )
        record = TorrentRecord(
            paused=paused,
            download_dir=str(download_dir) if download_dir is not None else None,
            file_priorities=list(file_priorities) if file_priorities is not None else None,
            added=self.reactor.seconds(),
        )
        torrent = self._build(metainfo, record, storage)
        if remembered:
            self.memory.remembered.add(metainfo.info_hash)
            self.memory.save(torrent, copy)
        return torrent

    def add_magnet(self, magnet: MagnetLink, **options: Any) -> Any:
        """Fetch a magnet's metadata, then add it as a torrent (see bt.magnets)."""
        return self.magnets.add(magnet, **options)

    def _build(
        self, metainfo: Metainfo, record: TorrentRecord, storage: IStorage | None
    ) -> Torrent:
        layout = Layout.from_files(metainfo.files, metainfo.piece_length)
        folder = Path(record.download_dir) if record.download_dir else self.config.download_dir
        if storage is None:
            parts = PartFile(
                self._parts_path(metainfo.info_hash),
                metainfo.num_pieces,
                metainfo.piece_length,
                len(metainfo.files),
            )
            storage = FileStorage(
                folder, metainfo.files, layout, parts=parts, umask=self.config.data_umask
            )
            shown_folder = str(folder)
        else:
            shown_folder = ""
        self.memory.added[metainfo.info_hash] = record.added
        self.memory.prefs[metainfo.info_hash] = prefs = record.prefs
        config = replace(
            self.config.torrent, seed_ratio=prefs.seed_ratio(self.config.torrent.seed_ratio)
        )
        if record.upload_limit is not None or record.download_limit is not None:
            config = replace(
                config,
                upload_limit=record.upload_limit,
                download_limit=record.download_limit,
            )
        disk = DiskQueue.for_metainfo(
            storage,
            metainfo,
            threads=self.config.torrent.disk_threads,
            reactor=self.reactor,
            high_water=config.disk_high_water(metainfo.piece_length),
            pool=self.disk_threads.pool,
        )
        torrent = Torrent(
            metainfo,
            disk,
            storage=storage,
            peer_id=self.peer_id,
            port=self.port,
            reactor=self.reactor,
            rng=random.Random(self.rng.getrandbits(64)),
            trackers=self.tracker_factory.tiers_for(metainfo),
            config=config,
            limits=self.limits,
            resume_path=self._resume_path(metainfo),
            recheck=self.config.recheck,
            ticker=self.ticker,
            paused=record.paused,
            file_priorities=record.file_priorities,
            download_dir=shown_folder,
        )
        install_standard_extensions(torrent, self.dht)
        self.torrents[metainfo.info_hash] = torrent
        self.events.watch(torrent)  # before it starts: added, then checking
        torrent.setServiceParent(self)
        return torrent

    def _resume_path(self, metainfo: Metainfo) -> Path:
        return self.config.state_dir / "resume" / f"{resume_key(metainfo).hex()}.resume"

    def _parts_path(self, info_hash: bytes) -> Path:
        """Bytes of pieces shared with skipped files (``bt.storage.partfile``)."""
        return self.config.state_dir / "parts" / f"{info_hash.hex()}.parts"

    def get(self, info_hash: bytes) -> Torrent:
        """The torrent with this info-hash (or its other one: BEP 52); UnknownTorrentError
        names it when there is none."""
        torrent = self.torrents.find(info_hash)
        if torrent is None:
            raise self.magnets.unknown(info_hash)
        return torrent

    def remove_torrent(self, info_hash: bytes, *, delete_data: bool = False) -> Deferred[None]:
        """Stop the torrent, forget it, and with ``delete_data`` delete its files (bt.removal)."""
        return remove_torrent(self, info_hash, delete_data=delete_data)

    # -- torrents: the user's controls ----------------------------------------

    def pause_torrent(self, info_hash: bytes) -> Deferred[None]:
        torrent = self.get(info_hash)
        paused = torrent.pause()
        self.memory.save(torrent)
        return paused

    def resume_torrent(self, info_hash: bytes) -> None:
        torrent = self.get(info_hash)
        torrent.resume()
        self.memory.save(torrent)

    def move_torrent(self, info_hash: bytes, folder: Path, *, move: bool = True) -> Deferred[None]:
        """Move the data to ``folder`` (``move`` False: look for it there); see bt.relocation."""
        return self.relocations.move(info_hash, folder, move=move)

    def recheck_torrent(self, info_hash: bytes) -> None:
        self.get(info_hash).recheck()

    def set_torrent_limits(
        self, info_hash: bytes, *, upload: Any = UNCHANGED, download: Any = UNCHANGED
    ) -> None:
        """One torrent's rate limits in bytes/s; None lifts a limit, UNCHANGED keeps it."""
        torrent = self.get(info_hash)
        upload = _limit("upload_limit", upload)
        download = _limit("download_limit", download)
        torrent.set_limits(upload=upload, download=download)
        self.memory.save(torrent)

    def set_file_priorities(self, info_hash: bytes, priorities: Mapping[int, FilePriority]) -> None:
        """Change some files' priorities (skip, normal, high); ValueError names a bad one."""
        torrent = self.get(info_hash)
        torrent.set_file_priorities(priorities)
        self.memory.save(torrent)

    def set_limits(self, *, upload: Any = UNCHANGED, download: Any = UNCHANGED) -> Deferred[None]:
        """The whole process's rate limits in bytes/s; they apply at once and are saved.

        Fires once they are written to the state folder (never errbacks: a
        failed write is logged, and the limits still apply until restart).
        """
        upload = _limit("upload_limit", upload)
        download = _limit("download_limit", download)
        now = self.reactor.seconds()
        if upload is not UNCHANGED:
            self.limits.upload.set_rate(upload, now)
        if download is not UNCHANGED:
            self.limits.download.set_rate(download, now)
        for torrent in self.torrents.values():
            torrent.swarm.limits_changed()
        return self.memory.save_limits(self.limits)

    # -- status -----------------------------------------------------------------

    def torrent_status(self, info_hash: bytes) -> TorrentStatus:
        if info_hash in self.magnets:
            return self.magnets.status(info_hash)
        return torrent_status(self.get(info_hash))

    def torrent_statuses(self) -> list[TorrentStatus]:
        """Every torrent, oldest first, without per-file detail (cheap for 1,000 torrents)."""
        statuses = [torrent_status(t, files=False) for t in self.torrents.values()]
        return statuses + self.magnets.statuses()

    def status(self) -> SessionStatus:
        return session_status(self)

    # -- remembering torrents across restarts ------------------------------------

    def restore(self) -> list[str]:
        """Add every torrent remembered in the state folder; returns the problems found.

        Blocking file reads: call it before the reactor runs (``makeService``).
        A broken entry is reported and skipped, never fatal: one bad file must
        not keep a seedbox's other torrents down.
        """
        problems = self.memory.restore_limits(
            self.limits,
            given_upload=self.config.upload_limit is not UNCHANGED,
            given_download=self.config.download_limit is not UNCHANGED,
            now=self.reactor.seconds(),
        )
        restore_session_prefs(self)
        for entry in self.memory.load():
            if entry.magnet is not None:
                self.magnets.add(entry.magnet, record=entry.record)  # saved already
                continue
            if entry.metainfo is None:
                problems.append(entry.error or entry.info_hash_hex)
                self.log.error("cannot restore torrent: {error}", error=entry.error)
                continue
            if entry.metainfo.info_hash in self.torrents:
                continue
            try:
                self._build(entry.metainfo, entry.record, None)
            except (ValueError, BtError) as exc:
                problems.append(f"{entry.info_hash_hex}: {exc}")
                self.log.error(
                    "cannot restore {hash}: {error}", hash=entry.info_hash_hex, error=exc
                )
                continue
            self.memory.remembered.add(entry.metainfo.info_hash)
        return problems

    def run_blocking(self, job: Callable[..., Any], *args: Any) -> Deferred[Any]:
        """Run blocking file work off the reactor (the watch folder's, say)."""
        return self.disk_threads.run(job, *args)

    def tracker_for_url(self, url: str) -> Tracker | None:
        """A client for one announce URL; None for schemes bt does not speak."""
        return self.tracker_factory.for_url(url)

    def torrent_for(self, info_hash: bytes) -> Swarm | None:
        """The swarm an incoming handshake joins: that of a running torrent (or magnet)."""
        torrent = self.torrents.find(info_hash)
        if torrent is None:
            return self.magnets.fetches.find(info_hash)
        return torrent.swarm if torrent.running else None

    def privilegedStartService(self) -> None:
        super().privilegedStartService()  # a JSON log starts first and sees what follows
        self.listen()

    def lock_state_dir(self) -> None:
        """Take the state folder's lock, or StateDirBusy naming the daemon that has it.

        Idempotent; twistd's ``makeService`` takes it before forking, the
        session itself at start (after twistd dropped root, for ``--uid``).
        """
        self.state_lock.acquire()

    def listen(self) -> None:
        """Bind the peer port or raise BtError naming ``--listen`` and the cause.

        Idempotent: twistd's ``makeService`` binds before forking (see
        bt.startup), ``privilegedStartService`` before dropping privileges,
        embedders at start.
        """
        if self.listener.listening is not None:
            return
        factory = IncomingPeerFactory(
            self.peer_id,
            self,
            self.reactor,
            self.limits.connections,
            half_open_limit=self.config.half_open_limit,
            half_open_timeout=self.config.half_open_timeout,
            dht=self.dht.advert if self.dht is not None else None,
        )
        self.listener.listen(factory)
        for torrent in self.torrents.values():
            torrent.port = self.port
            torrent.announce_ipv6 = self.announce_ipv6
        self.magnets.listening(self.port)
        self.log.info("listening for peers on port {port}", port=self.port)

    def startService(self) -> None:
        self.lock_state_dir()
        try:
            self.listen()
        except BaseException:
            self.state_lock.release()
            raise
        # The disk threads first: starting torrents queue disk jobs at once.
        self.disk_threads.start()
        super().startService()

    def stopService(self) -> defer.Deferred[None]:
        """Stop accepting peers, then stop every torrent, then close tracker connections."""
        stopped: defer.Deferred[Any] = defer.succeed(None)
        stopped.addCallback(lambda _: self.listener.stop())
        # MultiService stops children concurrently; each torrent orders its own parts.
        stopped.addCallback(lambda _: MultiService.stopService(self))
        stopped.addErrback(lambda failure: self.log.failure("stopping torrents failed", failure))
        stopped.addCallback(lambda _: self.memory.flushed())
        stopped.addCallback(lambda _: self.disk_threads.stop())
        stopped.addCallback(lambda _: self.tracker_factory.close())
        stopped.addBoth(self._release_state_dir)
        return stopped

    def _release_state_dir(self, result: object) -> None:
        """Last of all: every file in the state folder is written by now."""
        self.state_lock.release()
        if isinstance(result, Failure):
            self.log.failure("stopping the session failed", result)
