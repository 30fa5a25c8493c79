"""The seeding read cache: one read per piece, bounded memory, failures passed on."""

from __future__ import annotations

import random

import pytest
from twisted.internet import defer
from twisted.python.failure import Failure

from bt.errors import StorageError
from bt.storage.readcache import CHUNK, DEFAULT_CAPACITY, PieceReadCache, ReadCachePool

PIECE = 64


class Disk:
    def __init__(self) -> None:
        self.reads: list[tuple[int, int, int]] = []
        self.pending: list[tuple[defer.Deferred[bytes], bytes]] = []
        self.hold = False

    def read(self, index: int, begin: int, length: int) -> defer.Deferred[bytes]:
        self.reads.append((index, begin, length))
        data = bytes([index]) * PIECE
        data = data[begin : begin + length]
        if self.hold:
            d: defer.Deferred[bytes] = defer.Deferred()
            self.pending.append((d, data))
            return d
        return defer.succeed(data)


def test_blocks_of_one_piece_cost_one_read() -> None:
    disk = Disk()
    cache = PieceReadCache(disk.read, lambda i: PIECE, capacity=4 * PIECE)
    assert cache.read(1, 0, 16).result == b"\x01" * 16
    assert cache.read(1, 16, 16).result == b"\x01" * 16
    assert disk.reads == [(1, 0, PIECE)]
    assert (cache.hits, cache.misses) == (1, 1)


def test_concurrent_requests_share_the_read_in_flight() -> None:
    disk = Disk()
    disk.hold = True
    cache = PieceReadCache(disk.read, lambda i: PIECE, capacity=4 * PIECE)
    first, second = cache.read(2, 0, 8), cache.read(2, 8, 8)
    assert len(disk.reads) == 1
    d, data = disk.pending.pop()
    d.callback(data)
    assert first.result == second.result == b"\x02" * 8


def test_memory_is_bounded_least_recently_used_first() -> None:
    disk = Disk()
    cache = PieceReadCache(disk.read, lambda i: PIECE, capacity=2 * PIECE)
    for index in (0, 1, 0, 2):  # 1 is the least recently used when 2 arrives
        cache.read(index, 0, 1)
    cache.read(0, 0, 1)
    cache.read(1, 0, 1)
    assert disk.reads == [(0, 0, PIECE), (1, 0, PIECE), (2, 0, PIECE), (1, 0, PIECE)]


def test_pieces_bigger_than_the_cache_are_read_block_by_block() -> None:
    disk = Disk()
    cache = PieceReadCache(disk.read, lambda i: PIECE, capacity=PIECE // 2)
    cache.read(3, 16, 16)
    assert disk.reads == [(3, 16, 16)]


def test_a_failed_read_fails_every_waiter_and_is_not_cached() -> None:
    disk = Disk()
    disk.hold = True
    cache = PieceReadCache(disk.read, lambda i: PIECE, capacity=4 * PIECE)
    first, second = cache.read(4, 0, 8), cache.read(4, 8, 8)
    d, _ = disk.pending.pop()
    d.errback(StorageError("cannot read x: Input/output error"))
    for waiter in (first, second):
        failures: list[object] = []
        waiter.addErrback(failures.append)
        assert failures
    disk.hold = False
    assert cache.read(4, 0, 8).result == b"\x04" * 8


# -- aligned chunks, a shared pool ----------------------------------------------------

MiB = 1024 * 1024
BLOCK = 16 * 1024
_BASE = random.Random(0).randbytes(2 * MiB)


def content(index: int, begin: int, length: int) -> bytes:
    """What the fake disk holds: different bytes per piece and offset, cheap to make."""
    start = (index * 7919) % MiB + begin
    return _BASE[start : start + length]


class ChunkDisk:
    """A disk of pieces of ``piece_size`` (the last one ``last_size``), reads counted."""

    def __init__(self, piece_size: int, pieces: int = 1000, last_size: int | None = None):
        self.piece_size_ = piece_size
        self.pieces = pieces
        self.last_size = piece_size if last_size is None else last_size
        self.reads: list[tuple[int, int, int]] = []
        self.bytes_read = 0
        self.hold = False
        self.pending: list[tuple[defer.Deferred[bytes], bytes]] = []
        self.short = False

    def piece_size(self, index: int) -> int:
        return self.last_size if index == self.pieces - 1 else self.piece_size_

    def read(self, index: int, begin: int, length: int) -> defer.Deferred[bytes]:
        self.reads.append((index, begin, length))
        self.bytes_read += length
        data = content(index, begin, min(length, self.piece_size(index) - begin))
        if self.short:
            data = data[: len(data) // 2]
        if self.hold:
            d: defer.Deferred[bytes] = defer.Deferred()
            self.pending.append((d, data))
            return d
        return defer.succeed(data)

    def answer_all(self) -> None:
        pending, self.pending = self.pending, []
        for d, data in pending:
            d.callback(data)


def failure_of(d: defer.Deferred[bytes]) -> Failure:
    failures: list[Failure] = []
    d.addErrback(failures.append)
    assert failures, f"expected a failure, got {d.result!r}"
    return failures[0]


def test_a_miss_reads_the_aligned_chunk_holding_the_block() -> None:
    disk = ChunkDisk(piece_size=100)
    cache = PieceReadCache(disk.read, disk.piece_size, capacity=1000, chunk_size=32)
    assert cache.read(5, 40, 8).result == content(5, 40, 8)
    assert cache.read(5, 48, 16).result == content(5, 48, 16)  # same chunk: from memory
    assert cache.read(5, 32, 8).result == content(5, 32, 8)  # earlier in that chunk, too
    assert disk.reads == [(5, 32, 32)]
    assert (cache.hits, cache.misses, cache.bytes_read) == (2, 1, 32)


def test_the_last_chunk_of_a_piece_is_short() -> None:
    disk = ChunkDisk(piece_size=100)
    cache = PieceReadCache(disk.read, disk.piece_size, capacity=1000, chunk_size=32)
    assert cache.read(5, 96, 4).result == content(5, 96, 4)
    assert disk.reads == [(5, 96, 4)]
    assert cache.size == 4


def test_a_piece_smaller_than_a_chunk_is_one_chunk_and_so_is_the_short_last_piece() -> None:
    disk = ChunkDisk(piece_size=BLOCK * 4, pieces=3, last_size=BLOCK + 5)
    cache = PieceReadCache(disk.read, disk.piece_size)
    cache.read(0, BLOCK, BLOCK)
    assert cache.read(2, BLOCK, 5).result == content(2, BLOCK, 5)
    assert disk.reads == [(0, 0, BLOCK * 4), (2, 0, BLOCK + 5)]


def test_a_block_that_fills_its_chunk_is_served_without_a_copy() -> None:
    disk = ChunkDisk(piece_size=64)
    cache = PieceReadCache(disk.read, disk.piece_size, capacity=1000, chunk_size=16)
    first = cache.read(0, 16, 16).result
    assert cache.read(0, 16, 16).result is first


def test_a_block_straddling_two_chunks_is_read_as_is_and_counted() -> None:
    disk = ChunkDisk(piece_size=100)
    cache = PieceReadCache(disk.read, disk.piece_size, capacity=1000, chunk_size=32)
    assert cache.read(1, 24, 16).result == content(1, 24, 16)
    assert disk.reads == [(1, 24, 16)]
    assert (cache.direct_reads, cache.misses, cache.bytes_read) == (1, 0, 16)


def test_a_block_straddling_cached_chunks_is_joined_from_memory() -> None:
    disk = ChunkDisk(piece_size=100)
    cache = PieceReadCache(disk.read, disk.piece_size, capacity=1000, chunk_size=32)
    for begin in (0, 32, 64, 96):
        cache.read(1, begin, 1)
    reads = len(disk.reads)
    assert cache.read(1, 24, 16).result == content(1, 24, 16)
    assert cache.read(1, 10, 90).result == content(1, 10, 90)  # across four chunks
    assert len(disk.reads) == reads
    assert cache.direct_reads == 0


def test_concurrent_misses_on_one_chunk_share_one_read() -> None:
    disk = ChunkDisk(piece_size=256)
    disk.hold = True
    cache = PieceReadCache(disk.read, disk.piece_size, capacity=1000, chunk_size=64)
    waiters = [cache.read(3, begin, 16) for begin in (64, 80, 96, 112)]
    assert disk.reads == [(3, 64, 64)]
    assert cache.pool.reserved == 64  # the read in flight counts against the budget
    disk.answer_all()
    assert [w.result for w in waiters] == [content(3, b, 16) for b in (64, 80, 96, 112)]
    assert (cache.pool.reserved, cache.pool.cached) == (0, 64)
    assert (cache.hits, cache.misses) == (3, 1)


def test_a_failed_chunk_read_fails_every_waiter_caches_nothing_and_frees_its_bytes() -> None:
    disk = ChunkDisk(piece_size=256)
    disk.hold = True
    cache = PieceReadCache(disk.read, disk.piece_size, capacity=1000, chunk_size=64)
    waiters = [cache.read(3, 0, 16), cache.read(3, 16, 16)]
    d, _ = disk.pending.pop()
    d.errback(StorageError("cannot read x: Input/output error"))
    for waiter in waiters:
        failure_of(waiter).trap(StorageError)
    assert (cache.pool.size, cache.size) == (0, 0)
    disk.hold = False
    assert cache.read(3, 0, 16).result == content(3, 0, 16)
    assert len(disk.reads) == 2


def test_a_short_chunk_read_is_a_storage_error_for_every_waiter() -> None:
    disk = ChunkDisk(piece_size=256)
    disk.hold = True
    disk.short = True
    cache = PieceReadCache(disk.read, disk.piece_size, capacity=1000, chunk_size=64)
    waiters = [cache.read(3, 0, 16), cache.read(3, 48, 16)]
    disk.answer_all()
    for waiter in waiters:
        failure_of(waiter).trap(StorageError)
    assert (cache.pool.size, len(cache.pool)) == (0, 0)


def test_reads_in_flight_are_bounded_by_the_budget() -> None:
    """When reads in flight fill the pool, a further miss reads only its block."""
    disk = ChunkDisk(piece_size=64)
    disk.hold = True
    cache = PieceReadCache(disk.read, disk.piece_size, capacity=128, chunk_size=64)
    cache.read(0, 0, 16)
    cache.read(1, 0, 16)
    third = cache.read(2, 16, 16)
    assert disk.reads == [(0, 0, 64), (1, 0, 64), (2, 16, 16)]
    assert cache.direct_reads == 1
    disk.answer_all()
    assert third.result == content(2, 16, 16)
    assert (cache.pool.cached, cache.pool.reserved) == (128, 0)


def test_one_pool_evicts_least_recently_used_across_torrents() -> None:
    disk_a, disk_b = ChunkDisk(piece_size=64), ChunkDisk(piece_size=64)
    pool = ReadCachePool(capacity=128)
    a = PieceReadCache(disk_a.read, disk_a.piece_size, pool=pool, chunk_size=64)
    b = PieceReadCache(disk_b.read, disk_b.piece_size, pool=pool, chunk_size=64)
    a.read(0, 0, 16)
    b.read(0, 0, 16)
    a.read(0, 16, 16)  # a's chunk is now the more recently used
    b.read(1, 0, 16)  # evicts b's piece 0, not a's
    assert (a.size, b.size, pool.size) == (64, 64, 128)
    a.read(0, 32, 16)
    b.read(0, 32, 16)
    assert disk_a.reads == [(0, 0, 64)]
    assert disk_b.reads == [(0, 0, 64), (1, 0, 64), (0, 0, 64)]
    assert pool.evictions == 2  # b's piece 0, then a's piece 0 to make room again


def test_clear_frees_only_its_own_torrents_bytes() -> None:
    disk_a, disk_b = ChunkDisk(piece_size=64), ChunkDisk(piece_size=64)
    pool = ReadCachePool(capacity=1024)
    a = PieceReadCache(disk_a.read, disk_a.piece_size, pool=pool, chunk_size=32)
    b = PieceReadCache(disk_b.read, disk_b.piece_size, pool=pool, chunk_size=32)
    for index in range(3):
        a.read(index, 0, 8)
        b.read(index, 40, 8)
    assert (a.size, b.size) == (96, 96)
    a.clear()
    assert (a.size, b.size, pool.size, len(pool)) == (0, 96, 96, 3)
    b.read(2, 40, 8)
    a.read(2, 0, 8)
    assert len(disk_b.reads) == 3
    assert len(disk_a.reads) == 4


def test_a_read_in_flight_when_cleared_answers_its_waiters_but_is_not_kept() -> None:
    disk = ChunkDisk(piece_size=64)
    disk.hold = True
    cache = PieceReadCache(disk.read, disk.piece_size, capacity=1024, chunk_size=32)
    old = cache.read(0, 0, 8)
    cache.clear()
    assert cache.pool.reserved == 0
    new = cache.read(0, 8, 8)  # after the clear: a read of its own, not the old one's
    assert len(disk.reads) == 2
    disk.answer_all()
    assert (old.result, new.result) == (content(0, 0, 8), content(0, 8, 8))
    assert (cache.size, cache.pool.reserved) == (32, 0)


def test_discard_forgets_one_piece() -> None:
    disk = ChunkDisk(piece_size=64)
    cache = PieceReadCache(disk.read, disk.piece_size, capacity=1024, chunk_size=32)
    for index in (0, 1):
        cache.read(index, 0, 8)
        cache.read(index, 32, 8)
    cache.discard(0)
    assert cache.size == 64
    cache.read(0, 0, 8)
    cache.read(1, 0, 8)
    assert disk.reads[-1] == (0, 0, 32)


def serve_round_robin(
    cache: PieceReadCache,
    disk: ChunkDisk,
    peers: int,
    pieces_each: int,
    in_flight: int,
    read_ahead: bool = False,
) -> int:
    """``peers`` peers on different 1 MiB pieces, each keeping ``in_flight`` requests
    open (UploadQueue's max_reads), served in turn; the disk answers once per round.
    ``read_ahead``: each peer, busy, has asked for the rest of its piece (``ahead``).
    Every block is checked; returns the bytes sent."""
    todo = {
        peer: [
            (peer + peers * n, begin, BLOCK)
            for n in range(pieces_each)
            for begin in range(0, disk.piece_size_, BLOCK)
        ]
        for peer in range(peers)
    }
    open_: dict[int, int] = dict.fromkeys(todo, 0)
    sent = 0
    if read_ahead:
        for _ in range(peers):
            cache.pool.reader_busy(True)

    def done(data: bytes, peer: int, block: tuple[int, int, int]) -> None:
        nonlocal sent
        assert data == content(*block)
        open_[peer] -= 1
        sent += len(data)

    while any(todo.values()) or disk.pending:
        for peer, blocks in todo.items():
            while blocks and open_[peer] < in_flight:
                block = blocks.pop(0)
                open_[peer] += 1
                index, begin, length = block
                ahead = disk.piece_size(index) - begin - length if read_ahead else 0
                cache.read(index, begin, length, ahead).addCallback(done, peer, block)
        disk.answer_all()
    return sent


@pytest.mark.parametrize("read_ahead", [False, True])
@pytest.mark.parametrize("in_flight", [1, 4, 16])
def test_200_peers_on_200_pieces_read_each_byte_about_once(
    in_flight: int, read_ahead: bool
) -> None:
    """The bench/scale.py peers case: 200 MiB of pieces in play, a 32 MiB budget.

    Each peer then moves to a second piece, so 400 MiB are sent in all. Peers that
    ask for whole pieces at once get no read-ahead past their share, so no thrashing.
    """
    disk = ChunkDisk(piece_size=MiB)
    disk.hold = True
    cache = PieceReadCache(disk.read, disk.piece_size, pool=ReadCachePool(DEFAULT_CAPACITY))
    sent = serve_round_robin(
        cache, disk, peers=200, pieces_each=2, in_flight=in_flight, read_ahead=read_ahead
    )
    assert sent == 400 * MiB
    assert disk.bytes_read == cache.bytes_read
    assert disk.bytes_read / sent < 1.2
    if in_flight <= 4:  # UploadQueue's default max_reads: every chunk is read once, whole
        assert (cache.misses, cache.direct_reads) == (400 * MiB // CHUNK, 0)
    assert cache.pool.size <= DEFAULT_CAPACITY


@pytest.mark.parametrize("peers", [1, 8, 50])
def test_fewer_busy_peers_read_ahead_further_and_still_read_each_byte_about_once(
    peers: int,
) -> None:
    disk = ChunkDisk(piece_size=MiB)
    disk.hold = True
    cache = PieceReadCache(disk.read, disk.piece_size, pool=ReadCachePool(DEFAULT_CAPACITY))
    sent = serve_round_robin(cache, disk, peers=peers, pieces_each=4, in_flight=4, read_ahead=True)
    assert sent == 4 * peers * MiB
    assert disk.bytes_read / sent < 1.2
    share = cache.pool.read_ahead_chunks(CHUNK)
    assert share == {1: 8, 8: 8, 50: 5}[peers]
    reads_per_piece = -(-(MiB // CHUNK) // share)
    assert cache.misses == 4 * peers * reads_per_piece, "one disk read per share"
    assert cache.pool.size <= DEFAULT_CAPACITY


def test_a_chunk_finished_by_one_peer_is_evicted_before_one_another_peer_still_needs() -> None:
    """Round robin defeats plain LRU; a chunk whose last block was served goes first."""
    disk = ChunkDisk(piece_size=64)
    cache = PieceReadCache(disk.read, disk.piece_size, capacity=64, chunk_size=32)
    cache.read(0, 0, 16)  # peer A
    cache.read(1, 0, 16)  # peer B
    cache.read(0, 16, 16)  # A finishes its chunk...
    cache.read(0, 32, 16)  # ...and starts the next: evicts A's finished chunk, not B's
    cache.read(1, 16, 16)
    assert disk.reads == [(0, 0, 32), (1, 0, 32), (0, 32, 32)]


def test_a_block_past_the_end_of_the_piece_is_left_to_the_disk_to_refuse() -> None:
    disk = ChunkDisk(piece_size=100)
    cache = PieceReadCache(disk.read, disk.piece_size, capacity=1000, chunk_size=32)
    for begin in (64, 96):
        cache.read(0, begin, 4)
    cache.read(0, 96, 8)
    cache.read(0, 80, 24)  # straddles two cached chunks, but runs past their end
    assert disk.reads == [(0, 64, 32), (0, 96, 4), (0, 96, 8), (0, 80, 24)]


def test_cached_answers_hits_at_once_and_never_reads() -> None:
    disk = ChunkDisk(piece_size=64)
    cache = PieceReadCache(disk.read, disk.piece_size, capacity=1000, chunk_size=32)
    assert cache.cached(0, 0, 16) is None and disk.reads == []
    cache.read(0, 0, 16)
    disk.answer_all()
    assert cache.cached(0, 16, 16) == content(0, 16, 16)
    assert cache.cached(0, 24, 16) is None, "straddles two chunks: left to read()"
    assert disk.reads == [(0, 0, 32)]


# -- read-ahead: one disk read for a reader's next chunks ---------------------------


def four_chunk_pieces(hold: bool = False) -> tuple[ChunkDisk, PieceReadCache]:
    """Pieces of 8 blocks in chunks of 2, and a budget that lets one reader read a whole piece."""
    disk = ChunkDisk(piece_size=8 * BLOCK)
    disk.hold = hold
    cache = PieceReadCache(disk.read, disk.piece_size, capacity=MiB, chunk_size=2 * BLOCK)
    return disk, cache


def test_a_miss_reads_the_chunks_its_reader_asked_for_next_in_one_read() -> None:
    disk, cache = four_chunk_pieces()
    first = cache.read(0, 0, BLOCK, ahead=5 * BLOCK)  # asked through byte 6 * BLOCK
    assert disk.reads == [(0, 0, 6 * BLOCK)], "three chunks, one read"
    assert first.result == content(0, 0, BLOCK)
    assert (cache.misses, cache.read_ahead, cache.bytes_read) == (1, 2, 6 * BLOCK)
    for begin in range(BLOCK, 6 * BLOCK, BLOCK):
        assert cache.cached(0, begin, BLOCK) == content(0, begin, BLOCK)
    assert cache.cached(0, 6 * BLOCK, BLOCK) is None, "not asked for: not read"
    assert len(cache.pool) == 3 and cache.size == 6 * BLOCK
    assert cache.pool.reserved == 0


def test_blocks_waiting_on_any_chunk_of_a_read_ahead_are_answered_by_it() -> None:
    disk, cache = four_chunk_pieces(hold=True)
    waiters = [cache.read(0, 0, BLOCK, ahead=7 * BLOCK)]
    waiters += [cache.read(0, begin, BLOCK) for begin in (BLOCK, 5 * BLOCK, 7 * BLOCK)]
    assert disk.reads == [(0, 0, 8 * BLOCK)] and cache.pool.reserved == 8 * BLOCK
    disk.answer_all()
    assert [w.result for w in waiters] == [
        content(0, begin, BLOCK) for begin in (0, BLOCK, 5 * BLOCK, 7 * BLOCK)
    ]
    assert cache.hits == 3 and cache.pool.reserved == 0 and cache.size == 8 * BLOCK


def test_read_ahead_stops_at_the_end_of_the_piece_and_at_a_chunk_already_in_memory() -> None:
    disk = ChunkDisk(piece_size=5 * BLOCK)
    cache = PieceReadCache(disk.read, disk.piece_size, capacity=MiB, chunk_size=2 * BLOCK)
    cache.read(0, 0, BLOCK, ahead=MiB)
    assert disk.reads == [(0, 0, 5 * BLOCK)], "the whole piece, its short last chunk too"
    cache.read(1, 2 * BLOCK, BLOCK)  # chunk 1 of piece 1 cached first
    cache.read(1, 0, BLOCK, ahead=4 * BLOCK)
    assert disk.reads[1:] == [(1, 2 * BLOCK, 2 * BLOCK), (1, 0, 2 * BLOCK)]


def test_read_ahead_is_the_pools_fair_share_per_busy_reader() -> None:
    pool = ReadCachePool(capacity=16 * CHUNK)
    assert pool.read_ahead_chunks(CHUNK) == 8, "one reader: up to 1 MiB"
    for _ in range(4):
        pool.reader_busy(True)
    assert pool.read_ahead_chunks(CHUNK) == 4, "the budget shared by the busy readers"
    for _ in range(100):
        pool.reader_busy(True)
    assert pool.read_ahead_chunks(CHUNK) == 1, "never less than the miss's own chunk"
    disk = ChunkDisk(piece_size=MiB)
    cache = PieceReadCache(disk.read, disk.piece_size, pool=pool)
    cache.read(0, 0, BLOCK, ahead=MiB)
    assert disk.reads == [(0, 0, CHUNK)], "104 busy readers: one chunk each, as before"
    for _ in range(200):
        pool.reader_busy(False)
    assert pool.readers == 0
    big = ReadCachePool(capacity=1024 * CHUNK)
    assert big.read_ahead_chunks(CHUNK) * CHUNK == 1024 * 1024, "at most MAX_READ_AHEAD"


def test_a_read_ahead_that_does_not_fit_the_budget_reads_one_chunk() -> None:
    disk = ChunkDisk(piece_size=8 * BLOCK)
    disk.hold = True
    cache = PieceReadCache(disk.read, disk.piece_size, capacity=8 * BLOCK, chunk_size=2 * BLOCK)
    cache.read(1, 0, BLOCK)
    cache.read(2, 0, BLOCK)
    cache.read(3, 0, BLOCK)  # 6 of 8 blocks' worth reserved by reads in flight
    cache.read(0, 0, BLOCK, ahead=7 * BLOCK)
    assert disk.reads[-1] == (0, 0, 2 * BLOCK)
    assert cache.read_ahead == 0 and cache.pool.size <= 8 * BLOCK


def test_a_failed_read_ahead_fails_its_waiters_caches_nothing_and_frees_its_bytes() -> None:
    disk, cache = four_chunk_pieces(hold=True)
    first = cache.read(0, 0, BLOCK, ahead=7 * BLOCK)
    later = cache.read(0, 6 * BLOCK, BLOCK)
    ((d, _),) = disk.pending
    disk.pending = []
    d.errback(Failure(StorageError("disk gone")))
    assert failure_of(first).check(StorageError) and failure_of(later).check(StorageError)
    assert len(cache.pool) == 0 and cache.pool.size == 0
    disk.hold = False
    assert cache.read(0, 6 * BLOCK, BLOCK).result == content(0, 6 * BLOCK, BLOCK)
    assert disk.reads[-1] == (0, 6 * BLOCK, 2 * BLOCK), "read again, not a stale load"


def test_a_short_read_ahead_is_a_storage_error_for_every_waiter() -> None:
    disk, cache = four_chunk_pieces()
    disk.short = True
    assert failure_of(cache.read(0, 0, BLOCK, ahead=3 * BLOCK)).check(StorageError)
    assert len(cache.pool) == 0 and cache.pool.size == 0


def test_a_piece_discarded_while_read_ahead_is_in_flight_is_not_cached() -> None:
    disk, cache = four_chunk_pieces(hold=True)
    first = cache.read(0, 0, BLOCK, ahead=7 * BLOCK)
    later = cache.read(0, 4 * BLOCK, BLOCK)
    cache.discard(0)
    assert cache.pool.size == 0, "its reservation is given back at once"
    again = cache.read(0, 4 * BLOCK, BLOCK)
    assert len(disk.reads) == 2, "a new read: the old one's data may be stale"
    disk.answer_all()
    assert first.result == content(0, 0, BLOCK) and later.result == content(0, 4 * BLOCK, BLOCK)
    assert again.result == content(0, 4 * BLOCK, BLOCK)
    assert cache.size == 2 * BLOCK, "only the new read's chunk is kept"
    assert cache.pool.reserved == 0


def test_each_chunk_of_a_read_ahead_is_evicted_on_its_own_once_served() -> None:
    disk = ChunkDisk(piece_size=8 * BLOCK)
    cache = PieceReadCache(disk.read, disk.piece_size, capacity=16 * BLOCK, chunk_size=2 * BLOCK)
    cache.read(0, 0, BLOCK, ahead=7 * BLOCK)
    assert disk.reads == [(0, 0, 8 * BLOCK)]
    for begin in range(BLOCK, 4 * BLOCK, BLOCK):
        cache.cached(0, begin, BLOCK)  # the reader finishes chunks 0 and 1
    for index in range(1, 7):
        cache.read(index, 0, BLOCK)  # the budget fills: the finished chunks make room
    assert cache.cached(0, 4 * BLOCK, 2 * BLOCK) is not None, "chunk 2 is still to be served"
    assert cache.cached(0, 6 * BLOCK, 2 * BLOCK) is not None
    assert cache.cached(0, 0, 2 * BLOCK) is None and cache.cached(0, 2 * BLOCK, 2 * BLOCK) is None
    assert cache.pool.size == 16 * BLOCK


# -- read_now: chunks copied from the page cache at once ----------------------------


class PageCache:
    """``DiskQueue.read_now`` over ChunkDisk's content: pieces in ``present`` are in memory."""

    def __init__(self, disk: ChunkDisk, present: set[int]) -> None:
        self.disk = disk
        self.present = present
        self.calls: list[tuple[int, int, list[int]]] = []

    def read_now(self, index: int, begin: int, sizes: list[int]) -> list[bytearray] | None:
        self.calls.append((index, begin, list(sizes)))
        if index not in self.present:
            return None
        buffers, at = [], begin
        for size in sizes:
            buffers.append(bytearray(content(index, at, size)))
            at += size
        return buffers


def test_read_now_copies_the_chunks_asked_for_from_the_page_cache_and_caches_them() -> None:
    disk = ChunkDisk(piece_size=8 * BLOCK)
    page = PageCache(disk, {0})
    cache = PieceReadCache(
        disk.read, disk.piece_size, capacity=MiB, chunk_size=2 * BLOCK, read_now=page.read_now
    )
    assert cache.read_now(0, 0, BLOCK, ahead=3 * BLOCK) == content(0, 0, BLOCK)
    assert page.calls == [(0, 0, [2 * BLOCK, 2 * BLOCK])] and disk.reads == []
    assert cache.cached(0, 3 * BLOCK, BLOCK) == content(0, 3 * BLOCK, BLOCK)
    assert (cache.reads_now, cache.read_ahead, cache.bytes_read) == (1, 1, 4 * BLOCK)
    assert cache.size == 4 * BLOCK and cache.pool.reserved == 0
    assert cache.read_now(0, BLOCK, BLOCK) == content(0, BLOCK, BLOCK)
    assert len(page.calls) == 1, "in memory already: no second copy"


def test_read_now_says_none_when_the_bytes_are_not_in_memory_and_keeps_no_reservation() -> None:
    disk = ChunkDisk(piece_size=8 * BLOCK)
    page = PageCache(disk, set())
    cache = PieceReadCache(
        disk.read, disk.piece_size, capacity=MiB, chunk_size=2 * BLOCK, read_now=page.read_now
    )
    assert cache.read_now(0, 0, BLOCK, ahead=7 * BLOCK) is None
    assert cache.not_now == 1 and cache.pool.size == 0 and len(cache.pool) == 0
    assert cache.read(0, 0, BLOCK).result == content(0, 0, BLOCK), "the disk threads' read"


def test_read_now_leaves_a_chunk_being_read_and_odd_blocks_to_read() -> None:
    disk = ChunkDisk(piece_size=5 * BLOCK)
    disk.hold = True
    page = PageCache(disk, {0})
    cache = PieceReadCache(
        disk.read, disk.piece_size, capacity=MiB, chunk_size=2 * BLOCK, read_now=page.read_now
    )
    cache.read(0, 0, BLOCK)
    assert cache.read_now(0, BLOCK, BLOCK) is None, "a read in flight answers it"
    assert cache.read_now(0, BLOCK, 2 * BLOCK) is None, "straddles two chunks"
    assert cache.read_now(0, 4 * BLOCK, 2 * BLOCK) is None, "past the end of the piece"
    assert page.calls == []
    without = PieceReadCache(disk.read, disk.piece_size, capacity=MiB, chunk_size=2 * BLOCK)
    assert without.read_now(0, 0, BLOCK) is None, "no page cache reader: read() it is"


def test_after_failed_tries_of_the_page_cache_misses_go_to_the_disk_for_a_while() -> None:
    """Cold data: each failed try costs buffers and a syscall, so tries back off."""
    disk = ChunkDisk(piece_size=2 * BLOCK, pieces=500)
    page = PageCache(disk, set())
    cache = PieceReadCache(
        disk.read, disk.piece_size, capacity=MiB, chunk_size=2 * BLOCK, read_now=page.read_now
    )
    tries = []
    for index in range(200):
        before = len(page.calls)
        assert cache.read_now(index, 0, BLOCK) is None
        tries.append(len(page.calls) > before)
    assert tries[:4] == [True, True, False, True], "skips 0, 1, 3, 7... misses"
    assert sum(tries) <= 10, "at most one try in MAX_SKIP_NOW + 1 misses once backed off"
    page.present.add(300)
    misses = 0
    while cache.read_now(300, 0, BLOCK) is None:  # in memory now: found once skips run out
        misses += 1
    assert misses <= 63 and cache.reads_now == 1
    assert cache.cached(300, BLOCK, BLOCK) is not None
    page.present.add(301)
    assert cache.read_now(301, 0, BLOCK) is not None, "a success ends the back-off"


def test_read_now_without_room_for_its_read_ahead_copies_just_its_chunk() -> None:
    disk = ChunkDisk(piece_size=8 * BLOCK)
    disk.hold = True
    page = PageCache(disk, {0})
    cache = PieceReadCache(
        disk.read, disk.piece_size, capacity=8 * BLOCK, chunk_size=2 * BLOCK, read_now=page.read_now
    )
    cache.read(1, 0, BLOCK)
    cache.read(2, 0, BLOCK)  # 4 of 8 blocks' worth reserved by reads in flight
    assert cache.read_now(0, 0, BLOCK, ahead=7 * BLOCK) == content(0, 0, BLOCK)
    assert page.calls == [(0, 0, [2 * BLOCK])] and cache.read_ahead == 0
    assert cache.pool.size <= 8 * BLOCK
