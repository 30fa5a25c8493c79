"""Which blocks to request next: partial pieces first, random first pieces, rarest-first, endgame.

The picker is a pure policy object (layer 0). The swarm (bt/swarm/) tells it what
happens (peer bitfields and HAVEs, blocks arriving, requests given up, pieces
verified or failed) and asks it for the next blocks to request from one peer. It
tracks only block *states*; the bytes of received blocks live in the swarm.

Order of a pick, for one peer:

1. free blocks of pieces already started (finishing pieces early frees memory
   and gives us something to upload);
2. while we have fewer than ``random_first`` pieces, random pieces: a complete
   piece soon beats a rare piece that only one slow peer can give us;
3. rarest-first: the rarest piece the peer has, ties broken at random by runs of
   adjacent pieces (``run_length``: about 4 MiB), so small pieces arrive in runs;
4. endgame: once every missing block is requested, blocks already requested
   from other peers, at most ``endgame_requests_per_block`` peers per block, and
   (``strict_endgame``, as libtorrent's ``strict_end_game_mode``) only for a peer
   with no request of its own outstanding: with many fast seeders the endgame
   starts with each peer's deep pipeline still owed, and duplicating into those
   had peers send 16% of a torrent twice (docs/performance.rst).
   ``block_received`` then names the peers to CANCEL.

Cost. Availability is kept like libtorrent's sorted piece list
(:mod:`bt.policy.availability`): a pick scans from the rarest bucket and stops at
enough blocks; a peer sparse among rarer pieces gets its own bitfield walked after
a budget. Started pieces leave the order for ``_downloads``; the endgame walks only
``_duplicable`` (requested blocks with room) and skips a walk known to be empty.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Hashable, Iterable
from typing import Final

from bt.bitfield import Bitfield
from bt.geometry import Block, PieceGeometry
from bt.policy.availability import Availability, run_length
from bt.policy.blockstates import UNWANTED, BlockResult, PieceDownload
from bt.policy.priority import Priority

__all__ = [
    "BlockResult",
    "PiecePicker",
]

#: Piece priorities are bt.policy.priority levels (libtorrent's 0..7). 0 means "never
#: download"; every other value is currently treated alike. Levels will become the
#: major key of the availability order (priority, then availability) without changing this API.
_SKIP: Final = int(Priority.SKIP)
_MAX: Final = int(Priority.HIGH)

#: Random-first mode samples this many pieces per pick before falling back to rarest-first.
_RANDOM_PROBES: Final = 16
#: A rarest-first scan of the availability order looks at no more than this many pieces, or 1/16
#: of the list, before switching to the peer's own bitfield.
_MIN_SCAN_BUDGET: Final = 64
#: A NamedTuple from a tuple of its fields, skipping its Python ``__new__`` (hot paths).
_new_tuple: Final = tuple.__new__


class PiecePicker:
    """Block states and piece availability of one torrent; decides what to request.

    Peers are any hashable keys (the caller's connection objects or ids). The
    caller owns peer bitfields and passes them in; they must match what it
    reported through ``add_peer_bitfield`` and ``add_peer_have``.
    """

    def __init__(
        self,
        geometry: PieceGeometry,
        rng: random.Random,
        *,
        random_first: int = 4,
        endgame_requests_per_block: int = 2,
        strict_endgame: bool = True,
    ) -> None:
        if random_first < 0 or endgame_requests_per_block < 1:
            raise ValueError(
                f"endgame requests per block {endgame_requests_per_block} must be positive,"
                f" random first {random_first} not negative"
            )
        self.geometry = geometry
        num_pieces = self.num_pieces = geometry.num_pieces
        self.block_size = geometry.block_size
        self._block_count, self._block_length = geometry.block_count, geometry.block_length
        self.random_first = random_first
        self.endgame_requests_per_block = endgame_requests_per_block
        self.strict_endgame = strict_endgame
        #: Pieces ``pick`` has looked at, ever: a diagnostic of pick cost that
        #: does not depend on the machine (tests and docs/performance.rst).
        self.pieces_examined = 0
        self._rng = rng
        self._have = Bitfield(num_pieces)
        self._priority = bytearray([Priority.NORMAL]) * num_pieces
        #: Peers' pieces counted; wanted pieces we lack and have not started, listed
        #: rarest first.
        self._available = Availability(
            num_pieces, rng, run_length(geometry.piece_length, num_pieces)
        )
        #: Pieces with a priority above skip that we do not have.
        self._wanted_missing = num_pieces
        self._downloads: dict[int, PieceDownload] = {}
        #: Started pieces with free blocks (an ordered set).
        self._with_free: dict[int, None] = {}
        #: Peer -> its outstanding (index, block number) requests, in request order.
        self._requests: dict[Hashable, dict[tuple[int, int], None]] = {}
        #: Requested blocks with room for another requester (an ordered set), for the endgame.
        self._duplicable: dict[tuple[int, int], None] = {}
        #: Peer -> (_room_added, its piece count) at its last endgame walk that found nothing.
        self._endgame_dry: dict[Hashable, tuple[int, int]] = {}
        self._room_added = 0  # blocks put in _duplicable and priority changes, ever

    # -- geometry -------------------------------------------------------------

    def piece_size(self, index: int) -> int:
        return self.geometry.piece_size(index)

    def block_count(self, index: int) -> int:
        return self.geometry.block_count(index)

    # -- our pieces -----------------------------------------------------------

    def has(self, index: int) -> bool:
        return index in self._have

    @property
    def have_count(self) -> int:
        return self._have.count()

    @property
    def missing_count(self) -> int:
        """Wanted pieces (priority above skip) we do not have."""
        return self._wanted_missing

    @property
    def bytes_missing(self) -> int:
        """Bytes of wanted pieces we do not have (a tracker's ``left``)."""
        last = self.geometry.last_piece
        wants_last = not self.has(last) and self.piece_priority(last) != 0
        return self.geometry.bytes_in_count(self._wanted_missing, includes_last=wants_last)

    @property
    def is_complete(self) -> bool:
        """We have every piece: a seed."""
        return self._have.is_complete()

    @property
    def is_finished(self) -> bool:
        """We have every wanted piece (all of them unless some are skipped)."""
        return not self._wanted_missing

    def have_bitfield(self) -> Bitfield:
        """A copy of our pieces, for a BITFIELD message or resume state."""
        return self._have.copy()

    def have(self, index: int) -> None:
        """``index`` is verified and written: never pick it again; forget its blocks."""
        self._check(index)
        if index in self._have:
            return
        self._have.add(index)
        if self._priority[index] != _SKIP:
            self._wanted_missing -= 1
        if self._available.listed(index):
            self._available.remove(index)
        self._discard_download(index)

    def lose(self, index: int) -> None:
        """``index`` is no longer on disk (its file was shortened or changed): wanted
        again like any missing piece, and out of ``have_bitfield``. The reverse of ``have``."""
        self._check(index)
        if index not in self._have:
            return
        self._have.discard(index)
        if self._priority[index] != _SKIP:
            self._wanted_missing += 1
            self._available.insert(index)

    def piece_failed(self, index: int) -> frozenset[Hashable]:
        """``index`` failed its hash: every block is missing again.

        Returns the peers that sent its blocks, for the caller to blame.
        """
        self._check(index)
        if index in self._have:
            raise ValueError(f"piece {index} failed but we have it")
        download = self._discard_download(index)
        if download is None:
            return frozenset()
        if self._priority[index] != _SKIP:
            self._available.insert(index)
        return frozenset(download.received_from.values())

    def blocks_failed(self, index: int, blocks: Iterable[int]) -> frozenset[Hashable]:
        """Only ``blocks`` of ``index`` were bad (a v2 piece's leaf hashes said so): they
        are missing again, the other received blocks stay. Returns the bad blocks' senders."""
        self._check(index)
        download = self._downloads.get(index)
        if download is None or index in self._have:
            return frozenset()
        bad = {b: download.received_from[b] for b in blocks if b in download.received_from}
        if not bad:
            return frozenset()
        if len(bad) == len(download.received_from):
            return self.piece_failed(index)  # nothing kept: the piece is unstarted again
        for block in bad:
            del download.received_from[block]
        download.free = sum(1 for r in download.requested_by if not r) - len(download.received_from)
        if download.free:
            self._with_free[index] = None
        return frozenset(bad.values())

    def set_piece_priority(self, index: int, priority: int) -> None:
        """``Priority.SKIP`` (0) pieces are never picked; requests in flight stay valid."""
        self._check(index)
        if not _SKIP <= priority <= _MAX:
            raise ValueError(f"priority {priority} outside {_SKIP}..{_MAX}")
        self._room_added += 1
        was_wanted = self._priority[index] != _SKIP
        wanted = priority != _SKIP
        self._priority[index] = priority
        if index in self._have or wanted == was_wanted:
            return
        self._wanted_missing += 1 if wanted else -1
        if index in self._downloads:
            return  # a started piece stays started; see _unrequest and piece_failed
        if wanted:
            self._available.insert(index)
        else:
            self._available.remove(index)

    def piece_priority(self, index: int) -> int:
        self._check(index)
        return self._priority[index]

    # -- availability ---------------------------------------------------------

    def availability(self, index: int) -> int:
        """How many registered peers have ``index``."""
        self._check(index)
        return self._available.of(index)

    def add_peer_bitfield(self, peer: Hashable, bitfield: Bitfield) -> None:
        """The peer's first word on its pieces (BITFIELD, HAVE_ALL or HAVE_NONE)."""
        self._check_bitfield(bitfield)
        self._available.add_peer(peer, bitfield)

    def add_peer_have(self, peer: Hashable, index: int) -> None:
        """The peer announced ``index``; call only when its bit was not already set."""
        self._check(index)
        self._available.add_have(peer, index)

    def replace_peer_bitfield(self, peer: Hashable, old: Bitfield, new: Bitfield) -> None:
        """The peer sent another BITFIELD (aria2 does, after some HAVEs): uncount the
        pieces of ``old`` (its view as last counted) it no longer claims and count the
        new ones. Its requests stay; as in libtorrent, a late bitfield replaces the
        peer's view of its pieces and nothing else."""
        self._check_bitfield(old)
        self._check_bitfield(new)
        self._available.replace_peer(peer, old, new)

    def peer_gone(self, peer: Hashable, bitfield: Bitfield) -> list[Block]:
        """The peer disconnected: uncount its pieces (``bitfield`` as last known) and
        return its outstanding requests to the pool (they are returned too)."""
        self._check_bitfield(bitfield)
        abandoned = self.peer_requests_abandoned(peer)
        self._endgame_dry.pop(peer, None)
        self._available.remove_peer(peer, bitfield)
        return abandoned

    # -- requests -------------------------------------------------------------

    def pick(self, peer: Hashable, peer_bitfield: Bitfield, count: int) -> list[Block]:
        """Up to ``count`` blocks to request from ``peer``, now marked requested from it.

        Only pieces the peer has, we lack and want; never a block already
        requested from this peer. Blocks of one piece come in order.
        """
        self._check_bitfield(peer_bitfield)
        picked: list[Block] = []
        if count <= 0 or not self._wanted_missing:
            return picked
        self._pick_started(peer, peer_bitfield, count, picked)
        if len(picked) < count and self._have.count() < self.random_first:
            self._pick_random(peer, peer_bitfield, count, picked)
        if len(picked) < count:
            self._pick_rarest(peer, peer_bitfield, count, picked)
        strict = self.strict_endgame and self._requests.get(peer)  # has its own owed
        if len(picked) < count and not strict and self.in_endgame:
            self._pick_endgame(peer, peer_bitfield, count, picked)
        return picked

    @property
    def in_endgame(self) -> bool:
        """Every block of every wanted missing piece is requested or received."""
        if self._available.order or not self._wanted_missing:
            return False  # some wanted piece is not even started, or none is missing
        priority = self._priority
        return not any(priority[index] for index in self._with_free)

    def block_received(self, peer: Hashable, index: int, begin: int, length: int) -> BlockResult:
        """A PIECE message arrived; see ``BlockResult`` for what to do with it."""
        download = self._downloads.get(index)  # per block: helpers inlined
        block_size = self.block_size
        block = begin // block_size
        if download is None or begin - block * block_size:
            return UNWANTED
        requested_by = download.requested_by
        if block >= len(requested_by):
            return UNWANTED
        requesters = requested_by[block]
        whole = index < self.geometry.whole_blocks_below
        if peer not in requesters or length != (
            block_size if whole else self._block_length(index, block)
        ):
            return UNWANTED
        requested_by[block] = ()
        key = (index, block)
        self._duplicable.pop(key, None)
        received = download.received_from
        received[block] = peer
        for requester in requesters:
            self._forget_request(requester, key)
        complete = len(received) == len(requested_by)
        others = () if len(requesters) == 1 else tuple(p for p in requesters if p != peer)
        return _new_tuple(
            BlockResult, (True, _new_tuple(Block, (index, begin, length)), complete, others)
        )

    def request_abandoned(self, peer: Hashable, index: int, begin: int) -> bool:
        """One request will not be answered (timeout, REJECT): its block goes back to
        the pool. False if the peer had no such request."""
        if begin % self.block_size:
            return False
        key = (index, begin // self.block_size)
        if key not in self._requests.get(peer, {}):
            return False
        self._forget_request(peer, key)
        self._unrequest(peer, *key)
        return True

    def peer_requests_abandoned(self, peer: Hashable) -> list[Block]:
        """None of the peer's requests will be answered (choke, disconnect, snub):
        all go back to the pool. Returns them, in request order."""
        requests = self._requests.pop(peer, None)
        if not requests:
            return []
        abandoned = []
        for index, block in requests:
            abandoned.append(self.geometry.block(index, block))
            self._unrequest(peer, index, block)
        return abandoned

    def outstanding_requests(self, peer: Hashable) -> list[Block]:
        """Blocks requested from the peer and not yet received, in request order."""
        return [self.geometry.block(index, block) for index, block in self._requests.get(peer, {})]

    def outstanding_count(self, peer: Hashable) -> int:
        """How many blocks are requested from the peer and not yet received (O(1))."""
        return len(self._requests.get(peer, ()))

    def block_sources(self, index: int) -> dict[int, Hashable]:
        """Block number -> the peer that sent it, for a piece being downloaded."""
        download = self._downloads.get(index)
        return dict(download.received_from) if download is not None else {}

    def _pick_started(
        self, peer: Hashable, peer_bitfield: Bitfield, count: int, picked: list[Block]
    ) -> None:
        priority = self._priority
        self.pieces_examined += len(self._with_free)
        started = [i for i in self._with_free if priority[i] and i in peer_bitfield]
        started.sort(key=self._available.count.__getitem__)  # rarest first
        for index in started:
            if self._take_free(peer, index, self._downloads[index], count, picked):
                return

    def _pick_random(
        self, peer: Hashable, peer_bitfield: Bitfield, count: int, picked: list[Block]
    ) -> None:
        order = self._available.order
        for _ in range(_RANDOM_PROBES):
            if not order:
                return
            index = order[self._rng.randrange(len(order))]
            self.pieces_examined += 1
            if index in peer_bitfield:
                if self._take_free(peer, index, self._start(index), count, picked):
                    return

    def _pick_rarest(
        self, peer: Hashable, peer_bitfield: Bitfield, count: int, picked: list[Block]
    ) -> None:
        # Starting a piece reorders the order: choose every piece first, start them after.
        order = self._available.order
        needed = count - len(picked)
        chosen = []
        # A non-seed peer's pieces are all counted, so they are never in bucket 0.
        complete = peer_bitfield.is_complete()  # then every index is in it
        is_seed = complete or self._available.is_seed(peer)
        first = 0 if is_seed else self._available.starts[1]
        stop = min(len(order), first + max(_MIN_SCAN_BUDGET, len(order) >> 4))
        position = first
        while needed > 0 and position < stop:
            index = order[position]
            position += 1
            if complete or index in peer_bitfield:
                chosen.append(index)
                needed -= self._block_count(index)
        self.pieces_examined += position - first
        if needed > 0 and position < len(order):
            chosen += self._rarest_of_peer_pieces(peer_bitfield, needed, position)
        for index in chosen:
            self._take_free(peer, index, self._start(index), count, picked)

    def _rarest_of_peer_pieces(
        self, peer_bitfield: Bitfield, needed: int, from_position: int
    ) -> list[int]:
        """Rarest-first over the peer's bitfield, for a sparse peer: the scan's order
        from ``from_position`` on, enough pieces for ``needed`` blocks."""
        position = self._available.position
        self.pieces_examined += peer_bitfield.count()
        candidates = [i for i in peer_bitfield if position[i] >= from_position]
        chosen = []
        # Every piece gives at least one block, so this many pieces are enough.
        for index in heapq.nsmallest(needed, candidates, key=position.__getitem__):
            chosen.append(index)
            needed -= self._block_count(index)
            if needed <= 0:
                break
        return chosen

    def _pick_endgame(
        self, peer: Hashable, peer_bitfield: Bitfield, count: int, picked: list[Block]
    ) -> None:
        """Duplicate requests, least-requested blocks first, then rarest pieces; the
        walk stops once it knows enough blocks requested from one peer only."""
        dry = (self._room_added, peer_bitfield.count())
        if self._endgame_dry.get(peer) == dry:
            return  # no block gained room, nor the peer a piece, since its last empty walk
        limit = self.endgame_requests_per_block
        priority = self._priority
        availability = self._available.count
        downloads = self._downloads
        needed = count - len(picked)
        # Only blocks with room for another requester: not every started piece (thousands
        # may wait for the disk) nor every peer's requests (most are at the limit).
        candidates = []
        single = 0  # candidates requested from one peer only
        for key in self._duplicable:
            index, block = key
            self.pieces_examined += 1
            if not priority[index] or index not in peer_bitfield:
                continue
            requesters = downloads[index].requested_by[block]
            if peer not in requesters:
                candidates.append((len(requesters), availability[index], index, block))
                single += len(requesters) == 1
                if single >= needed:
                    break
        if not candidates:
            self._endgame_dry[peer] = dry
            return
        candidates.sort()
        requests = self._requests.setdefault(peer, {})
        for _, _, index, block in candidates[:needed]:
            requested_by = downloads[index].requested_by
            requested_by[block] += (peer,)
            requests[(index, block)] = None
            if len(requested_by[block]) >= limit:
                del self._duplicable[(index, block)]
            picked.append(self.geometry.block(index, block))

    def _take_free(
        self, peer: Hashable, index: int, download: PieceDownload, count: int, picked: list[Block]
    ) -> bool:
        """Request free blocks of one piece from ``peer``; True when ``picked`` is full."""
        duplicable = self._duplicable if self.endgame_requests_per_block > 1 else None
        self._room_added += 1
        requests = self._requests.setdefault(peer, {})
        requested_by = download.requested_by
        received = download.received_from
        block_size = self.block_size
        whole = index < self.geometry.whole_blocks_below
        for block, requesters in enumerate(requested_by):
            if requesters or block in received:
                continue
            requested_by[block] = (peer,)
            download.free -= 1
            key = (index, block)
            requests[key] = None
            if duplicable is not None:
                duplicable[key] = None
            length = block_size if whole else self._block_length(index, block)
            picked.append(_new_tuple(Block, (index, block * block_size, length)))
            if len(picked) >= count or not download.free:
                break
        # A piece just started joins _with_free here, if it still has free blocks: a
        # one-block piece (16 KiB pieces) never does, rather than joining and leaving.
        if download.free:
            self._with_free[index] = None
        else:
            self._with_free.pop(index, None)
        return len(picked) >= count

    def _start(self, index: int) -> PieceDownload:
        """First pick of a listed piece: it leaves the order and gets block state
        (``_take_free``, always called next, puts it in ``_with_free``)."""
        self._available.remove(index)
        download = self._downloads[index] = PieceDownload(self._block_count(index))
        return download

    def _forget_request(self, peer: Hashable, key: tuple[int, int]) -> None:
        requests = self._requests[peer]
        del requests[key]
        if not requests:
            del self._requests[peer]

    def _unrequest(self, peer: Hashable, index: int, block: int) -> None:
        """``peer`` no longer has ``block`` requested; free it if nobody else does."""
        download = self._downloads[index]
        requesters = tuple(p for p in download.requested_by[block] if p != peer)
        download.requested_by[block] = requesters
        if requesters:
            self._duplicable[(index, block)] = None  # below the limit now
            self._room_added += 1
            return
        self._duplicable.pop((index, block), None)
        download.free += 1
        if download.is_pristine():  # untouched again: back among the unstarted pieces
            del self._downloads[index]
            self._with_free.pop(index, None)
            if self._priority[index] != _SKIP:
                self._available.insert(index)
        else:
            self._with_free[index] = None

    def _discard_download(self, index: int) -> PieceDownload | None:
        download = self._downloads.pop(index, None)
        if download is None:
            return None
        self._with_free.pop(index, None)
        for block, requesters in enumerate(download.requested_by):
            if requesters:  # free and received blocks are never in it
                self._duplicable.pop((index, block), None)
            for requester in requesters:
                self._forget_request(requester, (index, block))
        return download

    def _check(self, index: int) -> None:
        if not 0 <= index < self.num_pieces:
            raise IndexError(f"piece index {index} out of range for {self.num_pieces} pieces")

    def _check_bitfield(self, bitfield: Bitfield) -> None:
        if bitfield.length != self.num_pieces:
            raise ValueError(
                f"bitfield of {bitfield.length} pieces for a torrent of {self.num_pieces}"
            )

    def check_invariants(self) -> None:
        """Raise AssertionError if internal state is inconsistent. O(pieces): for tests."""
        n = self.num_pieces
        wanted = {i for i in range(n) if self._priority[i] and i not in self._have}
        assert self._wanted_missing == len(wanted), "wanted missing count"
        unstarted = wanted - self._downloads.keys()
        self._available.check_invariants(unstarted)
        requested: dict[Hashable, set[tuple[int, int]]] = {}
        for index, download in self._downloads.items():
            assert index not in self._have, f"download state for had piece {index}"
            assert len(download.requested_by) == self.block_count(index)
            assert not download.is_pristine(), f"untouched piece {index} keeps block state"
            free = 0
            for block, requesters in enumerate(download.requested_by):
                assert len(set(requesters)) == len(requesters) <= self.endgame_requests_per_block
                if block in download.received_from:
                    assert not requesters, "received block still requested"
                elif not requesters:
                    free += 1
                for requester in requesters:
                    requested.setdefault(requester, set()).add((index, block))
            assert download.free == free, f"free count of piece {index}"
            assert (index in self._with_free) == (free > 0), f"with_free of piece {index}"
        assert all(index in self._downloads for index in self._with_free)
        assert {p: set(r) for p, r in self._requests.items()} == requested, "request index"
        limit = self.endgame_requests_per_block
        blocks = (
            (i, b, r) for i, d in self._downloads.items() for b, r in enumerate(d.requested_by)
        )
        assert set(self._duplicable) == {(i, b) for i, b, r in blocks if 0 < len(r) < limit}
