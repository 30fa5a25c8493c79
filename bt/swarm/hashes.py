"""BEP 52 hash messages with the peers of one torrent (or one magnet).

:class:`HashAsker` keeps our hash requests in flight, per peer, until a HASHES
or a HASH REJECT answers them, the peer leaves or :data:`REQUEST_TIMEOUT`
passes (then the answer is None). :class:`HashServer` answers a peer's
requests from the torrent's piece layers (no I/O: the trees are built from
the .torrent's layers). :class:`HashExchange` is a swarm's side of both: it
serves each peer within :data:`SERVED_PER_SECOND` requests and
:data:`HASHES_PER_SECOND` hashes a second (more are rejected, so no peer buys
unbounded hashing or sending), and gives the verifier
:meth:`HashExchange.block_hashes`: the block hashes of a piece that failed,
proved against the piece's hash, so only its bad blocks are fetched again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Final, Protocol

from twisted.internet.defer import Deferred, succeed

from bt.logs import Logger
from bt.merkle import MerkleTree, leaf_count, leaf_hashes, split_hashes, verify_proof
from bt.metainfo import Metainfo
from bt.peer.hash_messages import MAX_HASH_COUNT, Hashes, HashMessage, HashReject, HashRequest
from bt.swarm.blockproofs import BlockHashServer

__all__ = [
    "BLOCK_READS_PER_SECOND",
    "HASHES_PER_SECOND",
    "REQUEST_TIMEOUT",
    "SERVED_PER_SECOND",
    "HashAsker",
    "HashExchange",
    "HashPeer",
    "HashServer",
    "hash_exchange_for",
]

#: Seconds a peer has to answer one hash request (then it counts as a reject).
REQUEST_TIMEOUT: Final = 20.0
#: Hash requests served per peer and second; more are rejected.
SERVED_PER_SECOND: Final = 16
#: ... and once this many hashes went to a peer in a second (256 KiB: a 512-piece
#: chunk takes 16 KiB), the rest of that second's requests are rejected too.
HASHES_PER_SECOND: Final = 8192
#: Block hashes served from the data cost a whole piece read and hashed for 32
#: bytes a block (a peer wants them after a piece failed, rarely): one a second
#: per peer, and this many a second for the whole torrent; more are rejected.
BLOCK_READS_PER_SECOND: Final = 4


class HashPeer(Protocol):
    """A peer hash messages go to: a swarm's ``PeerLink``, a magnet's ``MetadataPeer``."""

    address: tuple[str, int]
    closed: bool

    def send_hash_message(self, msg: HashMessage) -> None: ...
    def drop(self, why: str) -> None: ...


class HashAsker:
    """Our hash requests in flight; each Deferred fires with the HASHES, or None."""

    def __init__(self, clock: Callable[[], float], timeout: float = REQUEST_TIMEOUT) -> None:
        self.clock = clock
        self.timeout = timeout
        #: Per peer: each request in flight, when it was sent and who waits for it.
        self._asks: dict[Any, dict[HashRequest, tuple[float, list[Deferred[Hashes | None]]]]] = {}

    def in_flight(self, peer: Any) -> int:
        return len(self._asks.get(peer, ()))

    def ask(self, peer: HashPeer, request: HashRequest) -> Deferred[Hashes | None]:
        """Send ``request`` to ``peer``; the same request again shares the first answer."""
        answer: Deferred[Hashes | None] = Deferred()
        asks = self._asks.setdefault(peer, {})
        if request in asks:
            asks[request][1].append(answer)
            return answer
        asks[request] = (self.clock(), [answer])
        peer.send_hash_message(request)
        return answer

    def received(self, peer: Any, msg: Hashes | HashReject) -> bool:
        """An answer from ``peer``; False if we never asked it that (it is ignored)."""
        asks = self._asks.get(peer)
        entry = asks.pop(msg.request, None) if asks else None
        if entry is None:
            return False
        _answer(entry[1], msg if isinstance(msg, Hashes) else None)
        return True

    def lost(self, peer: Any) -> None:
        for _, waiting in self._asks.pop(peer, {}).values():
            _answer(waiting, None)

    def tick(self, now: float) -> None:
        for asks in list(self._asks.values()):
            late = [r for r, (since, _) in asks.items() if now - since > self.timeout]
            for request in late:
                _answer(asks.pop(request)[1], None)


def _answer(waiting: list[Deferred[Hashes | None]], answer: Hashes | None) -> None:
    for each in waiting:  # every asker sees the answer, whatever the others' callbacks return
        each.callback(answer)


class HashServer:
    """Answers hash requests from a torrent's piece layers (the trees are built once)."""

    def __init__(self, metainfo: Metainfo) -> None:
        self.metainfo = metainfo
        #: Trees built so far, only of this torrent's files (a peer naming random
        #: roots must not grow this).
        self._trees: dict[bytes, MerkleTree] = {}
        self._lengths: dict[bytes, int] | None = None

    def tree(self, pieces_root: bytes) -> MerkleTree | None:
        """The known part of a file's tree (its piece layer and up), or None."""
        tree = self._trees.get(pieces_root)
        if tree is None:
            tree = self._build(pieces_root)
            if tree is not None:
                self._trees[pieces_root] = tree
        return tree

    def _build(self, pieces_root: bytes) -> MerkleTree | None:
        if self._lengths is None:  # once: pieces root -> file length
            self._lengths = {}
            for entry in self.metainfo.files:
                root = getattr(entry, "pieces_root", None)
                if root is not None:
                    self._lengths.setdefault(root, entry.length)
        layer = self.metainfo.piece_layers.get(pieces_root)
        length = self._lengths.get(pieces_root)
        if layer is None or length is None:
            return None  # no such file, or one piece or less: only its root is known
        return MerkleTree.from_piece_layer(split_hashes(layer), length, self.metainfo.piece_length)

    def answer(self, request: HashRequest) -> Hashes | HashReject:
        """The HASHES for ``request``, or a reject for anything we cannot prove."""
        tree = self.tree(request.pieces_root)
        length = request.length
        if tree is not None and 0 < length <= MAX_HASH_COUNT and not length & (length - 1):
            try:
                hashes = tree.proof(request.base_layer, request.index, length, request.proof_layers)
            except ValueError:
                pass  # outside the tree, or under the piece layer (no block hashes kept)
            else:
                return request.answer(hashes)
        return request.reject()


class HashExchange:
    """One swarm's hash messages: serving its peers and asking them (see module doc)."""

    log = Logger()

    def __init__(
        self,
        metainfo: Metainfo,
        peers: Callable[[], Iterable[Any]],
        clock: Callable[[], float],
        *,
        served_per_second: int = SERVED_PER_SECOND,
        blocks: Callable[[HashServer], Any] | None = None,
    ) -> None:
        """``peers()``: the swarm's links now (each with ``speaks_v2`` and ``bitfield``);
        ``blocks(server)``: makes what serves a piece's block hashes from the data
        (``bt.swarm.blockproofs.BlockHashServer``), if the torrent has data to read."""
        self.metainfo = metainfo
        self.peers = peers
        self.server = HashServer(metainfo)
        self.blocks = blocks(self.server) if blocks is not None else None
        self.asker = HashAsker(clock)
        self.served_per_second = served_per_second
        #: Per peer this second: requests answered, hashes sent.
        self._served: dict[Any, tuple[int, int]] = {}
        #: Peers served block hashes from the data this second (see BLOCK_READS_PER_SECOND).
        self._read_for: set[Any] = set()

    # -- the swarm's hooks ------------------------------------------------------

    def received(self, link: HashPeer, msg: HashMessage) -> None:
        """A hash message from ``link`` (only v2 connections parse them)."""
        if not isinstance(msg, HashRequest):
            self.asker.received(link, msg)
            return
        requests, hashes = self._served.get(link, (0, 0))
        if requests >= self.served_per_second or hashes >= HASHES_PER_SECOND:
            link.send_hash_message(msg.reject())
            return
        answer = self.server.answer(msg)
        later = (
            self.blocks.answer(link, msg)
            if isinstance(answer, HashReject) and self.blocks and self._may_read(link)
            else None
        )
        if later is not None:  # a piece's block hashes, hashed from the data
            self._read_for.add(link)
            self._served[link] = (requests + 1, hashes + msg.length)
            later.addCallback(link.send_hash_message)
            later.addErrback(
                lambda failure: self.log.failure(
                    "answering {peer}'s block-hash request", failure, peer=link.address
                )
            )
            return
        sent = len(answer.hashes) if isinstance(answer, Hashes) else 0
        self._served[link] = (requests + 1, hashes + sent)
        link.send_hash_message(answer)

    def _may_read(self, link: HashPeer) -> bool:
        return link not in self._read_for and len(self._read_for) < BLOCK_READS_PER_SECOND

    def lost(self, link: HashPeer) -> None:
        self._served.pop(link, None)
        self.asker.lost(link)

    def tick(self, now: float) -> None:
        self._served.clear()
        self._read_for.clear()
        self.asker.tick(now)

    # -- for the verifier (Swarm.block_hashes, bt.swarm.badblocks) ------------------

    def block_hashes(self, index: int) -> Deferred[list[bytes] | None]:
        """The SHA-256 of each real block of piece ``index``, from a peer, proved
        against the piece's hash; None if no peer could tell us (then the whole
        piece is fetched again). A peer whose proof fails is dropped."""
        piece = self.metainfo.v2_piece(index)
        if piece is None:
            return succeed(None)
        real = leaf_count(piece.data_length)
        if piece.leaves == 1:
            return succeed([piece.expected][:real])  # one leaf: the piece's hash is its hash
        root = self.metainfo.files[piece.file_index].pieces_root
        height = piece.leaves.bit_length() - 1
        # proof layers up to the piece's own node: no uncles, the piece hash proves them
        request = HashRequest(root, 0, piece.first_leaf, piece.leaves, height - 1)
        candidates = sorted(
            (
                link
                for link in self.peers()
                if getattr(link, "speaks_v2", False) and not link.closed and index in link.bitfield
            ),
            key=self.asker.in_flight,
        )
        result: Deferred[list[bytes] | None] = Deferred()

        def attempt(_: object = None) -> None:
            if result.called:
                return  # the caller gave up (a timeout cancelled it)
            while candidates and candidates[0].closed:
                candidates.pop(0)  # gone meanwhile: an ask would wait out its timeout
            if not candidates:
                result.callback(None)
                return
            link = candidates.pop(0)
            self.asker.ask(link, request).addCallback(answered, link)

        def answered(msg: Hashes | None, link: HashPeer) -> None:
            if result.called:
                return
            if msg is None:
                attempt()
                return
            if not verify_proof(
                msg.hashes, 0, piece.first_leaf, piece.leaves, height - 1, piece.expected
            ):
                link.drop(f"sent block hashes of piece {index} that do not prove its hash")
                attempt()
                return
            result.callback(list(msg.nodes[:real]))

        attempt()
        return result


def hash_exchange_for(torrent: Any) -> HashExchange:
    """A torrent's hash exchange: its links, its clock, block hashes from its data
    (read, then hashed, in its disk threads)."""
    swarm, disk = torrent.swarm, torrent.disk

    def leaves_of(index: int, length: int) -> Deferred[list[bytes]]:
        read = disk.read(index, 0, length)
        return read.addCallback(lambda data: disk.call(leaf_hashes, data))

    return HashExchange(
        torrent.metainfo,
        lambda: list(swarm.links),
        swarm.reactor.seconds,
        blocks=lambda server: BlockHashServer(torrent.metainfo, server.tree, leaves_of, swarm.has),
    )
