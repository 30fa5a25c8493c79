"""Seeding from damaged data: files shortened under a seed, or changed while bt was
stopped or the torrent paused, are caught; only their pieces are checked again.

Real files in a tmp folder, the real FileStorage and DiskQueue, but the disk
"threads" run each job at once in the test's thread and time is a fake clock,
so each test reads as a story: what happened to the file, what the peer saw,
what the torrent now has.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from test_torrent import DATA, PIECE, ScriptedPeer, leecher, seeder
from torrents import handmade_info, handmade_torrent
from twisted.internet import defer
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure

from bt.errors import StorageError
from bt.metainfo import Metainfo, parse_metainfo
from bt.peer.messages import Interested, Piece, Request
from bt.snapshot import torrent_status
from bt.storage.disk import DiskQueue
from bt.storage.files import FileStorage
from bt.storage.layout import Layout
from bt.storage.verifier import V1Verifier
from bt.torrent import Torrent

#: test_torrent's six pieces of 32 KiB (the last 1000 bytes) in two files: a.bin is
#: pieces 0-1 and the head of 2; b.bin the tail of 2, then 3-5.
A_SIZE = 2 * PIECE + 5000
B_SIZE = len(DATA) - A_SIZE
PIECES_OF_B = [2, 3, 4, 5]
#: b.bin cut here keeps pieces 2 and 3 whole and loses 4 and 5.
B_KEEPS_TWO_PIECES = 4 * PIECE - A_SIZE


class SyncPool:
    """A thread pool that runs each job at once, in the caller's thread."""

    def callInThreadWithCallback(
        self,
        on_result: Callable[[bool, Any], None],
        job: Callable[..., Any],
        *args: Any,
        **kw: Any,
    ) -> None:
        try:
            result = job(*args, **kw)
        except Exception:  # a job's failure is its result, as in the real pool
            on_result(False, Failure())
        else:
            on_result(True, result)


class SyncReactor(MemoryReactorClock):
    def callFromThread(self, f: Callable[..., Any], *args: Any, **kw: Any) -> None:
        f(*args, **kw)


class HashCounter:
    """Wraps the disk queue's hash_piece: which pieces a check read and hashed."""

    def __init__(self, disk: DiskQueue) -> None:
        self.hashed: list[int] = []
        self._hash = disk.hash_piece
        disk.hash_piece = self  # type: ignore[method-assign]

    def __call__(self, index: int) -> Any:
        self.hashed.append(index)
        return self._hash(index)


@pytest.fixture
def metainfo() -> Metainfo:
    info = handmade_info(
        [(["a.bin"], A_SIZE), (["b.bin"], B_SIZE)], name="pair", piece_length=PIECE, data=DATA
    )
    return parse_metainfo(handmade_torrent(info))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """The complete data of the torrent: a seed's download folder."""
    root = tmp_path / "pair"
    root.mkdir()
    (root / "a.bin").write_bytes(DATA[:A_SIZE])
    (root / "b.bin").write_bytes(DATA[A_SIZE:])
    return root


@pytest.fixture
def clock() -> SyncReactor:
    return SyncReactor()


class Seed:
    """A torrent over real files with its disk queue and a count of the pieces it hashed.

    ``folder`` is the torrent's own folder (``pair``), inside the download folder."""

    def __init__(
        self,
        metainfo: Metainfo,
        folder: Path,
        clock: SyncReactor,
        *,
        max_open: int = 64,
        **options: Any,
    ) -> None:
        layout = Layout.from_files(metainfo.files, metainfo.piece_length)
        self.storage = FileStorage(folder.parent, metainfo.files, layout, max_open=max_open)
        self.disk = DiskQueue(
            self.storage,
            V1Verifier(metainfo.piece_hashes),
            metainfo.piece_size,
            reactor=clock,
            pool=SyncPool(),  # type: ignore[arg-type]
        )
        self.hashes = HashCounter(self.disk)
        self.torrent = Torrent(
            metainfo,
            self.disk,
            storage=self.storage,
            peer_id=b"-BT0100-damagedseed!",
            port=6881,
            reactor=clock,
            rng=random.Random(4),
            **options,
        )

    def start(self) -> Torrent:
        self.torrent.startService()
        return self.torrent

    def stop(self) -> None:
        stopped = self.torrent.stopService()
        assert stopped.called


@pytest.fixture
def seed(metainfo: Metainfo, folder: Path, clock: SyncReactor) -> Iterator[Seed]:
    seed = Seed(metainfo, folder, clock)
    torrent = seed.start()
    assert torrent.state == "seeding" and torrent.picker.is_complete
    seed.hashes.hashed.clear()
    yield seed
    if torrent.running:
        seed.stop()


def pieces(torrent: Torrent) -> list[int]:
    return list(torrent.picker.have_bitfield())


def blocks(peer: ScriptedPeer) -> list[Piece]:
    return [event for event in peer.heard() if isinstance(event, Piece)]


def download_again(torrent: Torrent) -> int:
    """A peer with every piece serves what the torrent asks; returns the blocks it sent."""
    return seeder(torrent, b"-LT2000-healthyseed1", 9).serve()


def test_a_file_shortened_under_a_seed_is_caught_at_the_next_request(
    seed: Seed, folder: Path
) -> None:
    torrent = seed.torrent
    early = leecher(torrent, 1)  # told we have every piece
    early.heard()
    peer = leecher(torrent, 2)
    peer.heard()
    peer.say(Request(0, 0, 16384))
    assert len(blocks(peer)) == 1

    os.truncate(folder / "b.bin", B_KEEPS_TWO_PIECES)
    peer.say(Request(4, 0, 16384))

    # Before: no answer, no error, "seeding 6/6", and the peer waited forever.
    assert not blocks(peer)
    assert peer.transport.disconnecting
    assert "cannot serve piece 4" in (peer.protocol.close_reason or "")
    assert seed.hashes.hashed == PIECES_OF_B, "only the shortened file's pieces are checked"
    assert pieces(torrent) == [0, 1, 2, 3], "what still verifies stays; 4 and 5 are lost"
    assert torrent.state == "downloading"
    status = torrent_status(torrent)
    assert status.pieces_have == 4
    assert status.error is not None and "b.bin" in status.error
    assert "a.bin" not in status.error

    # A peer that was told we have piece 5 and asks for it is closed, not left waiting.
    early.say(Request(5, 0, 1000))
    assert early.transport.disconnecting
    assert "whose data we lost" in (early.protocol.close_reason or "")

    # A new peer hears the truth.
    late = leecher(torrent, 3)
    bitfields = [e for e in late.heard() if type(e).__name__ == "PeerBitfield"]
    assert list(bitfields[0].bitfield) == [0, 1, 2, 3]

    # The lost pieces are downloaded again, and the torrent is a seed once more.
    assert download_again(torrent) == 3, "pieces 4 and 5 only: three blocks"
    assert torrent.picker.is_complete and torrent.state == "seeding"
    assert torrent_status(torrent).error is None
    assert (folder / "b.bin").read_bytes() == DATA[A_SIZE:]


def test_a_slow_peer_with_requests_queued_for_lost_pieces_is_closed(
    seed: Seed, folder: Path
) -> None:
    """Its socket is full, so its requests wait in the upload queue; no REJECT can
    answer them (no fast extension), so the connection is closed, not left waiting."""
    torrent = seed.torrent
    slow, other = leecher(torrent, 1), leecher(torrent, 2)
    slow.heard()
    other.heard()
    slow.transport.producer.pauseProducing()  # the transport's buffer is full
    slow.say(Request(0, 0, 16384), Request(5, 0, 1000))
    assert not slow.transport.disconnecting
    os.truncate(folder / "b.bin", B_KEEPS_TWO_PIECES)
    other.say(Request(4, 0, 16384))
    assert other.transport.disconnecting and slow.transport.disconnecting
    assert "whose data we lost" in (slow.protocol.close_reason or "")


def test_a_deleted_file_loses_all_its_pieces(
    metainfo: Metainfo, folder: Path, clock: SyncReactor
) -> None:
    # One descriptor open at most: reading b.bin closed a.bin's, so it is opened again.
    seed = Seed(metainfo, folder, clock, max_open=1)
    torrent = seed.start()
    seed.hashes.hashed.clear()
    (folder / "a.bin").unlink()
    peer = leecher(torrent)
    peer.heard()
    peer.say(Request(1, 0, 16384))
    assert peer.transport.disconnecting
    assert seed.hashes.hashed == [0, 1, 2]
    assert pieces(torrent) == [3, 4, 5]
    assert "a.bin has 0 of" in (torrent_status(torrent).error or "")
    seed.stop()


def not_in_memory(storage: FileStorage) -> None:
    """The bytes of a failing disk are not in the page cache: every read goes to the disk
    (``FileStorage.read_cached`` would otherwise answer without it)."""
    storage.read_cached = lambda index, begin, sizes: None  # type: ignore[method-assign]


def test_a_read_error_checks_that_file_and_a_failing_disk_stops_the_torrent(
    metainfo: Metainfo, folder: Path, clock: SyncReactor
) -> None:
    seed = Seed(metainfo, folder, clock)
    torrent = seed.start()
    failing = {"on": True}
    read = seed.storage.read

    def eio(index: int, begin: int, length: int) -> bytes:
        if failing["on"]:
            raise StorageError(f"cannot read {folder}/b.bin: Input/output error (EIO)")
        return read(index, begin, length)

    seed.storage.read = eio  # type: ignore[method-assign]
    not_in_memory(seed.storage)
    peer = leecher(torrent)
    peer.heard()
    peer.say(Request(4, 0, 16384))
    # The issue: a read error marks that file's pieces missing and checks them again;
    # the check fails the same way, so it is a failing disk and the torrent stops.
    assert torrent.state == "error"
    assert "Input/output error" in (torrent.error or "")
    assert pieces(torrent) == [0, 1], "b.bin's pieces are no longer served as had"
    assert peer.transport.disconnecting
    failing["on"] = False
    clock.advance(torrent.config.error_retry)  # the disk error's own retry: a full check
    assert pieces(torrent) == list(range(6)), "nothing on disk was lost: all verify again"
    seed.stop()


def test_many_short_reads_at_once_make_one_check(seed: Seed, folder: Path) -> None:
    torrent = seed.torrent
    peers = [leecher(torrent, n) for n in range(3)]
    for peer in peers:
        peer.heard()
    os.truncate(folder / "b.bin", 0)
    seed.disk.existing_lengths = counting(seed.disk.existing_lengths)  # type: ignore[method-assign]
    for peer in peers:
        peer.say(Request(5, 0, 1000))
    assert all(peer.transport.disconnecting for peer in peers)
    assert seed.disk.existing_lengths.calls == 1  # type: ignore[attr-defined]
    assert seed.hashes.hashed == PIECES_OF_B
    assert pieces(torrent) == [0, 1]


def counting(method: Callable[[], Any]) -> Any:
    def counted() -> Any:
        counted.calls += 1  # type: ignore[attr-defined]
        return method()

    counted.calls = 0  # type: ignore[attr-defined]
    return counted


def test_a_file_changed_while_bt_was_stopped_is_checked_alone_at_start(
    metainfo: Metainfo, folder: Path, clock: SyncReactor, tmp_path: Path
) -> None:
    resume = tmp_path / "pair.resume"
    first = Seed(metainfo, folder, clock, resume_path=resume)
    first.start()
    first.stop()
    assert resume.exists()

    # Someone edits a.bin while bt is down: piece 1's bytes change, size and mtime too.
    with open(folder / "a.bin", "r+b") as handle:
        handle.seek(PIECE + 10)
        handle.write(b"edited")
    os.utime(folder / "a.bin", ns=(1, 1))

    second = Seed(metainfo, folder, clock, resume_path=resume)
    torrent = second.start()
    assert second.hashes.hashed == [0, 1, 2], "before: every piece of the torrent was hashed"
    assert pieces(torrent) == [0, 2, 3, 4, 5]
    assert torrent.state == "downloading"
    second.stop()

    # Nothing changed since: nothing is hashed.
    third = Seed(metainfo, folder, clock, resume_path=resume)
    torrent = third.start()
    assert third.hashes.hashed == []
    assert pieces(torrent) == [0, 2, 3, 4, 5]
    third.stop()


def test_a_file_changed_while_paused_is_checked_before_it_is_served(
    seed: Seed, folder: Path
) -> None:
    torrent = seed.torrent
    paused = torrent.pause()
    assert paused.called and torrent.state == "paused"

    with open(folder / "b.bin", "r+b") as handle:  # the same size, other bytes in piece 3
        handle.seek(PIECE)
        handle.write(b"\0" * 100)
    os.utime(folder / "b.bin", ns=(2, 2))
    torrent.resume()

    assert seed.hashes.hashed == PIECES_OF_B, "before: resumed serving what was there"
    assert pieces(torrent) == [0, 1, 2, 4, 5]
    assert torrent.state == "downloading"
    assert download_again(torrent) == 2, "piece 3 only: two blocks"
    assert torrent.state == "seeding"


def test_resuming_with_unchanged_files_hashes_nothing(seed: Seed) -> None:
    torrent = seed.torrent
    torrent.pause()
    torrent.resume()
    assert seed.hashes.hashed == []
    assert torrent.state == "seeding" and torrent.picker.is_complete


def test_pausing_again_while_the_files_are_looked_at_stays_paused(
    metainfo: Metainfo, folder: Path, clock: SyncReactor
) -> None:
    seed = Seed(metainfo, folder, clock)
    torrent = seed.start()
    torrent.pause()
    stamps = seed.disk.file_stamps
    held: list[tuple[defer.Deferred[Any], Any]] = []

    def later() -> defer.Deferred[Any]:
        waiting: defer.Deferred[Any] = defer.Deferred()
        held.append((waiting, stamps()))
        return waiting

    seed.disk.file_stamps = later  # type: ignore[method-assign]
    torrent.resume()
    assert torrent.state == "checking"
    torrent.pause()
    waiting, result = held[0]
    waiting.callback(result.result)
    assert torrent.state == "paused" and not torrent.links
    seed.stop()


def test_peer_wire_request_for_a_piece_never_had_is_still_ignored(seed: Seed) -> None:
    """Lenient as before: a confused request for a piece we never announced closes nothing."""
    torrent = seed.torrent
    torrent.picker.lose(3)  # as if never had; not lost to damage
    peer = leecher(torrent)
    peer.heard()
    peer.say(Interested(), Request(3, 0, 16384))
    assert not peer.transport.disconnecting
    assert not blocks(peer)


def test_a_skipped_file_that_kept_its_bytes_and_was_cut_is_damage_too(
    seed: Seed, folder: Path
) -> None:
    """Skipping a.bin after the download keeps its bytes in a.bin (not in a part file):
    deleting it then must not leave piece 2 (shared with b.bin) silently unanswered."""
    from bt.status import FilePriority

    torrent = seed.torrent
    torrent.set_file_priorities({0: FilePriority.SKIP})
    peer = leecher(torrent, 2)
    peer.heard()
    os.truncate(folder / "a.bin", 0)
    peer.say(Request(2, 0, 16384))

    assert not blocks(peer)
    assert peer.transport.disconnecting
    assert pieces(torrent) == [3, 4, 5], "a.bin's pieces, 2 included, are lost"
    status = torrent_status(torrent)
    assert status.error is not None and "a.bin" in status.error
    assert torrent.state == "downloading", "piece 2 holds b.bin's bytes: wanted again"


def test_one_unreadable_block_rechecks_its_file_and_what_verifies_comes_back(
    seed: Seed, folder: Path
) -> None:
    """A read error once (a bad sector, a flaky mount): the file's pieces are checked
    again, they verify, and the torrent keeps seeding."""
    torrent = seed.torrent
    read = seed.storage.read
    failures = {"left": 1}

    def eio_once(index: int, begin: int, length: int) -> bytes:
        if failures["left"]:
            failures["left"] -= 1
            raise StorageError(f"cannot read {folder}/b.bin: Input/output error (EIO)")
        return read(index, begin, length)

    seed.storage.read = eio_once  # type: ignore[method-assign]
    not_in_memory(seed.storage)
    peer = leecher(torrent, 2)
    peer.heard()
    peer.say(Request(4, 0, 16384))
    assert peer.transport.disconnecting
    assert seed.hashes.hashed == PIECES_OF_B, "only that file's pieces are checked"
    assert pieces(torrent) == list(range(6)) and torrent.state == "seeding"
