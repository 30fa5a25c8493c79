"""The torrent's side of one connected peer: its pieces, our requests to it, its rates.

A :class:`PeerLink` is the delegate a :class:`~bt.peer.protocol.PeerProtocol`
forwards events to. It keeps the request pipeline full (depth adapted to the
peer's rate), notices snubbing and lost requests, and hands received blocks to
its :class:`Swarm` (the torrent), which owns the picker and the completion chain.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from bt.bitfield import Bitfield
from bt.peer.connection import PeerBitfield
from bt.peer.messages import (
    BLOCK_SIZE,
    Cancel,
    Choke,
    Have,
    Interested,
    KeepAlive,
    NotInterested,
    Piece,
    Request,
    Unchoke,
)
from bt.rate import RateMeter

if TYPE_CHECKING:
    from bt.peer.upload import UploadQueue

if TYPE_CHECKING:
    from bt.peer.protocol import PeerProtocol
    from bt.policy.picker import PiecePicker

#: Requests kept in flight: enough to cover this many seconds at the peer's rate.
REQUEST_QUEUE_SECONDS = 2.0
MIN_PIPELINE = 16
MAX_PIPELINE = 500
#: Requests are topped up once this many (or a quarter of the pipeline) are free.
REQUEST_BATCH = 8
#: A peer that delivers nothing for this long while owing us blocks is snubbed.
SNUB_SECONDS = 30.0
#: We send a keep-alive after this much silence (BEP 3: peers drop after ~2 minutes) ...
KEEPALIVE_SECONDS = 90.0
#: ... and drop a peer that sent nothing at all, not even a keep-alive, for this long.
IDLE_SECONDS = 180.0


class Swarm(Protocol):
    """What a link needs from its torrent."""

    picker: PiecePicker

    def is_interesting(self, bitfield: Bitfield) -> bool: ...
    def block_arrived(self, link: PeerLink, msg: Piece) -> bool: ...
    def link_lost(self, link: PeerLink, reason: str) -> None: ...
    def request_received(self, link: PeerLink, msg: Request) -> None: ...
    def interest_changed(self, link: PeerLink) -> None: ...


class PeerLink:
    """One connected peer as the torrent sees it."""

    def __init__(
        self, swarm: Swarm, protocol: PeerProtocol, address: tuple[str, int], now: float
    ) -> None:
        self.swarm = swarm
        self.protocol = protocol
        self.address = address
        self.bitfield = Bitfield(swarm.picker.num_pieces)
        self.bitfield_counted = False
        self.download_meter = RateMeter(now)
        self.upload_meter = RateMeter(now)
        self.pipeline = MIN_PIPELINE
        self.last_block_at = now
        self.snubbed = False
        self.closed = False
        self.connected_at = now
        self.unchoked_since: float | None = None
        self.choked_at: float | None = None
        #: Serves this peer's requests; set by the torrent when the peer joins.
        self.upload_queue: UploadQueue | None = None

    def __repr__(self) -> str:
        return f"<PeerLink {self.address[0]}:{self.address[1]}>"

    @property
    def connection(self):
        return self.protocol.connection

    # -- events from the protocol -----------------------------------------

    def on_choke(self, msg: Choke) -> None:
        # Without the fast extension a choke discards every pending request.
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
        picker = self.swarm.picker
        if self.bitfield_counted:
            picker.add_peer_have(self, index)
        else:
            picker.add_peer_bitfield(self, self.bitfield)
            self.bitfield_counted = True
        if not self.connection.am_interested and not picker.has(index):
            if picker.piece_priority(index):
                self.protocol.send(Interested())
        self.fill_pipeline()

    def on_bitfield(self, msg: PeerBitfield) -> None:
        """The peer's pieces, first or again: a later BITFIELD (aria2 sends one after
        some HAVEs) replaces what we knew, as in libtorrent, and interest is decided
        again from the new view."""
        picker = self.swarm.picker
        if self.bitfield_counted:
            picker.replace_peer_bitfield(self, self.bitfield, msg.bitfield)
        else:
            picker.add_peer_bitfield(self, msg.bitfield)
        self.bitfield = msg.bitfield
        self.bitfield_counted = True
        if self.swarm.picker.is_complete and self.bitfield.is_complete():
            self.protocol.drop("both sides are seeds")
            return
        self.update_interest()

    def on_request(self, msg: Request) -> None:
        self.swarm.request_received(self, msg)

    def on_piece(self, msg: Piece) -> None:
        # Only blocks we asked for count: junk must not buy rate, pipeline or a slot.
        if self.swarm.block_arrived(self, msg):
            self.download_meter.add(len(msg.block))
            self.last_block_at = self.protocol.last_received
            self.snubbed = False
        self.fill_pipeline(batch=True)

    def on_cancel(self, msg: Cancel) -> None:
        if self.upload_queue is not None:
            self.upload_queue.cancel(msg.index, msg.begin, msg.length)

    # -- choking (decided by the torrent's choker) ----------------------------

    def unchoke(self, now: float) -> None:
        if self.connection.am_choking:
            self.protocol.send(Unchoke())
            self.unchoked_since = now

    def choke(self, now: float) -> None:
        if not self.connection.am_choking:
            self.protocol.send(Choke())
            self.unchoked_since = None
            self.choked_at = now
            if self.upload_queue is not None:
                self.upload_queue.clear()  # BEP 3: a choke discards the peer's requests

    def on_connection_lost(self, reason: str) -> None:
        self.closed = True
        self.swarm.link_lost(self, reason)

    # -- requests -------------------------------------------------------------

    def update_interest(self) -> None:
        """Tell the peer whether it has anything we still want."""
        interested = self.swarm.is_interesting(self.bitfield)
        if interested != self.connection.am_interested:
            self.protocol.send(Interested() if interested else NotInterested())
        if interested:
            self.fill_pipeline()

    def fill_pipeline(self, batch: bool = False) -> None:
        """Top up our requests to this peer to its pipeline depth, in one write.

        With ``batch`` (a block just arrived) it waits until a few slots are free,
        so requests go out several to a write rather than one write per block.
        """
        connection = self.connection
        if self.closed or connection.peer_choking or not connection.am_interested:
            return
        picker = self.swarm.picker
        outstanding = picker.outstanding_count(self)
        wanted = (1 if self.snubbed else self.pipeline) - outstanding
        if wanted <= 0:
            return
        if batch and outstanding and wanted < min(REQUEST_BATCH, self.pipeline // 4):
            return
        blocks = picker.pick(self, self.bitfield, wanted)
        if blocks:
            self.protocol.send_all([Request(b.index, b.begin, b.length) for b in blocks])
        elif not picker.outstanding_count(self) and not self.swarm.is_interesting(self.bitfield):
            self.protocol.send(NotInterested())

    def tick(self, now: float) -> None:
        """Once a second: rates, pipeline depth, snubbing, keep-alives, idle peers."""
        if now - self.protocol.last_received > IDLE_SECONDS:
            self.protocol.drop(f"nothing received for {IDLE_SECONDS:g} s")
            return
        if now - self.protocol.last_sent > KEEPALIVE_SECONDS:
            self.protocol.send(KeepAlive())
        rate = self.download_meter.tick(now)
        self.upload_meter.tick(now)
        self.pipeline = max(
            MIN_PIPELINE, min(MAX_PIPELINE, int(rate * REQUEST_QUEUE_SECONDS / BLOCK_SIZE))
        )
        picker = self.swarm.picker
        if (
            not self.snubbed
            and picker.outstanding_count(self)
            and now - self.last_block_at > SNUB_SECONDS
        ):
            self.snubbed = True
            self._abandon_all(cancel=True)
        self.fill_pipeline()

    def _abandon_all(self, cancel: bool = False) -> None:
        abandoned = self.swarm.picker.peer_requests_abandoned(self)
        if cancel and abandoned:
            self.protocol.send_all([Cancel(b.index, b.begin, b.length) for b in abandoned])
