"""The seeding read cache: one read per piece, bounded memory, failures passed on."""

from __future__ import annotations

from twisted.internet import defer

from bt.errors import StorageError
from bt.storage.readcache import PieceReadCache

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
