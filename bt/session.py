"""Session: the daemon's root service, holding every torrent of the process.

It owns what torrents share: our peer id, the listening port, the tracker
HTTP client, and the order of shutdown (peers, then trackers, then disks).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from twisted.application.service import MultiService
from twisted.internet import defer
from twisted.internet.address import IPv6Address
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IListeningPort
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool

from bt import __version__
from bt.errors import TrackerError
from bt.metainfo import Metainfo
from bt.peer.protocol import IncomingPeerFactory
from bt.policy.ratelimit import TokenBucket
from bt.policy.slots import ConnectionSlots
from bt.storage.disk import DiskQueue
from bt.storage.files import FileStorage
from bt.storage.layout import Layout
from bt.torrent import SharedLimits, Torrent, TorrentConfig
from bt.tracker.announcer import Tracker
from bt.tracker.http import HTTPTracker, make_http_client
from bt.tracker.tiers import build_tiers
from bt.tracker.udp import UDPTracker


@dataclass(frozen=True)
class SessionConfig:
    """Settings shared by all torrents of one process."""

    download_dir: Path
    state_dir: Path
    listen: str = "tcp:6881"
    torrent: TorrentConfig = field(default_factory=TorrentConfig)
    #: Global rate limits in bytes/s (None: unlimited) and connection ceiling.
    upload_limit: float | None = None
    download_limit: float | None = None
    max_connections: int | None = 500
    #: Hash all existing data at start even when resume state looks valid.
    recheck: bool = False


def make_peer_id(rng: random.Random) -> bytes:
    """Azureus-style peer id: ``-BTvvvv-`` and 12 random printable bytes."""
    digits = "".join(f"{int(p):x}" for p in __version__.split(".")[:3]).ljust(4, "0")[:4]
    alphabet = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return f"-BT{digits}-".encode() + bytes(rng.choice(alphabet) for _ in range(12))


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
        self.torrents: dict[bytes, Torrent] = {}
        self.http_client, self._http_pool = make_http_client(reactor)
        now = reactor.seconds()
        self.limits = SharedLimits(
            TokenBucket(config.upload_limit, now),
            TokenBucket(config.download_limit, now),
            ConnectionSlots(config.max_connections),
        )
        self._listening: IListeningPort | None = None
        #: One pool of disk threads for every torrent: 1,000 torrents, not 2,000 threads.
        self.disk_threads = ThreadPool(
            minthreads=1, maxthreads=config.torrent.disk_threads, name="bt-disk"
        )
        self._disk_trigger: Any = None

    @property
    def port(self) -> int:
        """The port peers reach us on (known once the listener is up)."""
        if self._listening is not None:
            return self._listening.getHost().port
        return 6881

    @property
    def announce_ipv6(self) -> str | None:
        """BEP 7 ``ipv6=``: our address when we listen on one specific IPv6 address.

        Listening on all interfaces (``::``) or IPv4 says nothing useful: the
        tracker sees the address we connect from.
        """
        if self._listening is None:
            return None
        host = self._listening.getHost()
        if isinstance(host, IPv6Address) and host.host not in ("::", "::0"):
            return host.host
        return None

    def add_torrent(self, metainfo: Metainfo) -> Torrent:
        """Add a torrent; it starts now if the session runs, else with the session."""
        if metainfo.info_hash in self.torrents:
            return self.torrents[metainfo.info_hash]
        layout = Layout.from_files(metainfo.files, metainfo.piece_length)
        storage = FileStorage(self.config.download_dir, metainfo.files, layout)
        disk = DiskQueue(
            storage,
            metainfo.piece_hashes,
            metainfo.piece_size,
            threads=self.config.torrent.disk_threads,
            reactor=self.reactor,
            high_water=self.config.torrent.disk_high_water,
            pool=self.disk_threads,
        )
        torrent = Torrent(
            metainfo,
            disk,
            storage=storage,
            peer_id=self.peer_id,
            port=self.port,
            reactor=self.reactor,
            rng=random.Random(self.rng.getrandbits(64)),
            trackers=self._trackers_for(metainfo),
            config=self.config.torrent,
            limits=self.limits,
            resume_path=self.config.state_dir / "resume" / f"{metainfo.info_hash.hex()}.resume",
            recheck=self.config.recheck,
        )
        self.torrents[metainfo.info_hash] = torrent
        torrent.setServiceParent(self)
        return torrent

    def _trackers_for(self, metainfo: Metainfo) -> list[Tracker]:
        """BEP 12: one tier per announce-list entry; each tier is announced to on its own."""

        def make_tracker(url: str) -> Tracker | None:
            try:
                return self.tracker_for_url(url)
            except TrackerError as exc:
                self.log.warn("{name}: skipping tracker: {error}", name=metainfo.name, error=exc)
                return None

        tiers = build_tiers(metainfo.trackers, make_tracker, self.rng)
        if not tiers:
            self.log.warn(
                "{name}: no usable tracker; waiting for incoming peers", name=metainfo.name
            )
        return list(tiers)

    def tracker_for_url(self, url: str) -> Tracker | None:
        """A client for one announce URL; None for schemes bt does not speak."""
        if url.startswith(("http://", "https://")):
            return HTTPTracker(url, self.http_client, self.reactor)
        if url.startswith("udp://"):
            # 15 s doubling, 4 tries: about 4 minutes before a dead tracker counts as failed.
            return UDPTracker(
                url, self.reactor, rng=random.Random(self.rng.getrandbits(64)), max_retries=3
            )
        return None

    def torrent_for(self, info_hash: bytes) -> Torrent | None:
        torrent = self.torrents.get(info_hash)
        return torrent if torrent is not None and torrent.running else None

    def privilegedStartService(self) -> None:
        endpoint = serverFromString(self.reactor, self.config.listen)
        factory = IncomingPeerFactory(self.peer_id, self, self.reactor, self.limits.connections)
        outcome: list[Any] = []
        endpoint.listen(factory).addBoth(outcome.append)
        if not outcome:
            raise RuntimeError(f"--listen {self.config.listen}: did not start listening")
        if isinstance(outcome[0], Failure):
            outcome[0].raiseException()
        self._listening = outcome[0]
        for torrent in self.torrents.values():
            torrent.port = self.port
            torrent.announce_ipv6 = self.announce_ipv6
        self.log.info("listening for peers on port {port}", port=self.port)
        super().privilegedStartService()

    def startService(self) -> None:
        # The disk threads first: starting torrents queue disk jobs at once.
        self.disk_threads.start()
        # Safety net, as for the reactor's pool: non-daemon threads would hang exit.
        self._disk_trigger = self.reactor.addSystemEventTrigger(
            "during", "shutdown", self._disk_threads_at_shutdown
        )
        super().startService()

    def _disk_threads_at_shutdown(self) -> None:
        self._disk_trigger = None  # firing: it must not be removed now
        self._stop_disk_threads()

    def _stop_disk_threads(self) -> None:
        if self._disk_trigger is not None:
            self.reactor.removeSystemEventTrigger(self._disk_trigger)
            self._disk_trigger = None
        if self.disk_threads.started:
            self.disk_threads.stop()  # every torrent's queue is idle by now: a quick join

    def stopService(self) -> defer.Deferred[None]:
        """Stop accepting peers, then stop every torrent, then close tracker connections."""
        stopped: defer.Deferred[Any] = defer.succeed(None)
        if self._listening is not None:
            listening, self._listening = self._listening, None
            stopped.addCallback(lambda _: listening.stopListening())
        # MultiService stops children concurrently; each torrent orders its own parts.
        stopped.addCallback(lambda _: MultiService.stopService(self))
        stopped.addErrback(lambda failure: self.log.failure("stopping torrents failed", failure))
        stopped.addCallback(lambda _: self._stop_disk_threads())
        stopped.addCallback(lambda _: self._http_pool.closeCachedConnections())
        stopped.addCallback(lambda _: None)
        return stopped
