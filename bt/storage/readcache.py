"""A small read cache for seeding: one disk job per piece, not one per 16 KiB block.

Peers request a piece block by block, in order. Reading the whole piece on the
first request and answering the next ones from memory turns dozens of thread
pool round trips into one, which is what a seeder's CPU goes to otherwise. The
cache is bounded in bytes and evicts the least recently used piece.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from twisted.internet import defer
from twisted.internet.defer import Deferred

#: Default bound: enough for a few pieces per active peer without growing memory much.
DEFAULT_CAPACITY = 32 * 1024 * 1024


class PieceReadCache:
    """Serves block reads from whole pieces read once; at most ``capacity`` bytes kept."""

    def __init__(
        self,
        read: Callable[[int, int, int], Deferred[bytes]],
        piece_size: Callable[[int], int],
        capacity: int = DEFAULT_CAPACITY,
    ) -> None:
        self._read = read
        self._piece_size = piece_size
        self.capacity = capacity
        self._pieces: OrderedDict[int, bytes] = OrderedDict()
        self._size = 0
        self._loading: dict[int, list[Deferred[bytes]]] = {}
        self.hits = 0
        self.misses = 0

    def read(self, index: int, begin: int, length: int) -> Deferred[bytes]:
        """The block's bytes; fails like the underlying read (StorageError, short data)."""
        piece = self._pieces.get(index)
        if piece is not None:
            self._pieces.move_to_end(index)
            self.hits += 1
            return defer.succeed(piece[begin : begin + length])
        size = self._piece_size(index)
        if size > self.capacity:
            return self._read(index, begin, length)  # too big to hold: read the block only
        waiter: Deferred[bytes] = Deferred()
        waiter.addCallback(lambda data: data[begin : begin + length])
        waiting = self._loading.get(index)
        if waiting is not None:
            waiting.append(waiter)
            return waiter
        self.misses += 1
        self._loading[index] = [waiter]
        loading = self._read(index, 0, size)
        loading.addCallbacks(self._loaded, self._failed, (index,), None, (index,))
        return waiter

    def discard(self, index: int) -> None:
        """Forget a piece (its data on disk changed)."""
        piece = self._pieces.pop(index, None)
        if piece is not None:
            self._size -= len(piece)

    def _loaded(self, data: bytes, index: int) -> None:
        if len(data) == self._piece_size(index):
            self._pieces[index] = data
            self._size += len(data)
            while self._size > self.capacity:
                _, evicted = self._pieces.popitem(last=False)
                self._size -= len(evicted)
        for waiter in self._loading.pop(index, []):
            waiter.callback(data)

    def _failed(self, failure: object, index: int) -> None:
        for waiter in self._loading.pop(index, []):
            waiter.errback(failure)
