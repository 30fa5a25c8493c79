"""Serving one peer's requests: a bounded queue, disk reads off the reactor, real flow control.

An :class:`UploadQueue` is the push producer registered with the peer's
transport: when the socket's buffer fills, Twisted pauses it and no more blocks
are read from disk for that peer, so a slow peer never makes bt hold unbounded
data in memory. At most ``max_reads`` blocks per peer are being read at once.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Container
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IPushProducer
from twisted.python.failure import Failure
from zope.interface import implementer

from bt.errors import RemoteProtocolError, StorageError
from bt.geometry import Block
from bt.logs import Logger
from bt.peer.sender import Buffer

#: Requests a peer may have queued with us; more is a protocol abuse (libtorrent: 500).
MAX_QUEUED_REQUESTS = 500

#: Blocks in memory sent in one write (one sendmsg on a plain TCP socket) at most.
BATCH_BYTES = 256 * 1024

#: How far past a block to look for the same peer's next requests in that piece,
#: which the read cache may then read with it (``ahead``, bt.storage.readcache).
READ_AHEAD_BYTES = 1024 * 1024

#: A Block's fields as a plain tuple: equal to and hashed like the Block itself, and
#: built per request on the seeding path, where a NamedTuple costs about 10x more
#: (200 ns; measured with bench/ micro-benchmarks). Blocks leave the queue as Block.
_Key = tuple[int, int, int]


@implementer(IPushProducer)
class UploadQueue:
    """Requests from one peer, served while the transport wants data: in the order
    asked, except that a block in memory goes out at once, ahead of disk reads.

    ``throttle(amount)`` is the rate limit: it returns 0.0 and charges ``amount``
    bytes when they may go now, or the seconds to wait before asking again.
    """

    log = Logger()

    def __init__(
        self,
        read: Callable[[int, int, int, int], Deferred[bytes]],
        send_block: Callable[[int, int, Buffer], None],
        *,
        send_blocks: Callable[[list[tuple[int, int, Buffer]]], None] | None = None,
        throttle: Callable[[int], float] = lambda amount: 0.0,
        call_later: Callable[..., Any] | None = None,
        on_sent: Callable[[int], None] = lambda amount: None,
        max_queued: int = MAX_QUEUED_REQUESTS,
        max_reads: int = 4,
        cached: Callable[[int, int, int], Buffer | None] | None = None,
        on_read_failed: Callable[[Block, StorageError], None] | None = None,
        on_busy: Callable[[bool], None] | None = None,
        loading: Callable[[int, int, int], bool] | None = None,
        read_now: Callable[[int, int, int, int], Buffer | None] | None = None,
    ) -> None:
        """``cached(index, begin, length)``: the block at once if it is in memory
        (a read cache hit), else None; such blocks are sent without a disk job.

        ``on_read_failed(block, error)``: a block could not be read; the owner
        decides (data gone: drop the peer; a failing disk: stop the torrent).
        Without it the failure is logged and the request is left unanswered.

        ``send_blocks(blocks)``: several ``(index, begin, data)`` in one write; given, the
        blocks in memory found in one pass go out together (up to ``BATCH_BYTES``).

        ``read(index, begin, length, ahead)``: ``ahead`` is how many bytes right after the
        block this peer has asked for too (its next requests, in order), for read-ahead.

        ``on_busy(busy)``: the queue got requests to serve (True) or has none left
        (False); the read cache shares its read-ahead among the busy queues.

        ``loading(index, begin, length)``: the block's data is being read (read-ahead
        of an earlier block). While one of our reads is in flight such a block waits
        for it, so that the blocks it brings go out in order in one write instead of
        one write each, as each waiter is answered.

        ``read_now(index, begin, length, ahead)``: the block at once if it can be had
        without waiting (the page cache), else None; tried before a disk read."""
        self._read = read
        self._on_read_failed = on_read_failed
        self._cached = cached
        self._loading = loading
        self._read_now = read_now
        self._send_block = send_block
        self._send_blocks = send_blocks or self._send_each
        self._throttle = throttle
        self._call_later = call_later
        self._on_sent = on_sent
        self.max_queued = max_queued
        self.max_reads = max_reads
        self._queue: deque[_Key] = deque()
        self._queued: set[_Key] = set()  # the same blocks, for O(1) duplicate checks
        self._reading: dict[_Key, bool] = {}  # block -> still wanted (False once cancelled)
        self._paused = False
        self._stopped = False
        self._wakeup: Any = None
        self._serving = False
        self._on_busy = on_busy
        self._busy = False

    def __len__(self) -> int:
        return len(self._queue) + sum(self._reading.values())

    # -- requests ---------------------------------------------------------------

    def add(self, index: int, begin: int, length: int, *, serve: bool = True) -> None:
        """Queue a request; more than ``max_queued`` outstanding is an abuse.

        ``serve=False``: more requests are coming (one read of the socket holds many);
        the caller calls :meth:`serve` after the last, so they go out in one batch."""
        if len(self) >= self.max_queued:
            raise RemoteProtocolError(f"more than {self.max_queued} requests queued")
        block = (index, begin, length)
        if block in self._reading or block in self._queued:
            return  # a duplicate request is served once
        self._queue.append(block)
        self._queued.add(block)
        if serve:
            self._serve()
        elif not self._busy:
            self._note_busy()

    def serve(self) -> None:
        """Send what may go now (after requests added with ``serve=False``). Runs after
        every read, so a downloader's empty queue costs one test: with nothing queued
        there is nothing to send, and every change to the reads in flight serves anyway."""
        if self._queue:
            self._serve()

    def cancel(self, index: int, begin: int, length: int) -> bool:
        """Forget a request; True if it was still to be served (a fast peer hears a
        REJECT for it then), False if already sent or never asked (a cancel may cross it)."""
        block = (index, begin, length)
        if block in self._reading:
            wanted = self._reading[block]
            self._reading[block] = False
            return wanted
        if block in self._queued:
            self._queued.discard(block)
            self._queue.remove(block)
            self._note_busy()
            return True
        return False

    def asks_for(self, pieces: Container[int]) -> bool:
        """Is a request for one of ``pieces`` queued or being read (and not cancelled)?"""
        return any(block[0] in pieces for block in self._queue) or any(
            block[0] in pieces for block, wanted in self._reading.items() if wanted
        )

    def clear(self) -> None:
        """We choked the peer: BEP 3 discards its pending requests."""
        self._queue.clear()
        self._queued.clear()
        for block in self._reading:
            self._reading[block] = False
        self._note_busy()

    def withdraw(self, unserved: Callable[[int], bool]) -> list[Block]:
        """Forget the pending requests for pieces where ``unserved(index)``; returns
        them in the order asked, so a fast peer can hear a REJECT for each."""
        withdrawn = [Block(*b) for b, wanted in self._reading.items() if wanted and unserved(b[0])]
        for block in withdrawn:
            self._reading[block] = False
        kept: deque[_Key] = deque()
        for block in self._queue:
            if unserved(block[0]):
                self._queued.discard(block)
                withdrawn.append(Block(*block))
            else:
                kept.append(block)
        self._queue = kept
        self._note_busy()
        return withdrawn

    # -- IPushProducer ------------------------------------------------------------

    def pauseProducing(self) -> None:
        self._paused = True

    def resumeProducing(self) -> None:
        self._paused = False
        self._serve()

    def stopProducing(self) -> None:
        self._stopped = True
        self.clear()
        if self._wakeup is not None and self._wakeup.active():
            self._wakeup.cancel()
        self._wakeup = None

    # -- serving --------------------------------------------------------------------

    def _serve(self, batch: list[tuple[int, int, Buffer]] | None = None) -> None:
        """``batch``: a block just read, to go out ahead of (and with) those in memory."""
        if self._serving:
            if batch:  # a read answered at once, inside the loop: send it now
                self._send_batch(batch, len(batch[0][2]))
            return  # ... and the loop below goes on
        self._serving = True
        try:
            self._serve_loop(batch)
        finally:
            self._serving = False
            self._note_busy()

    def _note_busy(self) -> None:
        busy = bool(self._queue) or bool(self._reading)
        if busy != self._busy:
            self._busy = busy
            if self._on_busy is not None:
                self._on_busy(busy)

    def _serve_loop(self, batch: list[tuple[int, int, Buffer]] | None = None) -> None:
        batch = batch or []
        size = sum(len(data) for _, _, data in batch)
        try:
            size = self._serve_batch(batch, size)
        finally:
            if batch:
                self._send_batch(batch, size)

    def _serve_batch(self, batch: list[tuple[int, int, Buffer]], size: int) -> int:
        """Blocks in memory into ``batch``, sent each time it holds ``BATCH_BYTES``;
        returns the bytes left in it (the caller sends them)."""
        cached = self._cached
        loading = self._loading
        read_now = self._read_now
        queue = self._queue
        while queue and not self._paused and not self._stopped:
            index, begin, length = queue[0]
            data = cached(index, begin, length) if cached is not None else None
            if data is None:
                if len(self._reading) >= self.max_reads:
                    break  # a disk read answers first; blocks in memory never wait for it
                if self._reading and loading is not None and loading(index, begin, length):
                    break  # our read in flight brings it: served with the others, in order
            wait = self._throttle(length)
            if wait > 0:
                self._sleep(wait)
                break
            block = queue.popleft()
            self._queued.discard(block)
            if data is None:
                ahead = self._asked_after(index, begin + length)
                if read_now is not None:
                    data = read_now(index, begin, length, ahead)
                if data is None:
                    self._start_read(block, ahead)
                    continue
            batch.append((index, begin, data))
            size += length
            if size >= BATCH_BYTES:
                self._send_batch(batch, size)  # may pause us: the transport is full
                batch.clear()
                size = 0
        return size

    def _send_batch(self, batch: list[tuple[int, int, Buffer]], size: int) -> None:
        self._send_blocks(list(batch))
        self._on_sent(size)

    def _send_each(self, blocks: list[tuple[int, int, Buffer]]) -> None:
        for index, begin, data in blocks:
            self._send_block(index, begin, data)

    def _start_read(self, block: _Key, ahead: int) -> None:
        self._reading[block] = True
        reading = self._read(*block, ahead)
        reading.addCallbacks(self._read_done, self._read_failed, (block,), None, (block,))

    def _asked_after(self, index: int, end: int) -> int:
        """Bytes of piece ``index`` from ``end`` on that the queue asks for next, in order.

        Peers mostly ask for a piece's blocks in order and of one size, so the request
        ``READ_AHEAD_BYTES`` on tells at once (no walk) whether the run reaches that far."""
        queue = self._queue
        if not queue:
            return 0
        length = queue[0][2]
        reach = min(len(queue), READ_AHEAD_BYTES // length if length > 0 else 1)
        if reach and queue[reach - 1] == (index, end + (reach - 1) * length, length):
            if queue[0][:2] == (index, end):
                return reach * length  # a run of one block size: only its ends need checking
        ahead = 0
        for queued_index, begin, size in queue:
            if queued_index != index or begin != end + ahead or ahead >= READ_AHEAD_BYTES:
                break
            ahead += size
        return ahead

    def _sleep(self, seconds: float) -> None:
        if self._call_later is None or (self._wakeup is not None and self._wakeup.active()):
            return
        self._wakeup = self._call_later(seconds, self._wake)

    def _wake(self) -> None:
        self._wakeup = None
        self._serve()

    def _read_done(self, data: bytes, block: _Key) -> None:
        wanted = self._reading.pop(block, False)
        if wanted and not self._stopped:
            if not self._paused:
                self._serve([(block[0], block[1], data)])
                return
            self._send_block(block[0], block[1], data)
            self._on_sent(len(data))
        self._serve()

    def _read_failed(self, failure: Failure, block: _Key) -> None:
        self._reading.pop(block, None)
        failure.trap(StorageError)
        if self._on_read_failed is not None:
            self._on_read_failed(Block(*block), failure.value)  # type: ignore[arg-type]
        else:
            self.log.warn(
                "cannot serve piece {index} at {begin}: {error}",
                index=block[0],
                begin=block[1],
                error=failure.value,
            )
        self._serve()
