"""Torrent: one torrent's swarm, picker, disk queue and trackers, and the completion chain.

The completion chain is one Deferred per piece: the last block arrives ->
``disk.verify_and_write`` (hash, then write, in the disk threads) ->
``picker.have`` -> HAVE to every peer that lacks the piece. Its errback
resets the piece and blames the peers that sent it.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from twisted.application.service import Service
from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from bt.bitfield import Bitfield
from bt.candidates import Address, CandidatePool
from bt.dialer import Dialer, PeerSource
from bt.errors import (
    DataMissingError,
    PieceHashError,
    RemoteProtocolError,
    ResumeSaveError,
    StorageError,
)
from bt.interfaces import IStorage
from bt.lifecycle import WHY_CHECKING, WHY_LEAVING, Action, Event, Lifecycle, TorrentState
from bt.logs import Logger
from bt.metainfo import Metainfo
from bt.peer.connection import HandshakeReceived
from bt.peer.link import PeerLink
from bt.peer.messages import BitfieldMessage, Cancel, Have, NotInterested, Piece, Request
from bt.peer.protocol import PeerProtocol, TorrentPeerFactory
from bt.peer.upload import UploadQueue
from bt.policy.blame import Blame
from bt.policy.choker import Choker, PeerSnapshot
from bt.policy.picker import PiecePicker
from bt.policy.ratelimit import RateLimit, TokenBucket
from bt.policy.slots import ConnectionSlots
from bt.progress import describe_progress, describe_totals
from bt.rate import RateMeter
from bt.selection import FileSelection
from bt.status import UNCHANGED, FilePriority
from bt.storage.damage import DamageRepair, FileCheck
from bt.storage.disk import DiskQueue
from bt.storage.inventory import Inventory, PieceInventory
from bt.storage.layout import Layout
from bt.storage.readcache import PieceReadCache, ReadCachePool
from bt.ticker import Ticker
from bt.tracker.announce import AnnounceRequest
from bt.tracker.announcer import Announcer, Tracker
from bt.tracker.scrape import ScrapeResult

__all__ = ["PeerSource", "SharedLimits", "Torrent", "TorrentConfig"]

#: Seconds (ticks) between choking rounds, as in BEP 3 and every reference client.
CHOKE_INTERVAL = 10
#: Seconds between the ticks of a torrent without peers (downloading, finished).
IDLE_TICK_INTERVAL = 5.0
IDLE_SEED_TICK_INTERVAL = 30.0
#: Peers asked of a tracker per announce, downloading or seeding (``stopped`` asks none).
NUMWANT = 50


@dataclass(frozen=True)
class TorrentConfig:
    """Per-torrent knobs; the defaults are what a user gets without options."""

    max_peers: int = 50
    connect_timeout: float = 15.0
    progress_interval: float = 5.0
    seed_progress_interval: float = 60.0
    #: Failed pieces a peer may be the only source of before it is banned.
    ban_strikes: int = 2
    disk_threads: int = 2
    #: Bytes of verified-but-unwritten pieces the disk queue may hold before peers are
    #: paused. In bytes, not pieces, so memory does not grow with the piece size.
    disk_queue_bytes: int = 32 * 1024 * 1024

    def disk_high_water(self, piece_length: int) -> int:
        """The disk queue's bound in pieces for this piece length (at least 4)."""
        return max(4, self.disk_queue_bytes // piece_length)

    #: Regular unchoke slots (plus one optimistic); -1 means unlimited.
    upload_slots: int = 4
    #: This torrent's own rate limits in bytes/s (None: unlimited).
    upload_limit: float | None = None
    download_limit: float | None = None
    #: Stop seeding once uploaded/size reaches this ratio, or after this many seconds.
    seed_ratio: float | None = None
    seed_time: float | None = None
    #: Seconds between resume-state saves while pieces complete (also saved on stop).
    resume_interval: float = 5.0
    #: Seconds after a disk error before the data is checked again and the torrent resumes.
    error_retry: float = 60.0


@dataclass
class SharedLimits:
    """What every torrent of a session draws from: global rate buckets and connection slots
    (and the session's own addresses, once a tracker handed one to some torrent)."""

    upload: TokenBucket
    download: TokenBucket
    connections: ConnectionSlots
    own_addresses: set[Address] = field(default_factory=set)

    @classmethod
    def unlimited(cls, now: float) -> SharedLimits:
        return cls(TokenBucket(None, now), TokenBucket(None, now), ConnectionSlots(None))


class Torrent(Service):
    """Downloads (and, later, seeds) one torrent; a child service of the Session."""

    log = Logger()

    def __init__(
        self,
        metainfo: Metainfo,
        disk: DiskQueue,
        *,
        storage: IStorage | None = None,
        peer_id: bytes,
        port: int,
        reactor: Any,
        rng: random.Random,
        trackers: Sequence[Tracker] = (),
        config: TorrentConfig = TorrentConfig(),
        limits: SharedLimits | None = None,
        resume_path: Path | None = None,
        recheck: bool = False,
        ticker: Ticker | None = None,
        read_cache_pool: ReadCachePool | None = None,
        paused: bool = False,
        file_priorities: Sequence[FilePriority] | None = None,
        download_dir: str = "",
    ) -> None:
        self.metainfo = metainfo
        #: The torrent's name, for people and logs.
        self.title = metainfo.name
        #: The service's name in the session: the info-hash, unique where titles are not
        #: (two torrents may both be called "ubuntu.iso").
        self.name = metainfo.info_hash.hex()
        self.disk = disk
        #: Closed after the disk queue stops (the queue never closes what it was given).
        self.storage = storage
        self.peer_id = peer_id
        self.port = port
        #: Sent as BEP 7 ``ipv6=`` when the session listens on a specific IPv6 address.
        self.announce_ipv6: str | None = None
        self.reactor = reactor
        self.rng = rng
        self.config = config
        #: The state, the user's pause and the disk's error, moved by events (bt.lifecycle).
        self.lifecycle = Lifecycle(paused=paused)
        #: Where FileStorage writes (shown in status; empty for other storages).
        self.download_dir = download_dir
        self.layout = Layout.from_files(metainfo.files, metainfo.piece_length)
        self.geometry = metainfo.geometry
        padding = [f.padding for f in metainfo.files]
        #: The user's choice of files, told to the picker and the storage.
        self.selection = FileSelection(self.layout, padding, file_priorities, disk.set_skipped)
        self.picker = self._new_picker()
        self.links: dict[PeerLink, None] = {}
        self._blocks: dict[int, list[bytes | None]] = {}
        now = reactor.seconds()
        self.limits = limits or SharedLimits.unlimited(now)
        self.upload_bucket = TokenBucket(config.upload_limit, now)
        self.download_bucket = TokenBucket(config.download_limit, now)
        self.upload_limit = RateLimit(self.upload_bucket, self.limits.upload)
        self.download_limit = RateLimit(self.download_bucket, self.limits.download)
        self.seeding_since: float | None = None
        #: Verified pieces at start-up (resume state or a check), and saving them.
        self.inventory = PieceInventory(
            disk, metainfo, self.layout, resume_path, force_recheck=recheck
        )
        self._resume_dirty = False
        self._last_resume_save = now
        self._retry_call: Any = None
        #: Seeding reads; the session's torrents share one byte budget (``read_cache_pool``).
        self.read_cache = PieceReadCache(disk.read, metainfo.piece_size, pool=read_cache_pool)
        #: Files shortened under us or changed while paused: their pieces dropped and checked.
        self.repair = DamageRepair(
            FileCheck(disk, self.layout, [f.padding for f in metainfo.files]),
            self.title,
            ["/".join(f.path) for f in metainfo.files],
            has=lambda index: self.picker.has(index),
            lose=self._lose_pieces,
            regain=self._regain_pieces,
            failed=self._disk_failed,
            skipped=self.selection.skipped,
        )
        self.blame = Blame(config.ban_strikes)
        self.choker = Choker(rng, regular_slots=config.upload_slots)
        self._ticks = 0
        self.download_rate = RateMeter(reactor.seconds())
        self.upload_rate = RateMeter(reactor.seconds())
        self.hash_failures = 0
        self._completion_waiters: list[Deferred[None]] = []
        self._announce_key = f"{rng.getrandbits(32):08x}"
        #: One tracker (a BEP 12 tier) per announcer.
        self.trackers = list(trackers)
        self.announcers = [
            Announcer(tracker, reactor, rng, self._announce_request, self.add_candidates)
            for tracker in trackers
        ]
        #: Shared with the session's other torrents; a torrent alone gets its own.
        self.ticker = ticker if ticker is not None else Ticker(reactor)
        self._next_idle_tick = 0.0
        self._last_progress = 0.0
        #: Every wanted piece got written while out of the swarm: tell trackers on return.
        self._finished_offline = False
        self._save_call: Any = None
        self._progress_logged: tuple[int, int, int] | None = None
        self._factory = TorrentPeerFactory(
            peer_id, metainfo.info_hash, self.geometry, self, reactor
        )
        #: Outgoing connections: the candidate pool (and its bans) and attempts in flight.
        self.dialer = Dialer(
            reactor,
            self.limits.connections,
            self._factory.buildProtocol,
            self._dial_room,
            connect_timeout=config.connect_timeout,
            private=metainfo.private,
            name=self.title,
            skip_seeds=lambda: self.is_finished,
            own_addresses=self.limits.own_addresses,
        )

    def _new_picker(self) -> PiecePicker:
        picker = PiecePicker(self.geometry, self.rng)
        self.selection.prioritise(picker)
        return picker

    # -- public state -------------------------------------------------------

    @property
    def info_hash(self) -> bytes:
        return self.metainfo.info_hash

    @property
    def bytes_left(self) -> int:
        """Bytes of wanted pieces we do not have (the tracker's ``left``)."""
        picker, last = self.picker, self.geometry.last_piece
        wants_last = not picker.has(last) and picker.piece_priority(last) != 0
        return self.geometry.bytes_in_count(picker.missing_count, includes_last=wants_last)

    @property
    def is_finished(self) -> bool:
        return self.picker.is_finished

    @property
    def file_priorities(self) -> list[FilePriority]:
        return self.selection.priorities

    @property
    def state(self) -> TorrentState:
        return self.lifecycle.state

    @property
    def paused(self) -> bool:
        """The user's pause: the torrent holds no peers and announces nothing until resumed."""
        return self.lifecycle.paused

    @property
    def error(self) -> str | None:
        """Why the torrent is in ``error`` (or paused after one); None otherwise."""
        return self.lifecycle.error

    @property
    def accepting_peers(self) -> bool:
        return self.lifecycle.in_swarm

    def scrape(self) -> Deferred[ScrapeResult | None]:
        """Seeders, downloads and leechers as the first tracker able to scrape counts them."""
        for tracker in self.trackers:
            if hasattr(tracker, "scrape"):
                counts = tracker.scrape([self.info_hash])
                return counts.addCallback(lambda results: results.get(self.info_hash))
        return defer.succeed(None)

    def when_finished(self) -> Deferred[None]:
        """A Deferred that fires once every wanted piece is verified and written."""
        if self.is_finished:
            return defer.succeed(None)
        waiter: Deferred[None] = Deferred()
        self._completion_waiters.append(waiter)
        return waiter

    # -- service lifecycle ----------------------------------------------------

    def startService(self) -> None:
        super().startService()
        self._step(Event.START)

    def _step(self, event: Event, error: str | None = None) -> list[Deferred[Any]]:
        """Move the lifecycle on by ``event`` and carry out its actions, in order;
        returns what they started (trackers told ``stopped``, the state saving)."""
        started: list[Deferred[Any]] = []
        for action in self.lifecycle.handle(event, error=error):
            started += self._act(action, event)
        return started

    def _act(self, action: Action, event: Event) -> list[Deferred[Any]]:
        match action:
            case Action.LOAD_PIECES:
                self._load_pieces()
            case Action.CHECK_PIECES:
                checked = self.inventory.check(WHY_CHECKING[event])
                checked.addCallbacks(self._begin, self._disk_failed)
                checked.addErrback(self._log_failure, "check")
            case Action.COMPARE_FILES:
                # Files changed meanwhile (edited, truncated, replaced) are not served as they are.
                checked = self.repair.files_changed(
                    self.inventory.stamps, "while the torrent was paused"
                )
                checked.addCallbacks(lambda _: self._step(Event.FILES_COMPARED), self._disk_failed)
                checked.addErrback(self._log_failure, "resume")
            case Action.JOIN_SWARM:
                self._join_swarm()
            case Action.START_SEEDING:
                self.seeding_since = self.reactor.seconds()
                if self.picker.is_complete:  # else a seed may be needed for files skipped now
                    for link in list(self.links):
                        if link.bitfield.is_complete():
                            link.protocol.drop("both sides are seeds")
            case Action.FINISH_SEEDING:
                for link in list(self.links):
                    link.protocol.drop("finished seeding")
                for announcer in self.announcers:
                    announcer.stop().addErrback(self._log_failure, "announce stopped")
            case Action.DOWNLOAD_AGAIN:
                self.seeding_since = None
                for announcer in self.announcers:
                    announcer.start()  # a torrent that met its seeding goal had left its trackers
            case Action.CANCEL_RETRY:
                self._cancel_retry()
            case Action.LEAVE_SWARM:
                return self._leave_swarm(WHY_LEAVING[event])
            case Action.RESET_PICKER:
                self._blocks.clear()
                self.picker = self._new_picker()
            case Action.SAVE_RESUME:
                return [self.save_resume()]
            case Action.SAVE_IF_DIRTY:
                if self._resume_dirty:
                    self.save_resume()
            case Action.SCHEDULE_RETRY:
                delay = self.config.error_retry
                self.log.warn(
                    "{name}: paused by the disk error; checking the data again in {delay:g} s",
                    name=self.title,
                    delay=delay,
                )
                self._retry_call = self.reactor.callLater(delay, self._retry_after_error)
        return []

    def _load_pieces(self) -> None:
        self.disk.start()
        self.log.info(
            "{name}: {pieces} pieces of {piece_length} bytes, {size} bytes in {files} files",
            name=self.title,
            pieces=self.metainfo.num_pieces,
            piece_length=self.metainfo.piece_length,
            size=self.metainfo.total_length,
            files=len(self.metainfo.files),
        )
        # Skipped files first: prepare must not create them, and checks read their part file.
        checked = self.selection.tell_storage()
        checked.addCallback(lambda _: self.disk.prepare())
        checked.addCallback(lambda _: self.inventory.load())
        checked.addCallbacks(self._begin, self._disk_failed)
        checked.addErrback(self._log_failure, "start")

    def save_resume(self) -> Deferred[None]:
        """Save the verified pieces now (they are all written: see ``_piece_written``)."""
        if not self.lifecycle.pieces_known:
            return defer.succeed(None)
        self._resume_dirty = False
        self._last_resume_save = self.reactor.seconds()
        saving = self.inventory.save(
            self.picker.have_bitfield(),
            lambda: (self.upload_rate.total, self.download_rate.total),
        )
        saving.addErrback(self._resume_not_saved)
        saving.addErrback(self._disk_failed)  # the fsync of the data failed: a disk error
        return saving

    def _resume_not_saved(self, failure: Failure) -> None:
        """The state folder failed, not the data: keep downloading, try again next time."""
        failure.trap(ResumeSaveError)
        self._resume_dirty = True
        self.log.error("{name}: {error}", name=self.title, error=failure.value)

    def _begin(self, inventory: Inventory) -> None:
        """The data is checked: take its pieces, then run (or stay paused)."""
        if not self.lifecycle.accepts(Event.CHECKED):
            return  # stopped meanwhile
        valid = inventory.pieces
        self.upload_rate.total = max(self.upload_rate.total, inventory.uploaded)
        self.download_rate.total = max(self.download_rate.total, inventory.downloaded)
        for index in valid:
            self.picker.have(index)
        if valid:
            self.log.info(
                "{name}: {valid} of {total} pieces already on disk",
                name=self.title,
                valid=len(valid),
                total=self.metainfo.num_pieces,
            )
            self._resume_dirty = True  # a check's result is worth saving too
        self._step(Event.CHECKED)
        if self.is_finished:
            self._fire_completion_waiters()

    def _join_swarm(self) -> None:
        """Tick, announce, accept and dial peers."""
        self.ticker.add(self._tick)
        if self.is_finished:
            self._step(Event.COMPLETE)
            # Complete data and the goal met already (say --seed-ratio 0): serve nobody.
            # A download finished while paused tells trackers first; the tick checks then.
            if not self._finished_offline and self._goal_met_now():
                return
        for announcer in self.announcers:
            announcer.start()
            if self._finished_offline:
                announcer.completed()  # the download finished while we were away
        self._finished_offline = False

    def _save_soon(self, *, dirty: bool = False) -> None:
        """Save the resume state in a moment; for pieces written while no tick runs
        (``dirty``: something else changed that the state records, a file's stamp)."""
        self._resume_dirty |= dirty
        if self._save_call is None or not self._save_call.active():
            self._save_call = self.reactor.callLater(1.0, self._save_if_dirty)

    def _save_if_dirty(self) -> None:
        self._save_call = None
        if self._resume_dirty:
            self.save_resume()

    def _leave_swarm(self, why: str) -> list[Deferred[None]]:
        """Stop ticking and announcing, drop every peer now (not when their sockets
        close); returns the trackers' ``stopped`` announces."""
        self.ticker.remove(self._tick)
        self.read_cache.clear()
        for link in list(self.links):
            link.protocol.drop(why)
            self.link_lost(link, why)
        stops = [announcer.stop() for announcer in self.announcers if announcer.running]
        for stop in stops:
            stop.addErrback(self._log_failure, "announce stopped")
        return stops

    # -- the user's controls --------------------------------------------------

    def pause(self) -> Deferred[None]:
        """Leave the swarm (trackers told ``stopped``) and save the state; fires when saved."""
        if not self.lifecycle.accepts(Event.PAUSE):
            return defer.succeed(None)  # paused already
        self.log.info("{name}: paused", name=self.title)
        # Checking: the check ends paused; stopped: nothing runs (bt.lifecycle).
        done = defer.DeferredList(self._step(Event.PAUSE), consumeErrors=True)
        return done.addCallback(lambda _: None)

    def resume(self) -> None:
        """Undo :meth:`pause`; a torrent paused in ``error`` checks its data first."""
        if not self.lifecycle.accepts(Event.RESUME):
            return  # not paused
        self.log.info("{name}: resumed", name=self.title)
        # Still checking (it will run) or not started (it will start): nothing more.
        self._step(Event.RESUME)

    def recheck(self) -> None:
        """Forget which pieces are verified and hash the data again, as on a first start."""
        self._step(Event.RECHECK)

    def _cancel_retry(self) -> None:
        if self._retry_call is not None and self._retry_call.active():
            self._retry_call.cancel()
        self._retry_call = None

    def set_limits(self, *, upload: Any = UNCHANGED, download: Any = UNCHANGED) -> None:
        """This torrent's own rate limits in bytes/s (None: unlimited); they apply at once."""
        now = self.reactor.seconds()
        if upload is not UNCHANGED:
            self.upload_bucket.set_rate(upload, now)
        if download is not UNCHANGED:
            self.download_bucket.set_rate(download, now)
        self.limits_changed()

    def limits_changed(self) -> None:
        """A bucket this torrent draws from changed: throttle (or free) reads of every peer."""
        throttle = None if self.download_limit.unlimited else self._download_throttle
        for link in self.links:
            link.protocol.read_throttle = throttle

    def set_file_priorities(self, changes: Mapping[int, FilePriority]) -> None:
        """Skip files or put them first; a finished torrent downloads again if more is wanted."""
        moved = self.selection.change(changes, self.picker, running=self.running)
        if moved is not None:
            # A file created or filled: its new stamp is saved, also while paused (a
            # resume compares the files' stamps).
            moved.addCallback(lambda _: self._save_soon(dirty=True))
            moved.addErrback(self._disk_failed)
            moved.addErrback(self._log_failure, "moving data of skipped files")
        self._wanted_changed()

    def _wanted_changed(self, why: str = "more files wanted") -> None:
        if self.is_finished:
            if self.lifecycle.accepts(Event.COMPLETE):
                self._finished()
                return
        elif self.lifecycle.accepts(Event.MORE_WANTED):
            self.log.info("{name}: {why}; downloading again", name=self.title, why=why)
            self._step(Event.MORE_WANTED)
        for link in list(self.links):
            if link.bitfield_counted:
                link.update_interest()
        self.dialer.connect_more()

    def stopService(self) -> Deferred[None]:
        """Drop peers, tell trackers we left, flush and close the files."""
        super().stopService()
        self._cancel_retry()
        if self._save_call is not None and self._save_call.active():
            self._save_call.cancel()
        self._save_call = None
        if self.lifecycle.started:
            self.log.info("{line}", line=describe_totals(self))
        self.ticker.remove(self._tick)
        self.read_cache.clear()
        for link in list(self.links):
            link.protocol.drop("torrent stopping")
        saved = self.save_resume() if self._resume_dirty else defer.succeed(None)
        self._step(Event.STOP)
        stops = defer.DeferredList(
            [announcer.stop() for announcer in self.announcers], consumeErrors=True
        )
        stops.addCallback(lambda _: self._close_trackers())
        done = defer.DeferredList([saved, stops], consumeErrors=True)
        done.addCallback(lambda _: self.disk.sync())
        done.addErrback(self._disk_failed)
        done.addCallback(lambda _: self.disk.stop())
        done.addCallback(self._close_storage)
        return done

    def _close_trackers(self) -> Deferred[Any]:
        closing = [t.close() for t in self.trackers if hasattr(t, "close")]
        return defer.DeferredList([d for d in closing if d is not None], consumeErrors=True)

    def _close_storage(self, _: object) -> None:
        if self.storage is not None:
            self.storage.close()

    # -- peers: candidates and connections -----------------------------------

    @property
    def candidates(self) -> CandidatePool:
        """Known addresses and bans (the dialer's pool)."""
        return self.dialer.candidates

    def add_candidates(
        self, peers: Sequence[tuple[str, int]], source: str = PeerSource.TRACKER
    ) -> None:
        """Addresses from a tracker (or PEX, DHT, ...); a private torrent takes only trackers'."""
        self.dialer.add(peers, source)

    def _dial_room(self) -> int:
        """How many more peers to dial for now: none unless the torrent is in the swarm.

        A seed dials too, as libtorrent does: some leechers never dial the addresses
        a tracker gives them (Transmission drops loopback ones) and are served only
        by a seed that dials them. Known seeds are skipped (``skip_seeds``).
        """
        if not self.accepting_peers:
            return 0
        return self.config.max_peers - len(self.links)

    def attach(self, protocol: PeerProtocol, handshake: HandshakeReceived) -> PeerLink:
        """A handshake completed: the peer joins the swarm."""
        address: Address = getattr(protocol, "candidate", None) or _peer_address(protocol)
        self.dialer.arrived(address)
        refusal = None
        if not self.accepting_peers:
            refusal = f"torrent is {self.state}"
        elif self.dialer.is_banned(address):
            refusal = "peer is banned for sending bad data"
        elif len(self.links) >= self.config.max_peers:
            refusal = "too many peers"
        if refusal is not None:
            self.dialer.left(address)  # a known address is tried again later, with backoff
            raise RemoteProtocolError(refusal)
        link = PeerLink(self, protocol, address, self.reactor.seconds())
        link.upload_queue = UploadQueue(
            self.read_cache.read,
            protocol.send_block,
            throttle=self._upload_throttle,
            call_later=self.reactor.callLater,
            on_sent=lambda amount: self._count_upload(link, amount),
            cached=self.read_cache.cached,
            on_read_failed=lambda block, error: self._read_failed(link, block[0], error),
        )
        protocol.transport.registerProducer(link.upload_queue, True)
        if not self.download_limit.unlimited:
            protocol.read_throttle = self._download_throttle
        self.links[link] = None
        self.dialer.joined(address)
        have = self.picker.have_bitfield()
        if not have.is_empty():
            protocol.send(BitfieldMessage(have.to_bytes()))
        self.disk.add_pressure_listener(protocol)
        self.log.debug("{name}: connected to {address}", name=self.title, address=address)
        return link

    def link_lost(self, link: PeerLink, reason: str) -> None:
        if link not in self.links:
            return  # already detached (the torrent left the swarm first)
        del self.links[link]
        self.choker.peer_gone(link)
        self.disk.remove_pressure_listener(link.protocol)
        bitfield = link.bitfield if link.bitfield_counted else Bitfield(self.metainfo.num_pieces)
        if link.bitfield_counted:
            self.picker.peer_gone(link, bitfield)
        else:
            self.picker.peer_requests_abandoned(link)
        self.dialer.left(link.address, seed=link.bitfield.is_complete())
        self.log.debug(
            "{name}: peer {address} gone: {reason}",
            name=self.title,
            address=link.address,
            reason=reason,
        )
        self._refill_others()
        self.dialer.connect_more()

    def is_interesting(self, bitfield: Bitfield) -> bool:
        """Does a peer with ``bitfield`` have a piece we want and lack?"""
        picker = self.picker
        if picker.is_finished or bitfield.is_empty():
            return False
        # O(1) answer for the common case: a peer with more pieces than we have plus
        # the ones we skip must hold a piece we want (this runs for every peer
        # whenever a piece completes, so the bitfield arithmetic below is the exception).
        skipped_missing = self.metainfo.num_pieces - picker.have_count - picker.missing_count
        if bitfield.count() > picker.have_count + skipped_missing:
            return True
        mine = picker.have_bitfield()
        theirs = int.from_bytes(bitfield.to_bytes(), "big")
        missing = ~int.from_bytes(mine.to_bytes(), "big")
        if not theirs & missing:
            return False
        # Skipped pieces are rare; check them only when the cheap test passes.
        return any(self.picker.piece_priority(i) for i in _bits(theirs & missing, bitfield.length))

    # -- blocks and the completion chain --------------------------------------

    def request_received(self, link: PeerLink, msg: Request) -> None:
        """Queue a block to serve; ranges were checked by the connection already."""
        if link.connection.am_choking or link.upload_queue is None:
            return  # BEP 3: requests from a choked peer are dropped
        if not self.picker.has(msg.index):
            if msg.index in self.repair.lost:
                # It had our word that we have it; BEP 3 cannot take that back (REJECT
                # needs the fast extension): close rather than leave it waiting forever.
                link.protocol.drop(f"asked for piece {msg.index}, whose data we lost")
            return  # else we never announced it; a confused peer, not a harmful one
        link.upload_queue.add(msg.index, msg.begin, msg.length)

    def interest_changed(self, link: PeerLink) -> None:
        """A peer became (not) interested: fill a free upload slot now, not in 10 s."""
        if link.connection.peer_interested and link.connection.am_choking:
            unchoked = sum(1 for other in self.links if not other.connection.am_choking)
            if unchoked < self.choker.regular_slots + self.choker.optimistic_slots:
                self._choke_round(self.reactor.seconds())

    def _choke_round(self, now: float) -> None:
        snapshots = [
            PeerSnapshot(
                key=link,
                interested=link.connection.peer_interested,
                connected_at=link.connected_at,
                download_rate=link.download_meter.rate,
                upload_rate=link.upload_meter.rate,
                snubbed=link.snubbed,
                unchoked_since=link.unchoked_since,
                choked_at=link.choked_at,
            )
            for link in self.links
        ]
        unchoke = self.choker.decide(snapshots, seeding=self.is_finished, now=now)
        for link in list(self.links):
            if link in unchoke:
                link.unchoke(now)
            else:
                link.choke(now)

    def _upload_throttle(self, amount: int) -> float:
        return self.upload_limit.try_consume(amount, self.reactor.seconds())

    def _download_throttle(self, amount: int) -> float:
        now = self.reactor.seconds()
        if amount:
            self.download_limit.consume(amount, now)
        return self.download_limit.debt_delay(now)

    def _count_upload(self, link: PeerLink, amount: int) -> None:
        link.upload_meter.add(amount)
        self.upload_rate.add(amount)

    def block_arrived(self, link: PeerLink, msg: Piece) -> bool:
        """Store a block we asked for; False for unrequested data (dropped, not an error)."""
        index, begin, block = msg.index, msg.begin, msg.block
        result = self.picker.block_received(link, index, begin, len(block))
        if not result.wanted:
            return False
        self.download_rate.add(len(block))
        blocks = self._blocks.get(index)
        if blocks is None:
            blocks = self._blocks[index] = [None] * self.picker.block_count(index)
        blocks[begin // self.picker.block_size] = block
        for other in result.cancel:
            if isinstance(other, PeerLink) and not other.closed:
                other.protocol.send(Cancel(index, begin, len(block)))
        if result.piece_complete:
            self._verify(index)
        return True

    def _verify(self, index: int) -> None:
        """The completion chain: verify and write off the reactor, then have or blame."""
        blocks = self._blocks.pop(index)
        sources = {n: peer.address for n, peer in self.picker.block_sources(index).items()}
        d = self.disk.verify_and_write(index, blocks)  # type: ignore[arg-type]
        d.addCallbacks(
            self._piece_written,
            self._piece_failed,
            callbackArgs=(index, blocks),
            errbackArgs=(index, blocks, sources),
        )
        d.addErrback(self._log_failure, f"piece {index}")

    def _piece_written(self, _: None, index: int, blocks: list[bytes]) -> None:
        self.picker.have(index)
        self._resume_dirty = True
        for liar in self.blame.piece_verified(index, blocks):
            self._ban(liar, f"sent a bad block of piece {index}")  # type: ignore[arg-type]
        if not self.lifecycle.downloading:
            # Written after the torrent left the swarm (paused, disk error, recheck):
            # the piece counts, but only _join_swarm() may take the torrent back into it.
            if self.picker.is_finished and self.lifecycle.interrupted:
                self._finished_offline = True
                self._fire_completion_waiters()
            self._save_soon()
            return
        self._announce_have(index)
        if self.picker.is_finished:
            self._finished()

    def _announce_have(self, index: int) -> None:
        for link in list(self.links):
            if index not in link.bitfield:
                link.protocol.send(Have(index))
            elif link.connection.am_interested and not self.is_interesting(link.bitfield):
                link.protocol.send(NotInterested())

    # -- data damaged under us (bt.storage.damage) -------------------------------

    def _read_failed(self, link: PeerLink, index: int, error: StorageError) -> None:
        """A block could not be read for ``link``: data gone, or a failing disk."""
        link.protocol.drop(f"cannot serve piece {index}: {error}")
        if not self.picker.has(index):
            return
        if isinstance(error, DataMissingError):
            self.repair.short_read()  # which files shrank? their pieces are checked again
        else:
            self.repair.read_error(index, error)  # EIO and the like: that file's pieces

    def _lose_pieces(self, pieces: list[int]) -> None:
        """Pieces no longer on disk: out of the bitfield and the resume state; peers
        with requests for them queued are closed, as no REJECT can answer them."""
        for index in pieces:
            self.picker.lose(index)
        self._resume_dirty = True
        self.read_cache.clear()
        lost = set(pieces)
        for link in list(self.links):
            if link.upload_queue is not None and link.upload_queue.asks_for(lost):
                link.protocol.drop("asked for pieces whose data we lost")
        self._wanted_changed("data lost")

    def _regain_pieces(self, pieces: list[int]) -> None:
        """Pieces of a changed file that verified again: had, as if just downloaded."""
        for index in pieces:
            if self.picker.has(index):
                continue  # downloaded again meanwhile
            self.picker.have(index)
            self._resume_dirty = True
            if self.lifecycle.downloading:
                self._announce_have(index)
        if not self.lifecycle.downloading:
            self._save_soon()  # the check ended while the torrent was out of the swarm
        elif self.picker.is_finished:
            self._finished()

    def _piece_failed(
        self, failure: Failure, index: int, blocks: list[bytes], sources: dict[int, Address]
    ) -> None:
        self.picker.piece_failed(index)
        if failure.check(StorageError) is not None:
            self._disk_failed(failure)
            return
        failure.trap(PieceHashError)
        self.hash_failures += 1
        self.log.warn(
            "{name}: piece {index} failed its hash check (sent by {senders})",
            name=self.title,
            index=index,
            senders=sorted(set(sources.values())),
        )
        for address in self.blame.piece_failed(index, sources, blocks):
            strikes = self.blame.strikes(address)
            self._ban(address, f"sent {strikes} pieces alone that failed their hash")  # type: ignore[arg-type]
        self._refill_others()

    def _ban(self, address: Address, why: str) -> None:
        if not self.dialer.ban(address):
            return
        self.log.warn(
            "{name}: banned peer {host}:{port}: {why}",
            name=self.title,
            host=address[0],
            port=address[1],
            why=why,
        )
        for link in list(self.links):
            if link.address == address:
                link.protocol.drop(f"banned: {why}")

    def _finished(self) -> None:
        self.log.info(
            "{name}: download complete, {size} bytes verified",
            name=self.title,
            size=self.metainfo.total_length,
        )
        self._step(Event.COMPLETE)
        for announcer in self.announcers:
            announcer.completed()
        self._goal_met_now()  # --seed-ratio 0: stop before serving a single block
        self._fire_completion_waiters()

    def _seed_goal_reached(self, now: float) -> str | None:
        ratio, seconds = self.config.seed_ratio, self.config.seed_time
        if ratio is not None and self.upload_rate.total >= ratio * self.metainfo.total_length:
            return f"seed ratio {ratio:g} reached"
        if seconds is not None and self.seeding_since is not None:
            if now - self.seeding_since >= seconds:
                return f"seeded for {seconds:g} s"
        return None

    def _goal_met_now(self) -> bool:
        """Finish at once when the seeding goal is met already (a ratio or time of 0)."""
        why = self._seed_goal_reached(self.reactor.seconds())
        if why is None:
            return False
        self._finish_seeding(why)
        return True

    def _finish_seeding(self, why: str) -> None:
        """The seeding goal is met: leave the swarm politely and stay idle."""
        self.log.info("{name}: {why}; stopped seeding", name=self.title, why=why)
        self._step(Event.GOAL_REACHED)

    def _fire_completion_waiters(self) -> None:
        waiters, self._completion_waiters = self._completion_waiters, []
        for waiter in waiters:
            waiter.callback(None)

    def _refill_others(self) -> None:
        for other in list(self.links):
            other.fill_pipeline()

    # -- timers and trackers ----------------------------------------------------

    def _tick(self) -> None:
        now = self.reactor.seconds()
        if not self.links:
            # Nothing to measure, choke or keep alive: connect, announce and check the
            # seeding goal every few seconds only (1,000 idle torrents share one timer).
            if now < self._next_idle_tick and not self._resume_dirty:
                return
            # A finished torrent dials its due candidates (a tracker's answer dials at
            # once), checks its seeding goal and saves its state at a slower pace.
            idle = IDLE_SEED_TICK_INTERVAL if self.is_finished else IDLE_TICK_INTERVAL
            self._next_idle_tick = now + idle
            if self.seeding_since is not None and self.config.seed_time is not None:
                deadline = self.seeding_since + self.config.seed_time
                self._next_idle_tick = min(self._next_idle_tick, max(now + 1, deadline))
        self.download_rate.tick(now)
        self.upload_rate.tick(now)
        for link in list(self.links):
            link.tick(now)
        self._ticks += 1
        if self._resume_dirty and now - self._last_resume_save >= self.config.resume_interval:
            self.save_resume()
        if self._ticks % CHOKE_INTERVAL == 0:
            self._choke_round(now)
        if self.lifecycle.accepts(Event.GOAL_REACHED):
            why = self._seed_goal_reached(now)
            if why is not None:
                self._finish_seeding(why)
                return
        self.dialer.connect_more()
        if not self.is_finished and len(self.links) < self.config.max_peers // 2:
            for announcer in self.announcers:
                announcer.need_peers()
        interval = (
            self.config.seed_progress_interval
            if self.is_finished
            else self.config.progress_interval
        )
        if now - self._last_progress >= interval:
            # Only when something moved: 1,000 idle seeds must not write 1,000 lines a minute.
            moved = (self.download_rate.total, self.upload_rate.total, len(self.links))
            if moved != self._progress_logged:
                self._progress_logged = moved
                self._last_progress = now
                self.log.info("{line}", line=describe_progress(self))

    def _announce_request(self, event: str | None) -> AnnounceRequest:
        return AnnounceRequest(
            info_hash=self.info_hash,
            peer_id=self.peer_id,
            port=self.port,
            uploaded=self.upload_rate.total,
            downloaded=self.download_rate.total,
            left=self.bytes_left,
            event=event,
            key=self._announce_key,
            ipv6=self.announce_ipv6,
            numwant=NUMWANT,  # a seed too wants leechers to dial (libtorrent: num_want)
        )

    def _disk_failed(self, failure: Failure) -> None:
        """A disk error stops this torrent (not the others) until a check finds what is valid."""
        failure.trap(StorageError)
        self.log.error("{name}: {error}", name=self.title, error=failure.value)
        # Paused: resume() checks the data again; else a retry does, after a while.
        self._step(Event.DISK_ERROR, str(failure.value))

    def _retry_after_error(self) -> None:
        self._retry_call = None
        self._step(Event.RETRY)

    def _log_failure(self, failure: Failure, what: str) -> None:
        self.log.failure("{name}: unexpected error in {what}", failure, name=self.title, what=what)


def _peer_address(protocol: PeerProtocol) -> Address:
    peer = protocol.transport.getPeer()
    return (str(getattr(peer, "host", "?")), int(getattr(peer, "port", 0)))


def _bits(value: int, length: int) -> Iterator[int]:
    """Indexes of set bits of a big-endian bitfield integer of ``length`` bits."""
    width = (length + 7) // 8 * 8
    while value:
        top = value.bit_length() - 1
        yield width - 1 - top
        value ^= 1 << top
