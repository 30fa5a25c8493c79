"""Torrent: one torrent's life (check, download, seed, pause), its data and the completion chain.

Its live peers are its :class:`~bt.swarm.swarm.Swarm`; its candidates come from
its peer sources (``bt.peersources``; trackers today). The completion chain
is one Deferred per piece: the swarm hands over a complete piece ->
``disk.verify_and_write`` (hash, then write, in the disk threads) ->
``swarm.have`` (picker, HAVE to every peer that lacks the piece). Its errback
resets the piece and blames the peers that sent it.
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

from bt.errors import PieceHashError, ResumeSaveError, StorageError
from bt.interfaces import IDiskQueue, IStorage
from bt.logs import Logger
from bt.metainfo import Metainfo
from bt.peersources import PeerSources
from bt.policy.picker import PiecePicker
from bt.priorities import piece_priorities, skipped_files, updated_priorities
from bt.progress import ProgressLine, describe_totals
from bt.status import FilePriority
from bt.storage.damage import DamageRepair, FileCheck
from bt.storage.inventory import Inventory, PieceInventory
from bt.storage.layout import Layout
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
        #: Closed after the disk queue stops (the queue never closes what it was given).
        self.storage = storage
        self.peer_id = peer_id
        self.port = port
        #: Sent as BEP 7 ``ipv6=`` when the session listens on a specific IPv6 address.
        self.announce_ipv6: str | None = None
        self.reactor = reactor
        self.rng = rng
        self.config = config
        self.state = "stopped"
        #: The user's pause: the torrent holds no peers and announces nothing until resumed.
        self.paused = paused
        #: Why the torrent is in ``error`` (None otherwise).
        self.error: str | None = None
        #: Where FileStorage writes (shown in status; empty for other storages).
        self.download_dir = download_dir
        self.layout = Layout.from_files(metainfo.files, metainfo.piece_length)
        self.geometry = metainfo.geometry
        self.file_priorities = list(file_priorities or [FilePriority.NORMAL] * len(metainfo.files))
        now = reactor.seconds()
        self.limits = limits or SharedLimits.unlimited(now)
        #: Files shortened under us or changed while paused: their pieces dropped and checked.
        self.repair = DamageRepair(
            FileCheck(disk, self.layout, [f.padding for f in metainfo.files]),
            self.title,
            ["/".join(f.path) for f in metainfo.files],
            has=lambda index: self.picker.has(index),
            lose=self._lose_pieces,
            regain=self._regain_pieces,
            failed=self._disk_failed,
            skipped=lambda: {
                i for i, p in enumerate(self.file_priorities) if p == FilePriority.SKIP
            },
        )
        #: The live peers; the torrent asks it, and tells it, through narrow calls.
        swarm = self.swarm = Swarm(
            self,
            metainfo,
            self._piece_priorities(),
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
        #: Verified pieces at start-up (resume state or a check), and saving them.
        self.inventory = PieceInventory(
            disk, metainfo, self.layout, resume_path, force_recheck=recheck
        )
        self._resume_dirty = False
        self._last_resume_save = now
        self._retry_call: Any = None
        self._completion_waiters: list[Deferred[None]] = []
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
        self._save_call: Any = None
        #: set_skipped jobs, one at a time (see _apply_skipped).
        self._skipping: Deferred[None] = defer.succeed(None)

    def _piece_priorities(self) -> list[int]:
        padding = [f.padding for f in self.metainfo.files]
        return piece_priorities(self.layout, self.file_priorities, padding)

    def _skipped_files(self) -> frozenset[int]:
        return skipped_files(self.file_priorities, [f.padding for f in self.metainfo.files])

    # -- public state -------------------------------------------------------

    @property
    def picker(self) -> PiecePicker:
        """Which pieces we have and want (the swarm drives it for peers)."""
        return self.swarm.picker

    @property
    def hash_failures(self) -> int:
        return self.swarm.hash_failures

    @property
    def info_hash(self) -> bytes:
        return self.metainfo.info_hash

    @property
    def bytes_left(self) -> int:
        """Bytes of wanted pieces we do not have (the tracker's ``left``)."""
        return self.picker.bytes_missing

    @property
    def is_finished(self) -> bool:
        return self.picker.is_finished

    def scrape(self) -> Deferred[Any]:
        """Seeders, downloads and leechers as the first tracker able to scrape counts them."""
        return self.trackers.scrape(self.info_hash)

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
        self.state = "checking"
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
        checked = self._apply_skipped()
        checked.addCallback(lambda _: self.disk.prepare())
        checked.addCallback(lambda _: self.inventory.load())
        checked.addCallbacks(self._begin, self._disk_failed)
        checked.addErrback(self._log_failure, "start")

    def save_resume(self) -> Deferred[None]:
        """Save the verified pieces now (they are all written: see ``_piece_written``)."""
        if self.state in ("stopped", "checking"):
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
        if not self.running:
            return
        self.error = None
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
        if valid:
            self._resume_dirty = True  # a check's result is worth saving too
        if self.paused:
            self.state = "paused"
            if self._resume_dirty:
                self.save_resume()
        else:
            self._run()
        if self.is_finished:
            self._fire_completion_waiters()

    def _run(self) -> None:
        """Join the swarm: tick, announce, accept and dial peers."""
        self.state = "downloading"
        self.ticker.add(self._tick)
        if self.is_finished:
            self._start_seeding()
            # Complete data and the goal met already (say --seed-ratio 0): serve nobody.
            # A download finished while paused tells trackers first; the tick checks then.
            if not self._finished_offline and self._goal_met_now():
                return
        self.sources.start(completed=self._finished_offline)  # finished while we were away
        self._finished_offline = False

    def _save_soon(self) -> None:
        """Save the resume state in a moment; for pieces written while no tick runs."""
        if self._save_call is None or not self._save_call.active():
            self._save_call = self.reactor.callLater(1.0, self._save_if_dirty)

    def _save_if_dirty(self) -> None:
        self._save_call = None
        if self._resume_dirty:
            self.save_resume()

    def _leave_swarm(self, why: str) -> Deferred[Any]:
        """Stop ticking and announcing, drop every peer now (not when their sockets
        close); fires when the peer sources (trackers: ``stopped``) are done."""
        self.ticker.remove(self._tick)
        self.swarm.close_all(why, detach=True)
        return self.sources.stop()

    # -- the user's controls --------------------------------------------------

    def pause(self) -> Deferred[None]:
        """Leave the swarm (trackers told ``stopped``) and save the state; fires when saved."""
        if self.paused:
            return defer.succeed(None)
        self.paused = True
        self.log.info("{name}: paused", name=self.title)
        if self.state not in ("downloading", "seeding", "finished", "error"):
            return defer.succeed(None)  # checking: _begin stays paused; stopped: nothing runs
        self._cancel_retry()
        stops = self._leave_swarm("torrent paused")
        self.state = "paused"
        saved = self.save_resume()
        done = defer.DeferredList([saved, stops], consumeErrors=True)
        return done.addCallback(lambda _: None)

    def resume(self) -> None:
        """Undo :meth:`pause`; a torrent paused in ``error`` checks its data first."""
        if not self.paused:
            return
        self.paused = False
        self.log.info("{name}: resumed", name=self.title)
        if self.state != "paused":
            return  # still checking (it will run) or not started (it will start)
        if self.error is not None:
            self._check_again("resuming after a disk error")
            return
        # Files changed meanwhile (edited, truncated, replaced) are not served as they are.
        self.state = "checking"
        checked = self.repair.files_changed(self.inventory.stamps, "while the torrent was paused")
        checked.addCallbacks(self._resume_checked, self._disk_failed)
        checked.addErrback(self._log_failure, "resume")

    def _resume_checked(self, _: None) -> None:
        if not self.running or self.state != "checking":
            return  # stopped meanwhile
        if self.paused:
            self.state = "paused"  # paused again while the files were looked at
        else:
            self._run()

    def recheck(self) -> None:
        """Forget which pieces are verified and hash the data again, as on a first start."""
        if self.state in ("checking", "stopped"):
            return
        self._cancel_retry()
        self._leave_swarm("torrent rechecking")
        self.swarm.reset(self._piece_priorities())
        self._check_again("recheck asked for")

    def _check_again(self, why: str) -> None:
        self.state = "checking"
        checked = self.inventory.check(why)
        checked.addCallbacks(self._begin, self._disk_failed)
        checked.addErrback(self._log_failure, "check")

    def _cancel_retry(self) -> None:
        if self._retry_call is not None and self._retry_call.active():
            self._retry_call.cancel()
        self._retry_call = None

    def set_limits(self, **limits: Any) -> None:
        """This torrent's own rate limits (``upload``, ``download``; see Swarm.set_limits)."""
        self.swarm.set_limits(**limits)

    def set_file_priorities(self, changes: Mapping[int, FilePriority]) -> None:
        """Skip files or put them first; a finished torrent downloads again if more is wanted."""
        skipped = self._skipped_files()
        self.file_priorities = updated_priorities(self.file_priorities, changes)
        if self.running and self._skipped_files() != skipped:
            # In the disk threads (the storage orders it against writes there): a file
            # wanted again gets its bytes from the part file, and its new stamp is saved.
            moved = self._apply_skipped()
            moved.addCallback(self._skipped_moved)
            moved.addErrback(self._disk_failed)
            moved.addErrback(self._log_failure, "moving data of skipped files")
        picker = self.picker
        for index, priority in enumerate(self._piece_priorities()):
            if picker.piece_priority(index) != priority:
                picker.set_piece_priority(index, priority)
        self._wanted_changed()

    def _apply_skipped(self) -> Deferred[None]:
        """Tell the storage which files are skipped, one job at a time.

        Each job reads the set when it runs: two jobs in two disk threads could
        otherwise finish in the wrong order and leave the older set in force.
        """
        done: Deferred[None] = Deferred()

        def run(_: object) -> Deferred[None]:
            job = self.disk.set_skipped(self._skipped_files())
            job.chainDeferred(done)  # the queue goes on whatever this job's outcome
            return job

        self._skipping.addCallback(run)
        return done

    def _skipped_moved(self, _: None) -> None:
        self._resume_dirty = True  # a file created or filled: its new stamp must be saved
        self._save_soon()  # also while paused: a resume compares the files' stamps

    def _wanted_changed(self, why: str = "more files wanted") -> None:
        if self.state in ("seeding", "finished") and not self.is_finished:
            self.log.info("{name}: {why}; downloading again", name=self.title, why=why)
            self.state = "downloading"
            self.seeding_since = None
            self.sources.start()  # a torrent that met its seeding goal had left its trackers
        elif self.state == "downloading" and self.is_finished:
            self._finished()
            return
        self.swarm.wanted_changed()

    def stopService(self) -> Deferred[None]:
        """Drop peers, tell trackers we left, flush and close the files."""
        super().stopService()
        self._cancel_retry()
        if self._save_call is not None and self._save_call.active():
            self._save_call.cancel()
        self._save_call = None
        if self.state != "stopped":
            self.log.info("{line}", line=describe_totals(self))
        self.ticker.remove(self._tick)
        self.swarm.close_all("torrent stopping")
        saved = self.save_resume() if self._resume_dirty else defer.succeed(None)
        self.state = "stopped"
        stops = self.sources.stop(every=True)
        stops.addCallback(lambda _: self.trackers.close())
        done = defer.DeferredList([saved, stops], consumeErrors=True)
        done.addCallback(lambda _: self.disk.sync())
        done.addErrback(self._disk_failed)
        done.addCallback(lambda _: self.disk.stop())
        done.addCallback(self._close_storage)
        return done

    def _close_storage(self, _: object) -> None:
        if self.storage is not None:
            self.storage.close()

    # -- peers: the swarm asks, the torrent answers -----------------------------

    def refusal(self) -> str | None:
        """Peers join (and are dialled) only while the torrent is in the swarm."""
        if self.state not in ("downloading", "seeding"):
            return f"torrent is {self.state}"
        return None

    # -- the completion chain ------------------------------------------------------

    def on_piece_complete(self, index: int, blocks: list[bytes], sources: dict[int, Any]) -> None:
        """Verify and write off the reactor, then have or blame."""
        d = self.disk.verify_and_write(index, blocks)
        d.addCallbacks(
            self._piece_written,
            self._piece_failed,
            callbackArgs=(index, blocks),
            errbackArgs=(index, blocks, sources),
        )
        d.addErrback(self._log_failure, f"piece {index}")

    def _piece_written(self, _: None, index: int, blocks: list[bytes]) -> None:
        self._resume_dirty = True
        announce = self.state == "downloading"
        self.swarm.have(index, blocks=blocks, announce=announce)
        if not announce:
            # Written after the torrent left the swarm (paused, disk error, recheck):
            # the piece counts, but only _run() may take the torrent back into it.
            if self.picker.is_finished and self.state in ("paused", "error"):
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
        self._resume_dirty = True
        self._wanted_changed("data lost")

    def _regain_pieces(self, pieces: list[int]) -> None:
        """Pieces of a changed file that verified again: had, as if just downloaded."""
        for index in pieces:
            if self.picker.has(index):
                continue  # downloaded again meanwhile
            self.swarm.have(index, announce=self.state == "downloading")
            self._resume_dirty = True
        if self.state != "downloading":
            self._save_soon()  # the check ended while the torrent was out of the swarm
        elif self.picker.is_finished:
            self._finished()

    def _piece_failed(
        self, failure: Failure, index: int, blocks: list[bytes], sources: dict[int, tuple[str, int]]
    ) -> None:
        self.swarm.piece_failed(index)
        if failure.check(StorageError) is not None:
            self._disk_failed(failure)
            return
        failure.trap(PieceHashError)
        self.swarm.bad_data(index, sources, blocks)

    def _finished(self) -> None:
        self.log.info(
            "{name}: download complete, {size} bytes verified",
            name=self.title,
            size=self.metainfo.total_length,
        )
        self._start_seeding()
        self.sources.completed()
        self._goal_met_now()  # --seed-ratio 0: stop before serving a single block
        self._fire_completion_waiters()

    def _start_seeding(self) -> None:
        self.state = "seeding"
        self.seeding_since = self.reactor.seconds()
        if self.picker.is_complete:  # else some files skipped: a seed may still be needed
            self.swarm.drop_seeds()

    def _seed_goal_reached(self, now: float) -> str | None:
        uploaded, size = self.upload_rate.total, self.metainfo.total_length
        return self.config.seed_goal_reached(uploaded, size, self.seeding_since, now)

    def _goal_met_now(self) -> bool:
        """Finish at once when the seeding goal is met already (a ratio or time of 0)."""
        why = self._seed_goal_reached(self.reactor.seconds())
        if why is None:
            return False
        self._finish_seeding(why)
        return True

    def _finish_seeding(self, why: str) -> None:
        """The seeding goal is met: leave the swarm politely and stay idle."""
        self.state = "finished"
        self.log.info("{name}: {why}; stopped seeding", name=self.title, why=why)
        self.swarm.close_all("finished seeding")
        self.sources.stop(every=True)

    def _fire_completion_waiters(self) -> None:
        waiters, self._completion_waiters = self._completion_waiters, []
        for waiter in waiters:
            waiter.callback(None)

    # -- timers and trackers ----------------------------------------------------

    def _tick(self) -> None:
        now = self.reactor.seconds()
        deadline = self.config.seed_deadline(self.seeding_since)
        if not self.links and self._idle.skip(
            now, finished=self.is_finished, urgent=self._resume_dirty, deadline=deadline
        ):
            return  # 1,000 idle torrents share one timer
        self.swarm.tick(now)  # rates, each peer's tick, the choke round
        if self._resume_dirty and now - self._last_resume_save >= self.config.resume_interval:
            self.save_resume()
        if self.state == "seeding":
            why = self._seed_goal_reached(now)
            if why is not None:
                self._finish_seeding(why)
                return
        self.swarm.connect_more()
        if not self.is_finished and len(self.links) < self.config.max_peers // 2:
            self.sources.need_peers()
        line = self._progress.due(self, now)
        if line is not None:
            self.log.info("{line}", line=line)

    def _disk_failed(self, failure: Failure) -> None:
        """A disk error stops this torrent (not the others) until a check finds what is valid."""
        failure.trap(StorageError)
        self.log.error("{name}: {error}", name=self.title, error=failure.value)
        if self.state in ("error", "stopped"):
            return
        self.state = "error"
        self.error = str(failure.value)
        self._leave_swarm("torrent has a disk error")
        if self.paused:
            self.state = "paused"  # resume() checks the data again
            return
        delay = self.config.error_retry
        self.log.warn(
            "{name}: paused by the disk error; checking the data again in {delay:g} s",
            name=self.title,
            delay=delay,
        )
        self._retry_call = self.reactor.callLater(delay, self._retry_after_error)

    def _retry_after_error(self) -> None:
        self._retry_call = None
        if self.state != "error":
            return
        self._check_again("retrying after a disk error")

    def _log_failure(self, failure: Failure, what: str) -> None:
        self.log.failure("{name}: unexpected error in {what}", failure, name=self.title, what=what)
