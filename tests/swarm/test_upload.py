"""UploadQueue: requests served in order, bounded, paused by the transport; cache hits
are sent at once without a disk read."""

from __future__ import annotations

import pytest
from twisted.internet import defer

from bt.errors import RemoteProtocolError
from bt.geometry import Block
from bt.swarm.upload import UploadQueue


class Disk:
    def __init__(self) -> None:
        self.reads: list[tuple[int, int, int]] = []
        self.aheads: list[int] = []
        self.waiting: list[defer.Deferred[bytes]] = []

    def read(self, index: int, begin: int, length: int, ahead: int = 0) -> defer.Deferred[bytes]:
        self.reads.append((index, begin, length))
        self.aheads.append(ahead)
        waiting: defer.Deferred[bytes] = defer.Deferred()
        self.waiting.append(waiting)
        return waiting


def block(index: int, begin: int, length: int) -> bytes:
    return bytes([index % 256]) * length


def test_blocks_in_memory_are_sent_without_a_disk_read() -> None:
    disk, sent = Disk(), []
    in_memory = {(0, 0), (0, 16384)}

    def cached(index: int, begin: int, length: int) -> bytes | None:
        return block(index, begin, length) if (index, begin) in in_memory else None

    queue = UploadQueue(disk.read, lambda i, b, d: sent.append((i, b)), cached=cached)
    for begin in (0, 16384, 32768):
        queue.add(0, begin, 16384)
    assert sent == [(0, 0), (0, 16384)]
    assert disk.reads == [(0, 32768, 16384)]
    disk.waiting[0].callback(block(0, 32768, 16384))
    assert sent[-1] == (0, 32768)
    assert len(queue) == 0


def test_reads_are_bounded_and_a_paused_transport_stops_serving() -> None:
    disk, sent = Disk(), []
    queue = UploadQueue(disk.read, lambda i, b, d: sent.append((i, b)), max_reads=2)
    for index in range(5):
        queue.add(index, 0, 16)
    assert len(disk.reads) == 2, "at most max_reads disk reads per peer"
    queue.pauseProducing()
    disk.waiting[0].callback(block(0, 0, 16))
    assert sent == [(0, 0)] and len(disk.reads) == 2, "paused: nothing new is read"
    queue.resumeProducing()
    assert len(disk.reads) == 3


def test_cancelled_and_duplicate_requests() -> None:
    disk, sent = Disk(), []
    queue = UploadQueue(disk.read, lambda i, b, d: sent.append((i, b)), max_reads=1)
    queue.add(0, 0, 16)
    queue.add(0, 0, 16)  # a duplicate is served once
    queue.add(1, 0, 16)
    queue.cancel(1, 0, 16)
    queue.cancel(0, 0, 16)  # already being read: dropped when it arrives
    disk.waiting[0].callback(block(0, 0, 16))
    assert sent == [] and disk.reads == [(0, 0, 16)]


def test_too_many_queued_requests_is_a_protocol_error() -> None:
    queue = UploadQueue(Disk().read, lambda i, b, d: None, max_queued=3, max_reads=1)
    for index in range(3):
        queue.add(index, 0, 16)
    with pytest.raises(RemoteProtocolError, match="more than 3 requests queued"):
        queue.add(9, 0, 16)


def test_a_block_in_memory_does_not_wait_for_the_disk_reads_in_flight() -> None:
    disk, sent = Disk(), []
    queue = UploadQueue(
        disk.read,
        lambda i, b, d: sent.append(i),
        max_reads=1,
        cached=lambda index, begin, length: block(index, begin, length) if index == 7 else None,
    )
    queue.add(1, 0, 16)  # a disk read, in flight
    queue.add(7, 0, 16)  # in memory
    assert sent == [7] and len(disk.reads) == 1


def test_a_failed_read_is_handed_to_the_owner_and_serving_goes_on() -> None:
    """Before, a failed read was only logged and the peer waited forever for its block."""
    from bt.errors import DataMissingError

    disk, sent, failed = Disk(), [], []
    queue = UploadQueue(
        disk.read,
        lambda i, b, d: sent.append((i, b)),
        on_read_failed=lambda block, error: failed.append((block, error)),
    )
    queue.add(3, 0, 16)
    queue.add(4, 0, 16)
    missing = DataMissingError(3, 0, 16, 5)
    disk.waiting[0].errback(missing)
    assert failed == [((3, 0, 16), missing)]
    assert failed[0][0] == Block(index=3, begin=0, length=16)  # the one block-address type
    assert isinstance(failed[0][0], Block)
    disk.waiting[1].callback(block(4, 0, 16))
    assert sent == [(4, 0)]


def test_asks_for_sees_queued_and_reading_requests_not_cancelled_ones() -> None:
    disk = Disk()
    queue = UploadQueue(disk.read, lambda i, b, d: None, max_reads=1)
    queue.add(1, 0, 16)  # being read
    queue.add(2, 0, 16)  # queued behind it
    assert queue.asks_for({1}) and queue.asks_for({2}) and not queue.asks_for({3})
    queue.cancel(1, 0, 16)
    queue.cancel(2, 0, 16)
    assert not queue.asks_for({1, 2})


def test_cancel_says_whether_the_request_was_still_to_be_served() -> None:
    disk, sent = Disk(), []
    queue = UploadQueue(disk.read, lambda i, b, d: sent.append((i, b)), max_reads=1)
    queue.add(0, 0, 16)
    queue.add(1, 0, 16)
    assert queue.cancel(1, 0, 16), "queued"
    assert queue.cancel(0, 0, 16), "being read"
    assert not queue.cancel(0, 0, 16), "cancelled already"
    assert not queue.cancel(7, 0, 16), "never asked"
    disk.waiting[0].callback(block(0, 0, 16))
    assert sent == []


def test_withdraw_forgets_the_chosen_pieces_requests_and_returns_them_in_order() -> None:
    disk, sent = Disk(), []
    queue = UploadQueue(disk.read, lambda i, b, d: sent.append((i, b)), max_reads=2)
    for index, begin in ((2, 0), (5, 0), (2, 16), (7, 0), (5, 0)):  # the last: a duplicate
        queue.add(index, begin, 16)
    assert disk.reads == [(2, 0, 16), (5, 0, 16)], "being read; the others queued"
    withdrawn = queue.withdraw(lambda index: index != 7)
    assert withdrawn == [Block(2, 0, 16), Block(5, 0, 16), Block(2, 16, 16)]
    assert queue.withdraw(lambda index: index != 7) == []
    for waiting in disk.waiting:  # the list grows as reads finish
        waiting.callback(b"x" * 16)
    assert sent == [(7, 0)], "only the kept request is served"


def test_blocks_in_memory_found_in_one_pass_go_out_in_one_write() -> None:
    disk, batches = Disk(), []
    queue = UploadQueue(
        disk.read,
        lambda i, b, d: pytest.fail("one block at a time"),
        send_blocks=lambda blocks: batches.append([(i, b) for i, b, _ in blocks]),
        cached=lambda i, b, n: block(i, b, n),
    )
    for begin in (0, 16384, 32768):
        queue.add(0, begin, 16384, serve=False)  # the requests of one read of the socket
    assert batches == [], "served only after the last request of the read"
    queue.serve()
    assert batches == [[(0, 0), (0, 16384), (0, 32768)]]


def test_a_batch_is_cut_at_batch_bytes_and_a_paused_transport_stops_it() -> None:
    from bt.swarm.upload import BATCH_BYTES

    batches: list[int] = []
    queue: UploadQueue

    def send_blocks(blocks: list[tuple[int, int, bytes]]) -> None:
        batches.append(len(blocks))
        queue.pauseProducing()  # the kernel took only part: the transport holds the rest

    queue = UploadQueue(
        Disk().read,
        lambda i, b, d: None,
        send_blocks=send_blocks,
        cached=lambda i, b, n: block(i, b, n),
    )
    per_batch = BATCH_BYTES // 16384
    for number in range(per_batch + 3):
        queue.add(number, 0, 16384, serve=False)
    queue.serve()
    assert batches == [per_batch] and len(queue) == 3
    queue.resumeProducing()
    assert batches == [per_batch, 3] and len(queue) == 0


def test_a_block_read_from_disk_leads_the_batch_of_those_in_memory() -> None:
    disk, batches = Disk(), []
    in_memory = {(0, 16384), (0, 32768)}
    queue = UploadQueue(
        disk.read,
        lambda i, b, d: pytest.fail("one block at a time"),
        send_blocks=lambda blocks: batches.append([(i, b) for i, b, _ in blocks]),
        cached=lambda i, b, n: block(i, b, n) if (i, b) in in_memory else None,
        max_reads=1,
    )
    queue.add(0, 0, 16384, serve=False)
    queue.add(0, 16384, 16384, serve=False)
    queue.add(1, 0, 16384, serve=False)  # not in memory, and the one read is busy
    queue.add(0, 32768, 16384, serve=False)
    queue.serve()
    assert batches == [[(0, 16384)]] and disk.reads == [(0, 0, 16384)]
    disk.waiting[0].callback(block(0, 0, 16384))
    # The block read goes first, with the blocks in memory behind the next read.
    assert batches[1] == [(0, 0), (0, 32768)] and disk.reads[-1] == (1, 0, 16384)
    disk.waiting[1].callback(block(1, 0, 16384))
    assert batches[2:] == [[(1, 0)]] and len(queue) == 0


def test_a_read_tells_the_disk_how_much_of_the_piece_is_asked_for_next_in_order() -> None:
    disk = Disk()
    queue = UploadQueue(disk.read, lambda i, b, d: None, max_reads=1)
    for begin in range(0, 4 * 16384, 16384):
        queue.add(0, begin, 16384, serve=False)
    queue.add(0, 6 * 16384, 16384, serve=False)  # a gap: not part of the run
    queue.add(1, 0, 16384, serve=False)
    queue.serve()
    assert disk.reads == [(0, 0, 16384)] and disk.aheads == [3 * 16384]
    disk.waiting[0].callback(block(0, 0, 16384))
    assert disk.reads[-1] == (0, 16384, 16384) and disk.aheads[-1] == 2 * 16384


def test_read_ahead_looks_no_further_than_read_ahead_bytes() -> None:
    from bt.swarm.upload import READ_AHEAD_BYTES

    disk = Disk()
    queue = UploadQueue(disk.read, lambda i, b, d: None, max_reads=1)
    for begin in range(0, 2 * READ_AHEAD_BYTES, 16384):
        queue.add(0, begin, 16384, serve=False)
    queue.serve()
    assert disk.aheads == [READ_AHEAD_BYTES]


def test_the_queue_says_when_it_has_requests_to_serve_and_when_it_has_none() -> None:
    disk, busy = Disk(), []
    queue = UploadQueue(disk.read, lambda i, b, d: None, max_reads=1, on_busy=busy.append)
    queue.add(0, 0, 16384, serve=False)
    queue.add(0, 16384, 16384, serve=False)
    assert busy == [True], "said once, on the first request"
    queue.serve()
    disk.waiting[0].callback(block(0, 0, 16384))
    assert busy == [True], "one block still being read"
    disk.waiting[1].callback(block(0, 16384, 16384))
    assert busy == [True, False]
    queue.add(1, 0, 16384)
    queue.cancel(1, 0, 16384)
    assert busy == [True, False, True], "a read in flight keeps it busy"
    disk.waiting[2].callback(block(1, 0, 16384))
    assert busy == [True, False, True, False]
    queue.add(2, 0, 16384, serve=False)
    queue.cancel(2, 0, 16384)
    queue.add(3, 0, 16384, serve=False)
    queue.clear()  # a choke
    assert busy[-4:] == [True, False, True, False]
    queue.add(4, 0, 16384)
    queue.stopProducing()  # the peer hung up while its block is read
    assert busy[-1] is True
    disk.waiting[-1].callback(block(4, 0, 16384))
    assert busy[-1] is False


def test_a_block_in_the_page_cache_goes_out_with_those_in_memory_without_a_disk_read() -> None:
    disk, batches, asked = Disk(), [], []

    def read_now(index: int, begin: int, length: int, ahead: int) -> bytes | None:
        asked.append((index, begin, ahead))
        return block(index, begin, length) if index == 0 else None

    queue = UploadQueue(
        disk.read,
        lambda i, b, d: pytest.fail("one block at a time"),
        send_blocks=lambda blocks: batches.append([(i, b) for i, b, _ in blocks]),
        cached=lambda i, b, n: None,
        read_now=read_now,
    )
    queue.add(0, 0, 16384, serve=False)
    queue.add(0, 16384, 16384, serve=False)
    queue.add(1, 0, 16384, serve=False)  # not in the page cache: the disk threads read it
    queue.serve()
    assert batches == [[(0, 0), (0, 16384)]]
    assert asked == [(0, 0, 16384), (0, 16384, 0), (1, 0, 0)]
    assert disk.reads == [(1, 0, 16384)]
    disk.waiting[0].callback(block(1, 0, 16384))
    assert batches[-1] == [(1, 0)] and len(queue) == 0


def test_blocks_a_read_in_flight_brings_wait_for_it_and_go_out_in_order_in_one_write() -> None:
    disk, batches = Disk(), []
    loading: set[tuple[int, int]] = set()
    memory: set[tuple[int, int]] = set()

    def read(index: int, begin: int, length: int, ahead: int = 0) -> defer.Deferred[bytes]:
        loading.update((index, b) for b in range(begin, begin + length + ahead, 16384))
        return disk.read(index, begin, length, ahead)

    queue = UploadQueue(
        read,
        lambda i, b, d: pytest.fail("one block at a time"),
        send_blocks=lambda blocks: batches.append([(i, b) for i, b, _ in blocks]),
        cached=lambda i, b, n: block(i, b, n) if (i, b) in memory else None,
        loading=lambda i, b, n: (i, b) in loading,
    )
    for begin in range(0, 4 * 16384, 16384):
        queue.add(0, begin, 16384, serve=False)
    queue.serve()
    assert disk.reads == [(0, 0, 16384)] and disk.aheads == [3 * 16384], "one read, not four"
    memory.update(loading)  # the read-ahead is cached when the read is answered
    loading.clear()
    disk.waiting[0].callback(block(0, 0, 16384))
    assert batches == [[(0, 0), (0, 16384), (0, 32768), (0, 49152)]]
