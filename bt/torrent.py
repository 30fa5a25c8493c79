"""Torrent: one torrent's life (check, download, seed, pause), its data and the completion chain.

Its live peers are its :class:`~bt.swarm.swarm.Swarm`; its candidates come from
its peer sources (``bt.peersources``; trackers today). The completion chain
(``bt.completion``): the swarm hands over a complete piece -> the disk queue
(hash, then write, in the disk threads) -> ``swarm.have_many`` for a batch of
written pieces (picker, HAVE to every peer that lacks them); a failed piece is
reset and its senders blamed.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from twisted.application.service import Service
from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from bt.completion import CompletionChain, Written
from bt.errors import PieceHashError, StorageError
from bt.interfaces import IDiskQueue, IStorage
from bt.lifecycle import WHY_CHECKING, WHY_LEAVING, Action, Event, Lifecycle, TorrentState
from bt.logs import Logger
from bt.metainfo import Metainfo
from bt.peersources import PeerSources
from bt.policy.picker import PiecePicker
from bt.progress import ProgressLine, describe_layout, describe_totals
from bt.status import FilePriority
from bt.storage.data import Inventory, TorrentData
from bt.swarm.swarm import Swarm
from bt.ticker import IdlePace, Ticker
from bt.torrentconfig import SharedLimits, TorrentConfig
from bt.tracker.sources import Tracker, Trackers

__all__ = ["Torrent"]


class Torrent(Service):
    """Downloads (and, later, seeds) one torrent; a child service of the Session."""

    log = Logger()

    def __init__(
        self,
        metainfo: Metainfo,
        disk: IDiskQueue,
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
        #: Closed by ``data`` after the disk queue stops.
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
        self.geometry = metainfo.geometry
        #: Layout, file selection, verified pieces, damage repair, saving (bt.storage.data).
        data = self.data = TorrentData(
            metainfo,
            disk,
            resume_path,
            storage=storage,
            file_priorities=file_priorities,
            recheck=recheck,
            clock=reactor,
            has=lambda index: self.picker.has(index),
            lose=self._lose_pieces,
            regain=self._regain_pieces,
            failed=self._disk_failed,
        )
        self.layout, self.selection = data.layout, data.selection
        self.inventory, self.repair = data.inventory, data.repair
        self.limits = limits or SharedLimits.unlimited(reactor.seconds())
        #: The live peers; the torrent asks it, and tells it, through narrow calls.
        swarm = self.swarm = Swarm(
            self,
            metainfo,
            self.selection.prioritise,
            disk,
            self.repair,
            peer_id=peer_id,
            reactor=reactor,
            rng=rng,
            config=config,
            limits=self.limits,
        )
        # The swarm's values that status, the session and the resume state show.
        self.links, self.candidates = swarm.links, swarm.dialer.candidates
        self.upload_bucket, self.download_bucket = swarm.upload_bucket, swarm.download_bucket
        self.download_rate, self.upload_rate = swarm.download_rate, swarm.upload_rate
        #: Addresses from a peer source (trackers, PEX, DHT, ...): ``(peers, source)``.
        self.add_candidates = swarm.add_candidates
        self.seeding_since: float | None = None
        self._completion_waiters: list[Deferred[None]] = []
        self.completion = CompletionChain(
            disk, self._pieces_written, self._piece_failed, self.title
        )
        self.trackers = Trackers(trackers, reactor, rng, self, self.add_candidates)
        self.announcers = self.trackers.announcers
        #: Where candidates come from: the trackers first (see bt.peersources).
        self.sources = PeerSources(self.title, self.announcers)
        #: Shared with the session's other torrents; a torrent alone gets its own.
        self.ticker = ticker if ticker is not None else Ticker(reactor)
        self._idle = IdlePace()
        self._progress = ProgressLine()
        #: Every wanted piece got written while out of the swarm: tell trackers on return.
        self._finished_offline = False

    # -- public state -------------------------------------------------------

    @property
    def picker(self) -> PiecePicker:
        """Which pieces we have and want (the swarm drives it for peers)."""
        return self.swarm.picker

    @property
    def hash_failures(self) -> int:
        return self.swarm.hash_failures

    info_hash = property(lambda self: self.metainfo.info_hash)
    info_hashes = property(lambda self: self.metainfo.info_hashes)  # a hybrid's two (BEP 52)

    @property
    def bytes_left(self) -> int:
        """Bytes of wanted pieces we do not have (the tracker's ``left``)."""
        return self.picker.bytes_missing

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

    def scrape(self) -> Deferred[Any]:
        """Seeders, downloads and leechers as the first tracker able to scrape counts them."""
        return self.trackers.scrape(self.info_hash)

    def when_finished(self) -> Deferred[None]:
        """A Deferred that fires once every wanted piece is verified and written."""
        if self.is_finished:
            return defer.succeed(None)
        self._completion_waiters.append(waiter := Deferred())
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
                self.swarm.drop_seeds()  # unless files are skipped: then a seed may be needed
            case Action.FINISH_SEEDING:
                self.swarm.close_all("finished seeding")
                self.sources.stop(every=True)
            case Action.DOWNLOAD_AGAIN:
                self.seeding_since = None
                self.sources.start()  # a torrent that met its seeding goal had left its trackers
            case Action.CANCEL_RETRY:
                self.data.cancel_check()
            case Action.LEAVE_SWARM:
                return [self._leave_swarm(WHY_LEAVING[event])]
            case Action.RESET_PICKER:
                self.swarm.reset()
            case Action.SAVE_RESUME:
                return [self.save_resume()]
            case Action.SAVE_IF_DIRTY:
                if self.data.dirty:
                    self.save_resume()
            case Action.SCHEDULE_RETRY:
                delay = self.config.error_retry
                self.log.warn(
                    "{name}: paused by the disk error; checking the data again in {delay:g} s",
                    name=self.title,
                    delay=delay,
                )
                self.data.check_later(delay, lambda: self._step(Event.RETRY))
        return []

    def _load_pieces(self) -> None:
        self.disk.start()
        self.log.info("{line}", line=describe_layout(self.metainfo))
        checked = self.data.load()
        checked.addCallbacks(self._begin, self._disk_failed)
        checked.addErrback(self._log_failure, "start")

    def save_resume(self) -> Deferred[None]:
        """Save the verified pieces now (they are all written: see ``_piece_written``)."""
        if not self.lifecycle.pieces_known:
            return defer.succeed(None)
        return self.data.save(
            self.picker.have_bitfield(), lambda: (self.upload_rate.total, self.download_rate.total)
        )

    def _begin(self, inventory: Inventory) -> None:
        """The data is checked: take its pieces, then run (or stay paused)."""
        if not self.lifecycle.accepts(Event.CHECKED):
            return  # stopped meanwhile
        valid = inventory.pieces
        self.upload_rate.total = max(self.upload_rate.total, inventory.uploaded)
        self.download_rate.total = max(self.download_rate.total, inventory.downloaded)
        for index in valid:
            self.swarm.have(index, announce=False)
        if valid:
            self.log.info(
                "{name}: {valid} of {total} pieces already on disk",
                name=self.title,
                valid=len(valid),
                total=self.metainfo.num_pieces,
            )
            self.data.dirty |= not inventory.saved  # a check's result is worth saving too
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
            if not self._finished_offline and self._goal_met(self.reactor.seconds()):
                return
        self.sources.start(completed=self._finished_offline)  # finished while we were away
        self._finished_offline = False

    def _save_soon(self, *, dirty: bool = False) -> None:
        """Save the resume state in a moment; for pieces written while no tick runs
        (``dirty``: something else changed that the state records, a file's stamp)."""
        self.data.dirty |= dirty
        self.data.save_soon(self.save_resume)

    def _leave_swarm(self, why: str) -> Deferred[Any]:
        """Stop ticking and announcing, drop every peer now (not when their sockets
        close); fires when the peer sources (trackers: ``stopped``) are done."""
        self.ticker.remove(self._tick)
        self.swarm.close_all(why, detach=True)
        return self.sources.stop()

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

    def set_limits(self, **limits: Any) -> None:
        """This torrent's own rate limits (``upload``, ``download``; see Swarm.set_limits)."""
        self.swarm.set_limits(**limits)

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
        self.swarm.wanted_changed()

    def stopService(self) -> Deferred[None]:
        """Drop peers, tell trackers we left, flush and close the files."""
        super().stopService()
        self.data.cancel()
        if self.lifecycle.started:
            self.log.info("{line}", line=describe_totals(self))
        self.ticker.remove(self._tick)
        self.swarm.close_all("torrent stopping")
        saved = self.save_resume() if self.data.dirty else defer.succeed(None)
        self._step(Event.STOP)
        stops = self.sources.stop(every=True)
        stops.addCallback(lambda _: self.trackers.close())
        done = defer.DeferredList([saved, stops], consumeErrors=True)
        return done.addCallback(lambda _: self.data.close())

    # -- peers: the swarm asks, the torrent answers -----------------------------

    def refusal(self) -> str | None:
        """Peers join (and are dialled) only while the torrent is in the swarm."""
        return None if self.lifecycle.in_swarm else f"torrent is {self.state}"

    # -- the completion chain ------------------------------------------------------

    def on_piece_complete(self, index: int, blocks: list[bytes], sources: dict[int, Any]) -> None:
        """Verify and write off the reactor, then have or blame (``bt.completion``)."""
        self.completion.piece_complete(index, blocks, sources)

    def _pieces_written(self, pieces: list[Written]) -> None:
        self.data.dirty = True
        announce = self.lifecycle.downloading
        self.swarm.have_many(pieces, announce=announce)
        if not announce:
            # Written after the torrent left the swarm (paused, disk error, recheck):
            # the piece counts, but only _join_swarm() may take the torrent back into it.
            if self.picker.is_finished and self.lifecycle.interrupted:
                self._finished_offline = True
                self._fire_completion_waiters()
            self._save_soon()
            return
        if self.picker.is_finished:
            self._finished()

    # -- data damaged under us (bt.storage.damage) -------------------------------

    def _lose_pieces(self, pieces: list[int]) -> None:
        """Pieces no longer on disk: out of the bitfield and the resume state."""
        self.swarm.lose(pieces)
        self.data.dirty = True
        self._wanted_changed("data lost")

    def _regain_pieces(self, pieces: list[int]) -> None:
        """Pieces of a changed file that verified again: had, as if just downloaded."""
        for index in pieces:
            if self.picker.has(index):
                continue  # downloaded again meanwhile
            self.swarm.have(index, announce=self.lifecycle.downloading)
            self.data.dirty = True
        if not self.lifecycle.downloading:
            self._save_soon()  # the check ended while the torrent was out of the swarm
        elif self.picker.is_finished:
            self._finished()

    def _piece_failed(
        self, failure: Failure, index: int, blocks: list[bytes], sources: dict[int, Any]
    ) -> None:
        if failure.check(PieceHashError) is None:
            self.swarm.piece_failed(index)
            return self._disk_failed(failure)  # a StorageError (else raised again, and logged)
        self.swarm.bad_data(index, sources, blocks, failure.value.leaf_hashes)

    def _finished(self) -> None:
        self.log.info(
            "{name}: download complete, {size} bytes verified",
            name=self.title,
            size=self.metainfo.total_length,
        )
        self._step(Event.COMPLETE)
        self.sources.completed()
        self._goal_met(self.reactor.seconds())  # --seed-ratio 0: serve not a single block
        self._fire_completion_waiters()

    def _goal_met(self, now: float) -> bool:
        """The seeding goal is met (at once for a ratio or time of 0): leave the swarm
        politely and stay idle."""
        uploaded, size = self.upload_rate.total, self.metainfo.total_length
        why = self.config.seed_goal_reached(uploaded, size, self.seeding_since, now)
        if why is None:
            return False
        self.log.info("{name}: {why}; stopped seeding", name=self.title, why=why)
        self._step(Event.GOAL_REACHED)
        return True

    def _fire_completion_waiters(self) -> None:
        waiters, self._completion_waiters = self._completion_waiters, []
        for waiter in waiters:
            waiter.callback(None)

    # -- timers and trackers ----------------------------------------------------

    def _tick(self) -> None:
        now = self.reactor.seconds()
        deadline = self.config.seed_deadline(self.seeding_since)
        if not self.links and self._idle.skip(
            now, finished=self.is_finished, urgent=self.data.dirty, deadline=deadline
        ):
            return self._park()  # 10,000 idle torrents share one timer
        self.swarm.tick(now)  # rates, each peer's tick, the choke round
        if self.data.due(now, self.config.resume_interval):
            self.save_resume()
        if self.lifecycle.accepts(Event.GOAL_REACHED) and self._goal_met(now):
            return
        self.swarm.connect_more()
        if not self.is_finished and len(self.links) < self.config.max_peers // 2:
            self.sources.need_peers()
        line = self._progress.due(self, now)
        if line is not None:
            self.log.info("{line}", line=line)
        self._park()

    def _park(self) -> None:
        """No peers, nothing to save: no tick until the next idle one (a peer wakes it)."""
        if not self.links and not self.data.dirty:
            self.ticker.park(self._tick, self._idle.next)

    def peer_joined(self) -> None:  # a peer: tick every second again (rates, chokes)
        self.ticker.wake(self._tick)

    def _disk_failed(self, failure: Failure) -> None:
        """A disk error stops this torrent (not the others) until a check finds what is valid."""
        failure.trap(StorageError)
        self.log.error("{name}: {error}", name=self.title, error=failure.value)
        # Paused: resume() checks the data again; else a retry does, after a while.
        self._step(Event.DISK_ERROR, str(failure.value))

    def _log_failure(self, failure: Failure, what: str) -> None:
        self.log.failure("{name}: unexpected error in {what}", failure, name=self.title, what=what)
