"""The user's controls on a live torrent: pause, resume, recheck, limits, file priorities.

Driven like tests/test_torrent.py: scripted peers over StringTransport, a fake
disk that verifies at once, and a fake clock.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_torrent import DATA, PIECE, FakeDisk, connect, make_torrent, seeder
from torrents import handmade_info, handmade_torrent
from twisted.internet import defer
from twisted.internet.testing import MemoryReactorClock

from bt.create import create_torrent
from bt.errors import StorageError
from bt.metainfo import Metainfo, parse_metainfo
from bt.peer.messages import Interested, Piece, Request
from bt.policy.priority import Priority
from bt.snapshot import torrent_status
from bt.status import FilePriority, TorrentState
from bt.torrent import Torrent
from bt.torrentconfig import TorrentConfig
from bt.tracker.announce import AnnounceRequest, AnnounceResponse

SKIP, NORMAL, HIGH = FilePriority.SKIP, FilePriority.NORMAL, FilePriority.HIGH

# Three files over six pieces: a = pieces 0-1, b = pieces 2-4 (shares 4 with c), c = 4-5.
FILES = [(["a.bin"], 2 * PIECE), (["b.bin"], 2 * PIECE + 500), (["c.bin"], PIECE + 500)]


@pytest.fixture
def clock() -> MemoryReactorClock:
    return MemoryReactorClock()


@pytest.fixture
def single() -> Metainfo:
    info = handmade_info([(["data.bin"], len(DATA))], name="t", piece_length=PIECE, data=DATA)
    return parse_metainfo(handmade_torrent(info))


@pytest.fixture
def multi() -> Metainfo:
    info = handmade_info(FILES, name="album", piece_length=PIECE, data=DATA)
    return parse_metainfo(handmade_torrent(info))


def requested_pieces(peer) -> set[int]:  # type: ignore[no-untyped-def]
    return {e.index for e in peer.heard() if isinstance(e, Request)}


def serve_all(peer) -> set[int]:  # type: ignore[no-untyped-def]
    """Serve until the torrent stops asking; the pieces it asked for."""
    asked: set[int] = set()
    for _ in range(100):
        requests = [e for e in peer.heard() if isinstance(e, Request)]
        if not requests:
            break
        for r in requests:
            asked.add(r.index)
            start = r.index * PIECE + r.begin
            peer.say(Piece(r.index, r.begin, DATA[start : start + r.length]))
    return asked


# -- file priorities ---------------------------------------------------------------


def test_a_skipped_file_is_not_downloaded_and_the_torrent_finishes_without_it(
    multi: Metainfo, clock: MemoryReactorClock
) -> None:
    torrent = make_torrent(multi, clock, file_priorities=[NORMAL, SKIP, NORMAL])
    torrent.startService()
    finished = torrent.when_finished()
    asked = serve_all(seeder(torrent))
    assert asked == {0, 1, 4, 5}, "piece 4 is shared with c.bin, so it is fetched"
    assert finished.called
    assert sorted(torrent.disk.written) == [0, 1, 4, 5]  # type: ignore[attr-defined]
    status = torrent_status(torrent)
    assert status.state == TorrentState.SEEDING
    assert status.progress == 1.0
    assert status.wanted == 3 * PIECE + 1000  # pieces 0, 1, 4 and the short last one
    assert [f.priority for f in status.files] == [NORMAL, SKIP, NORMAL]
    assert [f.done for f in status.files] == [2 * PIECE, 500, PIECE + 500]
    torrent.stopService()


def test_wanting_a_skipped_file_again_downloads_it(
    multi: Metainfo, clock: MemoryReactorClock
) -> None:
    torrent = make_torrent(multi, clock, file_priorities=[NORMAL, SKIP, NORMAL])
    torrent.startService()
    peer = seeder(torrent)
    serve_all(peer)
    assert torrent.is_finished
    torrent.set_file_priorities({1: HIGH})
    assert torrent.state == "downloading" and not torrent.is_finished
    assert serve_all(peer) == {2, 3}
    assert torrent.is_finished and torrent.picker.is_complete
    assert b"".join(torrent.disk.written[i] for i in range(6)) == DATA  # type: ignore[attr-defined]
    torrent.stopService()


class SkipRecordingDisk(FakeDisk):
    """Records what the torrent asks of the storage, in order."""

    def __init__(self, metainfo: Metainfo) -> None:
        super().__init__(metainfo)
        self.calls: list[object] = []

    def set_skipped(self, files: frozenset[int]) -> defer.Deferred[None]:
        self.calls.append(("skipped", set(files)))
        return super().set_skipped(files)

    def prepare(self) -> defer.Deferred[None]:
        self.calls.append("prepare")
        return super().prepare()


def test_the_storage_learns_the_skipped_files_before_it_prepares_and_on_each_change(
    multi: Metainfo, clock: MemoryReactorClock
) -> None:
    """So it never creates a skipped file, and moves data in the disk threads when one is
    wanted again (FileStorage keeps their pieces' bytes in a part file)."""
    disk = SkipRecordingDisk(multi)
    torrent = make_torrent(multi, clock, disk, file_priorities=[NORMAL, SKIP, NORMAL])
    torrent.set_file_priorities({0: SKIP})  # not started: startService tells it
    assert disk.calls == []
    torrent.startService()
    assert disk.calls == [("skipped", {0, 1}), "prepare"]
    torrent.set_file_priorities({2: HIGH})  # nothing more or less skipped
    torrent.set_file_priorities({0: NORMAL, 1: HIGH})
    assert disk.calls[2:] == [("skipped", set())]
    assert torrent.data.dirty  # the moved file's new size and time are saved
    torrent.stopService()


class SlowSkipDisk(SkipRecordingDisk):
    """set_skipped jobs that finish only when the test says so (disk threads are slow)."""

    def __init__(self, metainfo: Metainfo) -> None:
        super().__init__(metainfo)
        self.jobs: list[defer.Deferred[None]] = []

    def set_skipped(self, files: frozenset[int]) -> defer.Deferred[None]:
        super().set_skipped(files)
        job: defer.Deferred[None] = defer.Deferred()
        self.jobs.append(job)
        return job


def test_skip_changes_reach_the_storage_one_at_a_time_the_last_one_last(
    multi: Metainfo, clock: MemoryReactorClock
) -> None:
    """Two jobs in two disk threads could apply an older set last: they run in turn, and
    each reads the set when it runs."""
    disk = SlowSkipDisk(multi)
    torrent = make_torrent(multi, clock, disk)
    torrent.startService()
    disk.jobs[0].callback(None)  # the start-up job
    torrent.set_file_priorities({0: SKIP})
    torrent.set_file_priorities({1: SKIP})
    torrent.set_file_priorities({0: NORMAL})
    assert len(disk.jobs) == 2, "one job in flight; the others wait for it"
    disk.jobs[1].callback(None)
    disk.jobs[2].callback(None)
    disk.jobs[3].callback(None)
    assert disk.calls[-1] == ("skipped", {1}), "the set in force is the last one asked for"
    assert len(disk.jobs) == 4
    torrent.stopService()


def test_skipping_the_rest_of_a_download_finishes_it(
    multi: Metainfo, clock: MemoryReactorClock
) -> None:
    torrent = make_torrent(multi, clock)
    torrent.startService()
    finished = torrent.when_finished()
    torrent.set_file_priorities({0: SKIP, 1: SKIP, 2: SKIP})
    assert finished.called and torrent.state == "seeding"
    torrent.stopService()


def test_a_bad_file_index_or_priority_is_refused_by_name(
    multi: Metainfo, clock: MemoryReactorClock
) -> None:
    torrent = make_torrent(multi, clock)
    with pytest.raises(ValueError, match=r"file index 3 is not in 0\.\.2"):
        torrent.set_file_priorities({3: SKIP})
    with pytest.raises(ValueError, match="file 0: priority 'urgent' is not one of skip"):
        torrent.set_file_priorities({0: "urgent"})  # type: ignore[dict-item]
    assert torrent.file_priorities == [NORMAL, NORMAL, NORMAL]


# -- pause and resume ---------------------------------------------------------------


def test_pause_leaves_the_swarm_and_resume_joins_it_again(
    single: Metainfo, clock: MemoryReactorClock
) -> None:
    torrent = make_torrent(single, clock)
    torrent.startService()
    first = seeder(torrent)
    assert requested_pieces(first)
    paused = torrent.pause()
    assert paused.called
    assert torrent.state == "paused" and not torrent.links
    assert first.transport.disconnecting
    late = connect(torrent, b"-LT2000-latecomer001", 9)
    late.say(handshake=True)
    assert late.transport.disconnecting, "a paused torrent accepts no peers"
    clock.advance(30)
    assert torrent.state == "paused"
    torrent.resume()
    assert torrent.state == "downloading"
    finished = torrent.when_finished()
    serve_all(seeder(torrent, b"-LT2000-seeder000002", 2))
    assert finished.called
    torrent.stopService()


@pytest.mark.parametrize("control", ["pause", "recheck"])
def test_leaving_the_swarm_dials_nobody_while_it_drops_the_peers(
    single: Metainfo, clock: MemoryReactorClock, control: str
) -> None:
    """The torrent is out of the swarm (bt.lifecycle) before its peers are dropped: the
    room each dropped peer frees is not filled by dials the torrent would refuse."""
    torrent = make_torrent(single, clock, config=TorrentConfig(max_peers=2))
    torrent.startService()
    seeder(torrent, port=1)
    seeder(torrent, b"-LT2000-seeder000002", 2)
    torrent.add_candidates([("10.0.0.9", 9), ("10.0.0.8", 8)])
    assert clock.tcpClients == [], "no room while two peers are connected"
    getattr(torrent, control)()
    assert clock.tcpClients == []
    torrent.stopService()


def test_pause_saves_the_verified_pieces(
    single: Metainfo, clock: MemoryReactorClock, tmp_path: Path
) -> None:
    resume = tmp_path / "t.resume"
    torrent = make_torrent(single, clock, resume_path=resume)
    torrent.startService()
    peer = seeder(torrent)
    for _ in range(3):  # a few pieces, not all
        requests = [e for e in peer.heard() if isinstance(e, Request)]
        for r in requests:
            start = r.index * PIECE + r.begin
            peer.say(Piece(r.index, r.begin, DATA[start : start + r.length]))
    assert 0 < torrent.picker.have_count
    torrent.pause()
    assert resume.exists()
    torrent.stopService()


def test_a_torrent_added_paused_checks_its_data_and_stays_paused(
    single: Metainfo, clock: MemoryReactorClock
) -> None:
    torrent = make_torrent(single, clock, FakeDisk(single, complete=True), paused=True)
    torrent.startService()
    assert torrent.state == "paused"
    assert torrent.picker.is_complete, "the check ran: status shows the real progress"
    assert not any(a.running for a in torrent.announcers)
    torrent.resume()
    assert torrent.state == "seeding"
    torrent.stopService()


def test_resume_after_a_disk_error_checks_the_data_first(
    single: Metainfo, clock: MemoryReactorClock
) -> None:
    disk = FakeDisk(single)
    torrent = make_torrent(single, clock, disk)
    torrent.startService()
    original = disk.verify_and_write
    disk.verify_and_write = lambda index, blocks: defer.fail(StorageError("disk full"))  # type: ignore[method-assign]
    peer = seeder(torrent)
    serve_all(peer)
    assert torrent.state == "error" and torrent.error == "disk full"
    torrent.pause()
    assert torrent.state == "paused"
    clock.advance(120)
    assert torrent.state == "paused", "the automatic retry waits for the user's resume"
    disk.verify_and_write = original  # type: ignore[method-assign]
    torrent.resume()
    assert torrent.state == "downloading" and torrent.error is None
    torrent.stopService()


# -- recheck -------------------------------------------------------------------------


def test_recheck_forgets_pieces_whose_data_went_bad(
    single: Metainfo, clock: MemoryReactorClock
) -> None:
    disk = FakeDisk(single, complete=True)
    torrent = make_torrent(single, clock, disk)
    torrent.startService()
    assert torrent.state == "seeding"
    leech = connect(torrent, b"-LT2000-leecher00001", 5)
    leech.say(Interested(), handshake=True)
    disk.written[2] = b"rotten"
    torrent.recheck()
    assert leech.transport.disconnecting
    assert torrent.state == "downloading"
    assert not torrent.picker.has(2) and torrent.picker.have_count == 5
    finished = torrent.when_finished()
    serve_all(seeder(torrent))
    assert finished.called and disk.written[2] == DATA[2 * PIECE : 3 * PIECE]
    torrent.stopService()


# -- limits ----------------------------------------------------------------------------


def test_a_download_limit_set_at_run_time_throttles_connected_peers(
    single: Metainfo, clock: MemoryReactorClock
) -> None:
    torrent = make_torrent(single, clock)
    torrent.startService()
    seeder(torrent)
    (link,) = torrent.links
    assert link.protocol.read_throttle is None
    torrent.set_limits(download=50_000.0)
    assert link.protocol.read_throttle is not None
    assert torrent_status(torrent).download_limit == 50_000.0
    torrent.set_limits(upload=10_000.0)
    assert torrent.upload_bucket.rate == 10_000.0 and torrent.download_bucket.rate == 50_000.0
    torrent.set_limits(download=None)
    assert link.protocol.read_throttle is None
    torrent.stopService()


def test_status_of_a_fresh_download(single: Metainfo, clock: MemoryReactorClock) -> None:
    torrent: Torrent = make_torrent(single, clock)
    torrent.startService()
    status = torrent_status(torrent, files=False)
    assert status.state == TorrentState.DOWNLOADING
    assert (status.size, status.wanted, status.done, status.progress) == (
        len(DATA),
        len(DATA),
        0,
        0,
    )
    assert status.info_hash == single.info_hash.hex() and status.files == ()
    assert status.to_json(files=False)["state"] == "downloading"
    assert (status.format, status.info_hash_v1, status.info_hash_v2) == (
        "v1",
        single.info_hash.hex(),
        None,
    )
    torrent.stopService()


@pytest.mark.parametrize("format", ["v2", "hybrid"])
def test_status_shows_the_format_and_both_hashes(
    tmp_path: Path, clock: MemoryReactorClock, format: str
) -> None:
    (tmp_path / "data.bin").write_bytes(DATA)
    _, meta = create_torrent(tmp_path / "data.bin", piece_length=16 * 1024, format=format)
    torrent: Torrent = make_torrent(meta, clock)
    torrent.startService()
    status = torrent_status(torrent, files=False)
    assert meta.info_hash_v2 is not None
    assert (status.format, status.info_hash_v2) == (format, meta.info_hash_v2.hex())
    if format == "v2":
        assert status.info_hash_v1 is None and status.info_hash == meta.info_hash_v2[:20].hex()
    else:
        assert meta.info_hash_v1 is not None
        assert status.info_hash_v1 == status.info_hash == meta.info_hash_v1.hex()
    torrent.stopService()


# -- pieces that finish while the torrent is out of the swarm -------------------------


class HeldDisk(FakeDisk):
    """Verifies at once but holds each write until the test releases it."""

    def __init__(self, metainfo: Metainfo) -> None:
        super().__init__(metainfo)
        self.held: list[tuple[defer.Deferred[None], int, bytes]] = []

    def verify_and_write(self, index: int, blocks: list[bytes]) -> defer.Deferred[None]:
        written: defer.Deferred[None] = defer.Deferred()
        self.held.append((written, index, b"".join(blocks)))
        return written

    def release(self) -> None:
        held, self.held = self.held, []
        for written, index, data in held:
            self.written[index] = data
            written.callback(None)


class RecordingTracker:
    def __init__(self) -> None:
        self.events: list[str | None] = []

    def announce(self, request: AnnounceRequest) -> defer.Deferred[AnnounceResponse]:
        self.events.append(request.event)
        return defer.succeed(
            AnnounceResponse(
                interval=1800,
                min_interval=None,
                tracker_id=None,
                complete=None,
                incomplete=None,
                warning=None,
                peers=(),
            )
        )


def test_a_download_that_finishes_while_paused_stays_paused_until_resumed(
    single: Metainfo, clock: MemoryReactorClock, tmp_path: Path
) -> None:
    disk, tracker = HeldDisk(single), RecordingTracker()
    resume = tmp_path / "t.resume"
    torrent = make_torrent(single, clock, disk, trackers=[tracker], resume_path=resume)
    torrent.startService()
    finished = torrent.when_finished()
    serve_all(seeder(torrent))
    assert disk.held and not torrent.is_finished
    torrent.pause()
    disk.release()  # the last pieces reach the disk after the pause
    assert torrent.state == "paused" and torrent.is_finished
    assert finished.called, "verified and written: when_finished fires"
    late = connect(torrent, b"-LT2000-latecomer001", 9)
    late.say(handshake=True)
    assert late.transport.disconnecting, "still paused: no peers"
    clock.advance(2)
    assert resume.exists(), "pieces written while paused are saved without a tick"
    tracker.events.clear()
    torrent.resume()
    clock.advance(0)
    assert torrent.state == "seeding"
    assert tracker.events[:2] == ["started", "completed"]
    torrent.stopService()


def test_wanting_more_after_the_seeding_goal_asks_the_trackers_again(
    multi: Metainfo, clock: MemoryReactorClock
) -> None:
    tracker = RecordingTracker()
    config = TorrentConfig(seed_time=10)
    torrent = make_torrent(
        multi, clock, trackers=[tracker], config=config, file_priorities=[NORMAL, SKIP, NORMAL]
    )
    torrent.startService()
    serve_all(seeder(torrent))
    for _ in range(40):
        clock.advance(1)
    assert torrent.state == "finished" and tracker.events[-1] == "stopped"
    torrent.set_file_priorities({1: NORMAL})
    assert torrent.state == "downloading" and tracker.events[-1] == "started"
    torrent.stopService()


def test_a_disk_error_stops_announcing(single: Metainfo, clock: MemoryReactorClock) -> None:
    disk, tracker = FakeDisk(single), RecordingTracker()
    torrent = make_torrent(single, clock, disk, trackers=[tracker])
    torrent.startService()
    disk.verify_and_write = lambda index, blocks: defer.fail(StorageError("disk full"))  # type: ignore[method-assign]
    serve_all(seeder(torrent))
    assert torrent.state == "error"
    assert tracker.events[-1] == "stopped" and not any(a.running for a in torrent.announcers)
    torrent.stopService()


def test_files_and_pieces_share_one_priority_scale(
    multi: Metainfo, clock: MemoryReactorClock
) -> None:
    """A normal file's pieces are at the picker's normal level, before and after a change
    (two scales had a fresh picker at 4 and a changed one at 1 for the same file)."""
    torrent = make_torrent(multi, clock, file_priorities=[NORMAL, SKIP, HIGH])
    levels = [torrent.picker.piece_priority(i) for i in range(6)]
    assert levels == [Priority.NORMAL] * 2 + [Priority.SKIP] * 2 + [Priority.HIGH] * 2
    torrent.set_file_priorities({1: NORMAL, 2: NORMAL})
    assert [torrent.picker.piece_priority(i) for i in range(6)] == [Priority.NORMAL] * 6
    assert [p.piece_priority for p in (SKIP, NORMAL, HIGH)] == list(Priority)
