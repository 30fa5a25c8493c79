"""The seeding read cache: aligned chunks of pieces, one byte budget per session.

Peers request a piece block by block, in order. Reading a whole aligned chunk
(128 KiB: eight 16 KiB blocks) on the first request and answering the next ones
from memory turns most thread pool round trips into none, which is what a
seeder's CPU goes to otherwise.

Why chunks and not whole pieces: the cache must hold what every active peer is
working on now. With 200 peers on 200 different 1 MiB pieces, whole pieces are
a 200 MiB working set; an LRU smaller than that evicts a piece between a peer's
batches of requests and reads it again (6.65 bytes read per byte sent, measured
in docs/performance.rst). A peer's current chunk is 128 KiB, so the same 200
peers need 25 MiB.

Why one pool per session: a budget per torrent grows with the number of
torrents (1,000 seeding torrents could pin 32 GB) while the number of peers
being served, which is what sets the working set, does not. Every torrent's
:class:`PieceReadCache` draws on one :class:`ReadCachePool`; least recently
used chunks go first whichever torrent they belong to, and before them a chunk
whose last block has been served (a reader in order is done with it). Reads in
flight reserve their bytes in the pool, so the budget bounds those too; a miss
that finds the budget all reserved reads just its block.

Why read ahead: each disk read is a hand-off to the disk threads and back (a
queue put, a worker wake-up, a reactor wake-up), and at 128 KiB a chunk that
was a third of a one-peer seeder's reactor time (docs/performance.rst). A miss
whose reader has asked for the blocks after it (``ahead``) reads up to
``MAX_READ_AHEAD`` in one job and caches it as chunks. How far is the pool's
fair share per busy reader (``ReadCachePool.reader_busy``): one peer reads
1 MiB at a time, 50 peers 640 KiB, 200 peers a chunk each as before, so
read-ahead does not grow the working set past the budget.

Why read now: data in the kernel's page cache can be copied on the reactor
thread without waiting for the disk (``read_now``, ``bt.storage.pagecache``),
which skips the disk threads' hand-off altogether; only what is not in memory
goes to them.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from itertools import count

from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from bt.errors import DataMissingError

#: Default budget in bytes, for a session's pool (or a cache without one).
DEFAULT_CAPACITY = 32 * 1024 * 1024
#: Default chunk: eight 16 KiB blocks, a peer's next few requests in one read.
CHUNK = 128 * 1024
#: The most one miss reads (its chunk and those after it that its reader asked for).
MAX_READ_AHEAD = 1024 * 1024
#: After failed tries of the page cache, at most this many misses go straight to disk.
MAX_SKIP_NOW = 63

#: A cached chunk: (owner, piece, chunk number within the piece).
_Key = tuple[int, int, int]
#: ``read_now(index, begin, sizes)``: buffers of those sizes if in memory now, else None.
ReadNow = Callable[[int, int, Sequence[int]], "list[bytearray] | None"]
#: A chunk's bytes: read by the disk threads (bytes) or from the page cache (bytearray).
_Chunk = bytes | bytearray


class ReadCachePool:
    """A byte budget shared by the read caches of a session: one LRU over every owner.

    Holds cached chunks and reservations for chunks being read; the two together
    stay within ``capacity``.
    """

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = capacity
        self._chunks: OrderedDict[_Key, _Chunk] = OrderedDict()
        self._owned: dict[int, dict[_Key, None]] = {}  # owner -> its keys, for clear()
        self._owned_bytes: dict[int, int] = {}
        self._owners = count()
        #: Bytes of cached chunks.
        self.cached = 0
        #: Bytes promised to reads in flight.
        self.reserved = 0
        self.evictions = 0
        #: Readers (peers' upload queues) with requests to serve now.
        self.readers = 0

    def __len__(self) -> int:
        return len(self._chunks)

    def __contains__(self, key: _Key) -> bool:
        """Is the chunk cached (without making it recently used)?"""
        return key in self._chunks

    @property
    def size(self) -> int:
        """Bytes counted against ``capacity``: cached plus reserved."""
        return self.cached + self.reserved

    def new_owner(self) -> int:
        """A token naming one cache's entries (a number, so the pool keeps no cache alive)."""
        return next(self._owners)

    def owned_bytes(self, owner: int) -> int:
        return self._owned_bytes.get(owner, 0)

    def reader_busy(self, busy: bool) -> None:
        """A reader started (True) or ran out of (False) requests to serve."""
        self.readers = self.readers + 1 if busy else max(0, self.readers - 1)

    def read_ahead_chunks(self, chunk_size: int) -> int:
        """How many chunks one miss may read: the budget shared by the busy readers, at
        least one chunk, at most ``MAX_READ_AHEAD``. (Each reader's chunks are demoted as
        it serves them, so what it read ahead goes before what others still need.)"""
        share = self.capacity // (chunk_size * max(1, self.readers))
        return max(1, min(share, MAX_READ_AHEAD // chunk_size))

    def get(self, key: _Key) -> _Chunk | None:
        """The chunk, now the most recently used; None if not cached."""
        data = self._chunks.get(key)
        if data is not None:
            self._chunks.move_to_end(key)
        return data

    def demote(self, key: _Key) -> None:
        """Make a chunk the next to go: its reader is done with it.

        Plain LRU fails a round robin of peers: a chunk a peer has just finished
        looks newer than the chunks the other peers have not come back to yet.
        """
        if key in self._chunks:
            self._chunks.move_to_end(key, last=False)

    def reserve(self, amount: int) -> bool:
        """Make room for a read of ``amount`` bytes, evicting; False if it cannot fit."""
        if self.reserved + amount > self.capacity:
            return False  # reads in flight alone fill the budget: evicting would not help
        self._evict_to(self.capacity - amount)
        self.reserved += amount
        return True

    def release(self, amount: int) -> None:
        """Give back a reservation whose read failed or is not to be kept."""
        self.reserved -= amount

    def put(self, key: _Key, data: _Chunk, reserved: int) -> None:
        """Cache a chunk read under a reservation of ``reserved`` bytes (at least its size)."""
        self.reserved -= reserved
        self._remove(key)
        self._chunks[key] = data
        owner = key[0]
        self._owned.setdefault(owner, {})[key] = None
        self._owned_bytes[owner] = self._owned_bytes.get(owner, 0) + len(data)
        self.cached += len(data)
        self._evict_to(self.capacity)  # only if the chunk outgrew its reservation

    def discard(self, key: _Key) -> None:
        self._remove(key)

    def clear(self, owner: int) -> None:
        """Drop every chunk of one owner; the others' stay."""
        for key in list(self._owned.get(owner, ())):
            self._remove(key)

    def _evict_to(self, limit: int) -> None:
        while self.size > limit and self._chunks:
            key = next(iter(self._chunks))
            self._remove(key)
            self.evictions += 1

    def _remove(self, key: _Key) -> None:
        data = self._chunks.pop(key, None)
        if data is None:
            return
        owner = key[0]
        self.cached -= len(data)
        keys = self._owned[owner]
        del keys[key]
        left = self._owned_bytes[owner] - len(data)
        if keys:
            self._owned_bytes[owner] = left
        else:
            del self._owned[owner], self._owned_bytes[owner]


class _Load:
    """One read in flight of ``count`` chunks from ``first`` on, and the blocks waiting for it.

    Waiters' ``start`` and ``end`` are offsets from the start of the first chunk."""

    __slots__ = ("count", "first", "reserved", "waiters")

    def __init__(self, first: int, count: int, reserved: int) -> None:
        self.first = first
        self.count = count
        self.reserved = reserved
        self.waiters: list[tuple[Deferred[bytes], int, int]] = []  # (waiter, start, end)


class PieceReadCache:
    """Serves one torrent's block reads from aligned chunks, within a (shared) pool.

    ``read(index, begin, length)`` is the disk read (``DiskQueue.read``); it fails
    with DataMissingError when the bytes are not all there. ``read_now`` (``DiskQueue.
    read_now``) copies from the page cache at once, or says None. Without ``pool`` the
    cache has a private one of ``capacity`` bytes; with one, ``capacity`` is ignored.
    """

    def __init__(
        self,
        read: Callable[[int, int, int], Deferred[bytes]],
        piece_size: Callable[[int], int],
        capacity: int = DEFAULT_CAPACITY,
        *,
        pool: ReadCachePool | None = None,
        chunk_size: int = CHUNK,
        read_now: ReadNow | None = None,
    ) -> None:
        if chunk_size <= 0:
            raise ValueError(f"chunk size must be positive, not {chunk_size}")
        self._read = read
        self._read_now = read_now
        self._piece_size = piece_size
        self.pool = pool if pool is not None else ReadCachePool(capacity)
        self.chunk_size = chunk_size
        self._owner = self.pool.new_owner()
        self._loading: dict[_Key, _Load] = {}
        #: Blocks answered without a disk read of their own (cached, or a read in flight).
        self.hits = 0
        #: Disk reads of chunks started (one may hold several chunks: see read_ahead).
        self.misses = 0
        #: Chunks read ahead, in the same disk read as a miss's own chunk.
        self.read_ahead = 0
        #: Reads answered from the page cache at once (``read_now``), and those it could not.
        self.reads_now = 0
        self.not_now = 0
        #: Misses left before trying the page cache again, and the next such pause: data
        #: on a cold disk must not pay a failed try (buffers, a syscall) on every miss.
        self._skip_now = 0
        self._next_skip = 0
        #: Blocks read from disk as they are: straddling chunks, or no room in the pool.
        self.direct_reads = 0
        #: Bytes asked of the disk (chunks and direct reads), for read amplification.
        self.bytes_read = 0

    @property
    def capacity(self) -> int:
        return self.pool.capacity

    @property
    def size(self) -> int:
        """Bytes this torrent has cached in the pool."""
        return self.pool.owned_bytes(self._owner)

    def cached(self, index: int, begin: int, length: int) -> _Chunk | memoryview | None:
        """The block if its chunk is in memory now, else None (nothing is read).

        The upload queue tries this first: most blocks are hits, and answering
        them without a Deferred each is a large share of a busy seeder's CPU. A part
        of a chunk is a memoryview of it, not a copy: the sender writes views to the
        socket as they are (``bt.peer.sender``); don't keep one past the send.
        """
        chunk_size = self.chunk_size
        first = begin // chunk_size
        if length <= 0 or (begin + length - 1) // chunk_size != first:
            return None
        key = (self._owner, index, first)
        data = self.pool.get(key)
        start = begin - first * chunk_size
        if data is None or start + length > len(data):
            return None
        self.hits += 1
        return self._part(key, data, start, length)

    def _part(self, key: _Key, data: _Chunk, start: int, length: int) -> _Chunk | memoryview:
        """A block of a cached chunk, uncopied; the chunk's last block demotes the chunk."""
        if start + length == len(data):
            self.pool.demote(key)  # a reader in order is done with it
            if start == 0:
                return data
        return memoryview(data)[start : start + length]

    def read_now(
        self, index: int, begin: int, length: int, ahead: int = 0
    ) -> _Chunk | memoryview | None:
        """The block at once, if its chunk (and ``ahead``, as for :meth:`read`) can be
        copied from the page cache now; else None, and the caller uses :meth:`read`.

        Like :meth:`cached`, a part of a chunk is a view of it: don't keep it past the send."""
        data = self.cached(index, begin, length)
        if data is not None or self._read_now is None:
            return data
        if self._skip_now:
            self._skip_now -= 1
            return None
        chunk_size = self.chunk_size
        first = begin // chunk_size
        if length <= 0 or (begin + length - 1) // chunk_size != first:
            return None  # straddles chunks: read() knows how
        if (self._owner, index, first) in self._loading:
            return None  # a read in flight answers it
        piece_size = self._piece_size(index)
        if begin + length > min(piece_size, (first + 1) * chunk_size):
            return None  # past the end of the piece: read() lets the disk refuse it
        count, total = self._reserve_run(index, first, begin + length + ahead, piece_size)
        if not count:
            return None
        sizes = [
            min(chunk_size, piece_size - number * chunk_size)
            for number in range(first, first + count)
        ]
        chunks = self._read_now(index, first * chunk_size, sizes)
        if chunks is None:
            self.pool.release(total)
            self.not_now += 1
            self._skip_now = self._next_skip
            self._next_skip = min(MAX_SKIP_NOW, 2 * self._next_skip + 1)
            return None
        self.reads_now += 1
        self._next_skip = 0
        self.read_ahead += count - 1
        self.bytes_read += total
        for number, chunk in enumerate(chunks, first):
            self.pool.put((self._owner, index, number), chunk, len(chunk))
        return self._part(
            (self._owner, index, first), chunks[0], begin - first * chunk_size, length
        )

    def loading(self, index: int, begin: int, length: int) -> bool:
        """Is the block's chunk being read now (so a read of it waits for that one)?"""
        return (self._owner, index, begin // self.chunk_size) in self._loading

    def read(self, index: int, begin: int, length: int, ahead: int = 0) -> Deferred[bytes]:
        """The block's bytes; fails like the underlying read (StorageError).

        ``ahead``: bytes of this piece right after the block that the reader has asked
        for too; a miss reads them in the same disk read, within the pool's fair share."""
        data = self.cached(index, begin, length)
        if data is not None:
            return defer.succeed(bytes(data))
        chunk_size = self.chunk_size
        first = begin // chunk_size
        last = (begin + length - 1) // chunk_size if length > 0 else first
        if first != last:
            return self._straddling(index, begin, length, first, last)
        key = (self._owner, index, first)
        waiter: Deferred[bytes] = Deferred()
        load = self._loading.get(key)
        if load is not None:
            self.hits += 1
            start = begin - load.first * chunk_size
            load.waiters.append((waiter, start, start + length))
            return waiter
        piece_size = self._piece_size(index)
        start = begin - first * chunk_size
        size = min(chunk_size, piece_size - first * chunk_size)
        if size < start + length:
            return self._direct(index, begin, length)  # past the end of the piece: refused
        count, total = self._reserve_run(index, first, begin + length + ahead, piece_size)
        if not count:
            return self._direct(index, begin, length)  # no room in the pool
        self.misses += 1
        self.read_ahead += count - 1
        self.bytes_read += total
        load = _Load(first, count, total)
        load.waiters.append((waiter, start, start + length))
        for number in range(first, first + count):
            self._loading[(self._owner, index, number)] = load
        reading = self._read(index, first * chunk_size, total)
        reading.addCallbacks(self._loaded, self._failed, (index, load), None, (index, load))
        return waiter

    def _reserve_run(
        self, index: int, first: int, through: int, piece_size: int
    ) -> tuple[int, int]:
        """Reserve the chunks to read from ``first`` on (``_chunks_to_read``), or just the
        first if they do not all fit: (chunks, bytes) reserved; (0, 0) if none fits."""
        chunk_size = self.chunk_size
        count = self._chunks_to_read(index, first, through, piece_size)
        while True:
            total = min(piece_size, (first + count) * chunk_size) - first * chunk_size
            if self.pool.reserve(total):
                return count, total
            if count == 1:
                return 0, 0
            count = 1

    def _chunks_to_read(self, index: int, first: int, through: int, piece_size: int) -> int:
        """Chunks from ``first`` on to read now: up to the one holding byte ``through - 1``
        of the piece, within the fair share, stopping at one cached or being read."""
        chunk_size = self.chunk_size
        last = min((through - 1) // chunk_size, (piece_size - 1) // chunk_size)
        last = min(last, first + self.pool.read_ahead_chunks(chunk_size) - 1)
        count = 1
        pool = self.pool
        while first + count <= last:
            key = (self._owner, index, first + count)
            if key in pool or key in self._loading:
                break
            count += 1
        return count

    def discard(self, index: int) -> None:
        """Forget a piece (its data on disk changed); reads of it in flight are not kept."""
        piece_chunks = -(-self._piece_size(index) // self.chunk_size)
        for number in range(piece_chunks):
            key = (self._owner, index, number)
            self.pool.discard(key)
            self._forget_load(key)

    def clear(self) -> None:
        """Drop all of this torrent's chunks (it stopped, or its data is being rechecked).

        Reads in flight still answer their waiters but are not cached.
        """
        self.pool.clear(self._owner)
        for key in list(self._loading):
            self._forget_load(key)

    # -- internals --------------------------------------------------------------------

    def _straddling(
        self, index: int, begin: int, length: int, first: int, last: int
    ) -> Deferred[bytes]:
        """A block across chunk boundaries: joined from memory if all cached, else read as is."""
        parts = []
        for number in range(first, last + 1):
            data = self.pool.get((self._owner, index, number))
            if data is None:
                return self._direct(index, begin, length)
            parts.append(data)
        start = begin - first * self.chunk_size
        data = b"".join(parts)
        if start + length > len(data):
            return self._direct(index, begin, length)  # past the end of the piece
        self.hits += 1
        return defer.succeed(data[start : start + length])

    def _direct(self, index: int, begin: int, length: int) -> Deferred[bytes]:
        self.direct_reads += 1
        self.bytes_read += length
        return self._read(index, begin, length)

    def _forget_load(self, key: _Key) -> None:
        """Detach a read in flight: its waiters are answered, its data not cached."""
        load = self._loading.pop(key, None)
        if load is not None:
            owner, index, _ = key
            for number in range(load.first, load.first + load.count):
                if self._loading.get((owner, index, number)) is load:
                    del self._loading[(owner, index, number)]
            self.pool.release(load.reserved)
            load.reserved = 0

    def _loaded(self, data: bytes, index: int, load: _Load) -> None:
        chunk_size = self.chunk_size
        base = load.first * chunk_size
        total = min(self._piece_size(index), (load.first + load.count) * chunk_size) - base
        if len(data) != total:
            missing = DataMissingError(index, base, total, len(data))
            self._failed(Failure(missing), index, load)
            return
        if load.reserved:  # still wanted: cache each chunk
            owner = self._owner
            for number in range(load.first, load.first + load.count):
                key = (owner, index, number)
                del self._loading[key]
                offset = (number - load.first) * chunk_size
                end = min(offset + chunk_size, total)
                chunk = data if load.count == 1 else data[offset:end]
                self.pool.put(key, chunk, len(chunk))
                if any(start < end <= stop for _, start, stop in load.waiters):
                    self.pool.demote(key)  # its last block is served now
            load.reserved = 0
        for waiter, start, end in load.waiters:
            if start == 0 and end == total:
                waiter.callback(data)
            else:
                waiter.callback(data[start:end])

    def _failed(self, failure: Failure, index: int, load: _Load) -> None:
        key = (self._owner, index, load.first)
        if self._loading.get(key) is load:
            self._forget_load(key)
        for waiter, _, _ in load.waiters:
            waiter.errback(failure)
