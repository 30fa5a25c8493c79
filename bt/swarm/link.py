"""One connected peer as its swarm sees it: the one face of a peer.

A :class:`PeerLink` is the delegate a :class:`~bt.peer.protocol.PeerProtocol`
forwards events to, and the only thing outside ``bt.peer`` that touches the
protocol. It keeps the request pipeline full (depth adapted to the peer's
rate), notices snubbing and lost requests, serves the peer's requests through
its own :class:`~bt.swarm.upload.UploadQueue` (built from what the swarm
injects), and hands received blocks to its :class:`Swarm`, which owns the
picker and the blocks of unfinished pieces: the link decides when to ask and
how much, the swarm's picker which blocks; a link never touches the picker.

With a peer that negotiated the fast extension (BEP 6) a link also answers
every request it will not serve with a REJECT, serves the allowed-fast set it
gave the peer while choking it, keeps its own requests across the peer's choke
(each gets a PIECE or a REJECT) and may ask for the peer's allowed-fast pieces
while choked; the rules are in :mod:`bt.swarm.fast`. Plain BEP 3 peers see none of it.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from bt.bitfield import Bitfield
from bt.errors import StorageError
from bt.extensions.handshake import EXTENDED_HANDSHAKE_ID, ExtendedHandshake
from bt.geometry import Block
from bt.peer.connection import PeerBitfield
from bt.peer.hash_messages import HashMessage
from bt.peer.messages import (
    BLOCK_SIZE,
    AllowedFast,
    BitfieldMessage,
    Cancel,
    Choke,
    Extended,
    Have,
    Interested,
    KeepAlive,
    NotInterested,
    Piece,
    RejectRequest,
    Request,
    SuggestPiece,
    Unchoke,
)
from bt.peer.sender import Buffer
from bt.rate import RateMeter
from bt.swarm.fast import FastPeer, opening_message
from bt.swarm.upload import UploadQueue

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred

    from bt.geometry import PieceGeometry
    from bt.peer.protocol import PeerProtocol

#: Requests kept in flight: enough to cover this many seconds at the peer's rate.
REQUEST_QUEUE_SECONDS = 2.0
MIN_PIPELINE = 16
MAX_PIPELINE = 500
#: Requests are topped up once this many (or a quarter of the pipeline) are free.
REQUEST_BATCH = 32
#: A peer that delivers nothing for this long while owing us blocks is snubbed.
SNUB_SECONDS = 30.0
#: We send a keep-alive after this much silence (BEP 3: peers drop after ~2 minutes) ...
KEEPALIVE_SECONDS = 90.0
#: ... and drop a peer that sent nothing at all, not even a keep-alive, for this long.
IDLE_SECONDS = 180.0


class Swarm(Protocol):
    """What a link needs from its swarm."""

    geometry: PieceGeometry

    def is_interesting(self, bitfield: Bitfield) -> bool: ...
    def peer_has(self, link: PeerLink, index: int) -> bool: ...
    def peer_bitfield(self, link: PeerLink, bitfield: Bitfield) -> None: ...
    def both_seeds(self, link: PeerLink) -> bool: ...
    def has(self, index: int) -> bool: ...
    def outstanding(self, link: PeerLink) -> int: ...
    def pick(self, link: PeerLink, count: int, among: Bitfield | None = None) -> list[Block]: ...
    def abandon(self, link: PeerLink) -> list[Block]: ...
    def rejected(self, link: PeerLink, block: Block) -> bool: ...
    def blocks_arrived(self, link: PeerLink, msgs: list[Piece]) -> tuple[int, int]: ...
    def link_lost(self, link: PeerLink, reason: str) -> None: ...
    def interest_changed(self, link: PeerLink) -> None: ...
    def extended(self, link: PeerLink, message_id: int, payload: bytes) -> None: ...
    def hash_message(self, link: PeerLink, msg: HashMessage) -> None: ...
    def greeting(self, link: PeerLink) -> ExtendedHandshake: ...


@dataclass(frozen=True)
class Serving:
    """What a link serves its peer's requests with, injected by the swarm."""

    #: ``read(index, begin, length, ahead)``: ``ahead``, the bytes asked for next (read-ahead).
    read: Callable[[int, int, int, int], Deferred[bytes]]
    #: The block at once if it is in memory (a read cache hit), else None.
    cached: Callable[[int, int, int], bytes | memoryview | None]
    #: The upload rate limit: 0.0 (and ``amount`` charged) or seconds to wait.
    throttle: Callable[[int], float]
    call_later: Callable[..., Any]
    #: Bytes sent, for the torrent's upload total.
    sent: Callable[[int], None]
    #: Pieces we announced whose data is gone since (a REJECT cannot take them back).
    lost: Callable[[int], bool]
    #: A block of ``index`` could not be read (after this peer was dropped).
    read_failed: Callable[[int, StorageError], None]
    #: A peer's upload queue got requests to serve (True) or ran out (False).
    busy: Callable[[bool], None] = lambda busy: None
    #: The block's data is being read now (read-ahead): it comes with that read.
    loading: Callable[[int, int, int], bool] = lambda index, begin, length: False
    #: ``read_now(index, begin, length, ahead)``: the block from the page cache now, or None.
    read_now: Callable[[int, int, int, int], Buffer | None] | None = None


class PeerLink:
    """One connected peer as its swarm sees it."""

    def __init__(
        self,
        swarm: Swarm,
        protocol: PeerProtocol,
        address: tuple[str, int],
        now: float,
        serving: Serving,
    ) -> None:
        self.swarm = swarm
        self.protocol = protocol
        self.address = address
        self.bitfield = Bitfield(swarm.geometry.num_pieces)
        self.bitfield_counted = False
        self.download_meter = RateMeter(now)
        self.upload_meter = RateMeter(now)
        self.pipeline = MIN_PIPELINE
        #: Until the first rate tick the pipeline grows by one request per block (as TCP's
        #: slow start): a short download's first second need not run 16 requests deep.
        self.slow_start = True
        self.last_block_at = now
        self.snubbed = False
        self.closed = False
        self.connected_at = now
        self.unchoked_since: float | None = None
        self.choked_at: float | None = None
        self._serving = serving
        #: Serves this peer's requests (registered as the transport's producer by start).
        self.upload_queue = UploadQueue(
            serving.read,
            protocol.send_block,
            send_blocks=protocol.send_blocks,
            throttle=serving.throttle,
            call_later=serving.call_later,
            on_sent=self._sent,
            cached=serving.cached,
            on_read_failed=self._read_failed,
            on_busy=serving.busy,
            loading=serving.loading,
            read_now=serving.read_now,
        )
        #: Per-peer state of each peer extension, by the extension's name.
        self.extensions: dict[str, object] = {}
        #: The peer's extended handshake (BEP 10), once it sent one.
        self.peer_extensions: ExtendedHandshake | None = None
        #: The peer said it only uploads (BEP 21): a seed, for trading purposes.
        self.upload_only = False
        #: The fast extension's state with this peer, if both handshakes set its bit.
        self.fast = FastPeer() if protocol.connection.fast else None

    def __repr__(self) -> str:
        return f"<PeerLink {self.address[0]}:{self.address[1]}>"

    def start(self, have: Bitfield, read_throttle: Callable[[int], float] | None) -> None:
        """The peer joined: serve it under flow control and tell it what we have."""
        self.protocol.transport.registerProducer(self.upload_queue, True)
        self.protocol.after_events = self.upload_queue.serve
        self.protocol.read_throttle = read_throttle
        if self.fast is not None:
            self.protocol.send(opening_message(have))
        elif not have.is_empty():
            self.protocol.send(BitfieldMessage(have.to_bytes()))

    # -- the flags of BEP 3 (kept by the protocol's connection) -----------------

    @property
    def am_choking(self) -> bool:
        return self.protocol.connection.am_choking

    @property
    def am_interested(self) -> bool:
        return self.protocol.connection.am_interested

    @property
    def peer_interested(self) -> bool:
        return self.protocol.connection.peer_interested

    # -- what the swarm tells the peer ------------------------------------------

    def drop(self, why: str) -> None:
        """Close this peer (it leaves the swarm when its connection is lost)."""
        self.protocol.drop(why)

    def have_many(self, pieces: Sequence[int]) -> None:
        """We have ``pieces`` now: tell the peer (one write), or stop being interested."""
        bitfield = self.bitfield
        news = [Have(index) for index in pieces if index not in bitfield]
        if news:
            self.protocol.send_all(news)
        if len(news) < len(pieces) and self.am_interested:
            if not self.swarm.is_interesting(bitfield):
                self.protocol.send(NotInterested())

    @property
    def outgoing(self) -> bool:
        """We dialled the peer: its address is where it listens for connections."""
        return self.protocol.candidate is not None

    @property
    def speaks_extensions(self) -> bool:
        """Both handshakes set the BEP 10 bit: extended messages may flow."""
        return self.protocol.connection.extended

    def greet(self, handshake: ExtendedHandshake) -> None:
        """Send our extended handshake, if the peer speaks BEP 10."""
        if self.speaks_extensions:
            self.protocol.send(Extended(EXTENDED_HANDSHAKE_ID, handshake.encode()))

    def greet_again(self) -> None:
        """Send our whole extended handshake again: a field of it changed."""
        self.greet(self.swarm.greeting(self))

    @property
    def speaks_v2(self) -> bool:
        """The connection negotiated BEP 52: hash messages may flow."""
        return self.protocol.connection.v2

    def send_hash_message(self, msg: HashMessage) -> None:
        """A hash request, hashes or hash reject (BEP 52) to the peer."""
        if not self.closed:
            self.protocol.send(msg)

    def send_extended(self, name: str, payload: bytes) -> bool:
        """Send extension ``name``'s message under the peer's id for it; False if it has none."""
        ident = self.peer_extensions.messages.get(name) if self.peer_extensions else None
        if not ident or self.closed:
            return False
        self.protocol.send(Extended(ident, payload))
        return True

    def cancel(self, block: Block) -> None:
        """Another peer sent ``block`` first (endgame): this one need not."""
        if not self.closed:
            self.protocol.send(Cancel(block.index, block.begin, block.length))

    def set_read_throttle(self, throttle: Callable[[int], float] | None) -> None:
        self.protocol.read_throttle = throttle

    def asks_for(self, pieces: Container[int]) -> bool:
        """Has the peer a request for one of ``pieces`` queued with us?"""
        return self.upload_queue.asks_for(pieces)

    # -- IPushProducer for the disk queue's back-pressure -----------------------

    def pauseProducing(self) -> None:
        self.protocol.pauseProducing()

    def resumeProducing(self) -> None:
        self.protocol.resumeProducing()

    # -- events from the protocol -----------------------------------------

    def on_choke(self, msg: Choke) -> None:
        # Without the fast extension a choke discards every pending request; a fast
        # peer answers each with a PIECE or a REJECT (the snub timer catches one
        # that does neither).
        if self.fast is None:
            self._abandon_all()

    def on_unchoke(self, msg: Unchoke) -> None:
        self.last_block_at = self.protocol.last_received  # restart the snub clock
        self.fill_pipeline()

    def on_interested(self, msg: Interested) -> None:
        self.swarm.interest_changed(self)

    def on_not_interested(self, msg: NotInterested) -> None:
        self.swarm.interest_changed(self)

    def on_have(self, msg: Have) -> None:
        index = msg.index
        if index in self.bitfield:
            return
        self.bitfield.add(index)
        if self.swarm.peer_has(self, index) and not self.am_interested:
            self.protocol.send(Interested())
        self.fill_pipeline()

    def on_bitfield(self, msg: PeerBitfield) -> None:
        """The peer's pieces, first or again: a later BITFIELD (aria2 sends one after
        some HAVEs) replaces what we knew, as in libtorrent, and interest is decided
        again from the new view."""
        self.swarm.peer_bitfield(self, msg.bitfield)
        if self.swarm.both_seeds(self):
            self.drop("both sides are seeds")
            return
        if self.fast is not None:
            self._offer_allowed_fast()
        self.update_interest()

    def on_request(self, msg: Request) -> None:
        """Queue a block to serve; ranges were checked by the connection already.

        Requests of one read are served together, after the last (``after_events``)."""
        serve_now = not self.protocol.dispatching
        fast = self.fast
        if fast is not None:
            index = msg.index
            if self.swarm.has(index) and (not self.am_choking or fast.serves_choked(index)):
                self.upload_queue.add(index, msg.begin, msg.length, serve=serve_now)
            else:
                fast.refuse()
                self.protocol.send(RejectRequest(index, msg.begin, msg.length))
            return
        if self.am_choking:
            return  # BEP 3: requests from a choked peer are dropped
        if not self.swarm.has(msg.index):
            if self._serving.lost(msg.index):
                # It had our word that we have it; BEP 3 cannot take that back (REJECT
                # needs the fast extension): close rather than leave it waiting forever.
                self.drop(f"asked for piece {msg.index}, whose data we lost")
            return  # else we never announced it; a confused peer, not a harmful one
        self.upload_queue.add(msg.index, msg.begin, msg.length, serve=serve_now)

    def on_pieces(self, msgs: list[Piece]) -> None:
        """The PIECEs of one read: stored, then one rate update and one top-up.

        Only blocks we asked for count: junk must not buy rate, pipeline or a slot."""
        count, received = self.swarm.blocks_arrived(self, msgs)
        if count:
            self.download_meter.add(received)
            self.last_block_at = self.protocol.last_received
            self.snubbed = False
            if self.slow_start:
                self.pipeline = min(MAX_PIPELINE, self.pipeline + count)
        self.fill_pipeline(batch=True)

    def on_cancel(self, msg: Cancel) -> None:
        pending = self.upload_queue.cancel(msg.index, msg.begin, msg.length)
        if pending and self.fast is not None:
            # BEP 6: a cancelled request still gets its answer, a REJECT (as libtorrent).
            self.protocol.send(RejectRequest(msg.index, msg.begin, msg.length))

    def on_reject_request(self, msg: RejectRequest) -> None:
        """The peer will not send a block: it goes back to the swarm's picker (a REJECT
        of a block we never asked this peer for changes nothing). Not asked again at
        once: another peer's next top-up, or this one's tick, takes it."""
        self.swarm.rejected(self, Block(msg.index, msg.begin, msg.length))

    def on_allowed_fast(self, msg: AllowedFast) -> None:
        """We may ask for ``msg.index`` even while the peer chokes us."""
        if self.fast is not None and self.fast.peer_allows(msg.index):
            self.fill_pipeline()

    def on_suggest_piece(self, msg: SuggestPiece) -> None:
        """A hint only: kept (bounded), never a reason to pick against rarity."""
        if self.fast is not None:
            self.fast.suggest(msg.index)

    def on_extended(self, msg: Extended) -> None:
        self.swarm.extended(self, msg.extended_id, msg.payload)

    def on_hash_message(self, msg: HashMessage) -> None:
        """BEP 52: served or matched with our requests by the swarm's hash exchange."""
        self.swarm.hash_message(self, msg)

    on_hash_request = on_hashes = on_hash_reject = on_hash_message

    # -- choking (decided by the swarm's choker) ----------------------------

    def unchoke(self, now: float) -> None:
        if self.am_choking:
            self.protocol.send(Unchoke())
            self.unchoked_since = now
            if self.fast is not None:
                self.fast.refused = 0

    def choke(self, now: float) -> None:
        if not self.am_choking:
            self.protocol.send(Choke())
            self.unchoked_since = None
            self.choked_at = now
            if self.fast is None:
                self.upload_queue.clear()  # BEP 3: a choke discards the peer's requests
                return
            # BEP 6: each is rejected instead, but for the pieces of its allowed-fast set.
            fast = self.fast
            self._reject(self.upload_queue.withdraw(lambda i: not fast.serves_choked(i)))

    def data_lost(self, pieces: Container[int]) -> None:
        """We announced ``pieces`` and lost their data: a fast peer hears a REJECT for
        each request of them; a plain peer asking for one is closed (BEP 3 has no
        way to take a HAVE back)."""
        if self.fast is not None:
            self._reject(self.upload_queue.withdraw(pieces.__contains__))
        elif self.asks_for(pieces):
            self.drop("asked for pieces whose data we lost")

    def _reject(self, blocks: list[Block]) -> None:
        if blocks:
            self.protocol.send_all([RejectRequest(*block) for block in blocks])

    def on_connection_lost(self, reason: str) -> None:
        self.closed = True
        # Our own drop() unregisters the queue before closing, so Twisted does not stop
        # it: stop it here, or it keeps reading for a dead socket and counts as busy.
        self.upload_queue.stopProducing()
        self.swarm.link_lost(self, reason)

    # -- serving ----------------------------------------------------------------

    def _sent(self, amount: int) -> None:
        self.upload_meter.add(amount)
        self._serving.sent(amount)

    def _read_failed(self, block: Block, error: StorageError) -> None:
        """Data gone or a failing disk: this peer is dropped, the owner decides the rest."""
        self.drop(f"cannot serve piece {block.index}: {error}")
        self._serving.read_failed(block.index, error)

    # -- requests -------------------------------------------------------------

    def update_interest(self) -> None:
        """Tell the peer whether it has anything we still want."""
        interested = self.swarm.is_interesting(self.bitfield)
        if interested != self.am_interested:
            self.protocol.send(Interested() if interested else NotInterested())
        if interested:
            self.fill_pipeline()

    def fill_pipeline(self, batch: bool = False) -> None:
        """Top up our requests to this peer to its pipeline depth, in one write.

        With ``batch`` (a block just arrived) it waits until a few slots are free,
        so requests go out several to a write rather than one write per block.
        """
        connection = self.protocol.connection
        if self.closed or not connection.am_interested:
            return
        among = None  # None: any of the peer's pieces
        if connection.peer_choking:
            among = self.fast.requestable_while_choked(self.bitfield) if self.fast else None
            if among is None:
                return
        outstanding = self.swarm.outstanding(self)
        wanted = (1 if self.snubbed else self.pipeline) - outstanding
        if wanted <= 0:
            return
        if batch and outstanding and wanted < min(REQUEST_BATCH, self.pipeline // 4):
            return
        blocks = self.swarm.pick(self, wanted, among)
        if blocks:
            self.protocol.send_requests(blocks)
        elif not self.swarm.outstanding(self) and not self.swarm.is_interesting(self.bitfield):
            self.protocol.send(NotInterested())

    def tick(self, now: float) -> None:
        """Once a second: rates, pipeline depth, snubbing, keep-alives, idle peers."""
        if now - self.protocol.last_received > IDLE_SECONDS:
            self.drop(f"nothing received for {IDLE_SECONDS:g} s")
            return
        if now - self.protocol.last_sent > KEEPALIVE_SECONDS:
            self.protocol.send(KeepAlive())
        rate = self.download_meter.tick(now)
        self.upload_meter.tick(now)
        self.slow_start = False
        self.pipeline = max(
            MIN_PIPELINE, min(MAX_PIPELINE, int(rate * REQUEST_QUEUE_SECONDS / BLOCK_SIZE))
        )
        if (
            not self.snubbed
            and self.swarm.outstanding(self)
            and now - self.last_block_at > SNUB_SECONDS
        ):
            self.snubbed = True
            self._abandon_all(cancel=True)
        self.fill_pipeline()

    def _offer_allowed_fast(self) -> None:
        """Send the peer our allowed-fast set, if it has few pieces (BEP 6)."""
        info_hash = self.protocol.connection.info_hash
        if self.fast is None or info_hash is None:
            return
        offered = self.fast.offer(self.address[0], info_hash, self.bitfield)
        if offered:
            self.protocol.send_all([AllowedFast(index) for index in offered])

    def set_upload_only(self, upload_only: bool) -> None:
        """The peer says (BEP 21) whether it only uploads: if we do too, neither side
        has anything to trade."""
        self.upload_only = upload_only
        if upload_only and self.swarm.both_seeds(self):
            self.drop("both sides are seeds")

    def _abandon_all(self, cancel: bool = False) -> None:
        abandoned = self.swarm.abandon(self)
        if cancel and abandoned:
            self.protocol.send_all([Cancel(b.index, b.begin, b.length) for b in abandoned])
