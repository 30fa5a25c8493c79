"""Piece availability: how many peers have each piece, and the pieces sorted by it.

The picker's rarest-first order lives here (layer 0, pure). It is kept like
libtorrent's sorted piece list: ``order`` holds every wanted piece we lack and
have not started, sorted by how many non-seed peers have it, with one
contiguous bucket per availability (bucket b is ``order[starts[b]:starts[b+1]]``,
the last entry of ``starts`` a sentinel). A HAVE or a lost peer moves a piece
to the next bucket with one swap, so a pick scans from the rarest bucket and
stops as soon as it has enough blocks. Seeds are one counter, not a pass over
every piece. Ties are random because the list starts as a shuffle and each
peer bitfield is applied in a shuffled order.

The shuffle moves runs of ``run_length`` adjacent pieces, not single pieces (as
libtorrent's piece extent affinity keeps 4 MiB extents together): with small
pieces, equally rare pieces are then picked side by side, so a peer's requests
and our disk writes are runs of the file instead of scattered 16 KiB pieces
(the disk queue writes a run in one call; the seeder reads it ahead).
"""

from __future__ import annotations

import random
from array import array
from collections.abc import Hashable, Iterable
from itertools import groupby

from bt.bitfield import Bitfield

__all__ = ["Availability", "run_length"]

#: Equally rare pieces tie in runs of adjacent pieces of about this many bytes
#: (libtorrent's piece extent): 256 pieces of 16 KiB, 4 of 1 MiB ...
_RUN_BYTES = 4 << 20
#: ... but a torrent keeps at least this many runs, so that peers starting together
#: still pick different parts of a small torrent.
_MIN_RUNS = 64


def run_length(piece_length: int, num_pieces: int) -> int:
    """How many adjacent pieces to keep together in the tie order."""
    return max(1, min(_RUN_BYTES // piece_length, num_pieces // _MIN_RUNS))


class Availability:
    """Per piece, the peers that have it; the listed pieces in rarest-first buckets.

    Which pieces are listed is the picker's choice (wanted, missing, not started):
    it calls ``insert`` and ``remove``. Counting goes on for unlisted pieces too.
    """

    __slots__ = (
        "_peers",
        "_rng",
        "count",
        "num_pieces",
        "order",
        "position",
        "run_length",
        "seeds",
        "starts",
    )

    def __init__(self, num_pieces: int, rng: random.Random, run_length: int = 1) -> None:
        if run_length < 1:
            raise ValueError(f"run length {run_length} must be positive")
        self.num_pieces = num_pieces
        self.run_length = run_length
        self._rng = rng
        #: Per piece: how many registered non-seed peers have it.
        self.count = array("i", [0]) * num_pieces
        self.seeds = 0
        #: Peers whose pieces are counted -> whether they are counted as a seed.
        self._peers: dict[Hashable, bool] = {}
        order = self._shuffled(range(num_pieces))
        #: Listed pieces, by ``count``, in buckets that start at ``starts``.
        self.order = array("i", order)
        #: Piece -> its position in ``order``, -1 when not listed.
        self.position = array("i", [0]) * num_pieces
        for position, index in enumerate(order):
            self.position[index] = position
        self.starts = [0, num_pieces]

    def of(self, index: int) -> int:
        """How many registered peers have ``index`` (seeds included)."""
        return self.count[index] + self.seeds

    def is_seed(self, peer: Hashable) -> bool | None:
        """Whether ``peer`` is counted as a seed; None when it is not counted at all."""
        return self._peers.get(peer)

    def listed(self, index: int) -> bool:
        return self.position[index] >= 0

    # -- peers ----------------------------------------------------------------

    def add_peer(self, peer: Hashable, bitfield: Bitfield) -> None:
        """Count the pieces of a new peer (its BITFIELD, HAVE_ALL or HAVE_NONE)."""
        if peer in self._peers:
            raise ValueError(f"pieces of peer {peer!r} are already counted")
        if bitfield.is_complete():
            self._peers[peer] = True
            self.seeds += 1
            return
        self._peers[peer] = False
        # The order pieces enter a bucket is their tie order.
        for index in self._shuffled(bitfield):
            self._gained(index)

    def add_have(self, peer: Hashable, index: int) -> None:
        """The peer announced ``index`` (its bit was not set before)."""
        if not self._peers.setdefault(peer, False):
            self._gained(index)

    def replace_peer(self, peer: Hashable, old: Bitfield, new: Bitfield) -> None:
        """The peer's pieces are now ``new`` instead of ``old`` (a late BITFIELD)."""
        was_seed = self._peers.get(peer)
        if was_seed is None:
            self.add_peer(peer, new)
            return
        if was_seed or new.is_complete():
            # A seed is one counter, not per-piece counts: move it out, then back in.
            if was_seed:
                self.seeds -= 1
            else:
                for index in old:
                    self._lost(index)
            del self._peers[peer]
            self.add_peer(peer, new)
            return
        # Only the difference moves: a late bitfield mostly repeats what HAVEs said.
        before = int.from_bytes(old.to_bytes(), "big")
        after = int.from_bytes(new.to_bytes(), "big")
        width = (self.num_pieces + 7) // 8 * 8
        for changed, step in ((before & ~after, self._lost), (after & ~before, self._gained)):
            while changed:
                top = changed.bit_length() - 1
                step(width - 1 - top)
                changed ^= 1 << top

    def remove_peer(self, peer: Hashable, bitfield: Bitfield) -> None:
        """Uncount a peer that is gone (``bitfield``: its pieces as last counted)."""
        is_seed = self._peers.pop(peer, None)
        if is_seed:
            self.seeds -= 1
        elif is_seed is not None:
            for index in self._shuffled(bitfield):
                self._lost(index)

    def _shuffled(self, indexes: Iterable[int]) -> list[int]:
        """``indexes`` (ascending) in random order, runs of ``run_length`` kept together."""
        length = self.run_length
        runs = [list(run) for _, run in groupby(indexes, key=lambda index: index // length)]
        self._rng.shuffle(runs)
        return [index for run in runs for index in run]

    # -- buckets --------------------------------------------------------------

    def _swap(self, a: int, b: int) -> None:
        order = self.order
        order[a], order[b] = order[b], order[a]
        self.position[order[a]] = a
        self.position[order[b]] = b

    def _gained(self, index: int) -> None:
        """One more peer has ``index``: it becomes the first of the next bucket."""
        count = self.count[index]
        self.count[index] = count + 1
        position = self.position[index]
        if position < 0:
            return
        starts = self.starts
        if count + 2 == len(starts):
            starts.append(starts[-1])  # open an empty top bucket
        last = starts[count + 1] - 1
        self._swap(position, last)
        starts[count + 1] = last

    def _lost(self, index: int) -> None:
        """One fewer peer has ``index``: it becomes the last of the previous bucket."""
        count = self.count[index]
        if not count:
            raise ValueError(f"piece {index} lost a peer but none was counted")
        self.count[index] = count - 1
        position = self.position[index]
        if position < 0:
            return
        starts = self.starts
        first = starts[count]
        self._swap(position, first)
        starts[count] = first + 1

    def remove(self, index: int) -> None:
        """Unlist ``index``: move it up through every higher bucket to the end, then drop it."""
        starts = self.starts
        position = self.position[index]
        for bucket in range(self.count[index], len(starts) - 1):
            last = starts[bucket + 1] - 1
            self._swap(position, last)
            starts[bucket + 1] = position = last
        self.order.pop()
        self.position[index] = -1

    def insert(self, index: int) -> None:
        """List ``index``: append it to the top bucket, then move it down to its own."""
        starts = self.starts
        count = self.count[index]
        while len(starts) < count + 2:
            starts.append(starts[-1])
        self.order.append(index)
        position = self.position[index] = len(self.order) - 1
        starts[-1] = len(self.order)
        for bucket in range(len(starts) - 2, count, -1):
            first = starts[bucket]
            self._swap(position, first)
            starts[bucket] = first + 1
            position = first

    def check_invariants(self, listed: set[int]) -> None:
        """Raise AssertionError unless exactly ``listed`` is listed, each in its bucket."""
        assert sorted(self.order) == sorted(listed), "order holds the unstarted wanted"
        for index in range(self.num_pieces):
            position = self.position[index]
            assert self.count[index] >= 0
            if index in listed:
                assert self.order[position] == index, f"position of {index}"
            else:
                assert position == -1, f"{index} is listed but had, skipped or started"
        starts = self.starts
        assert starts[0] == 0 and starts[-1] == len(self.order), "bucket ends"
        for bucket in range(len(starts) - 1):
            assert starts[bucket] <= starts[bucket + 1], "buckets in order"
            for position in range(starts[bucket], starts[bucket + 1]):
                assert self.count[self.order[position]] == bucket, "piece in its bucket"
        assert self.seeds == sum(self._peers.values())
