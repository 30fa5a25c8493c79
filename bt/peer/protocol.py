"""Twisted glue for one peer: bytes in and out, the handshake deadline, flow control.

``PeerProtocol`` wraps a sans-I/O :class:`~bt.peer.connection.PeerConnection`.
It knows nothing of pieces or picking: once the handshake names a torrent,
the protocol asks its factory for a *delegate* (the torrent's side of this
peer) and forwards every event to it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from typing import Protocol as TypingProtocol

from twisted.internet import interfaces
from twisted.internet.error import ConnectionDone
from twisted.internet.protocol import ClientFactory, Protocol, connectionDone
from twisted.python.failure import Failure
from zope.interface import implementer

from bt.errors import RemoteProtocolError
from bt.logs import Logger
from bt.peer.connection import Geometry, HandshakeReceived, PeerBitfield, PeerConnection
from bt.peer.hash_messages import Hashes, HashReject, HashRequest
from bt.peer.messages import (
    AllowedFast,
    Cancel,
    Choke,
    Extended,
    Handshake,
    Have,
    Interested,
    KeepAlive,
    Message,
    NotInterested,
    Piece,
    Port,
    RejectRequest,
    Request,
    Reserved,
    SuggestPiece,
    Unchoke,
    Unknown,
    encode_handshake,
    encode_piece_header,
    encode_requests,
)
from bt.peer.sender import Buffer, DirectWriter, as_bytes, for_transport, piece_parts

__all__ = [
    "HANDSHAKE_TIMEOUT",
    "SELF_CONNECTION",
    "PeerDelegate",
    "PeerProtocol",
    "TorrentPeerFactory",
]

#: Seconds a peer we dialled has to complete its handshake before we hang up.
HANDSHAKE_TIMEOUT = 20.0
#: The reserved bits of our handshake: the extension protocol (BEP 10) and the
#: fast extension (BEP 6).
OUR_RESERVED = Reserved.of(Reserved.EXTENSION_PROTOCOL, Reserved.FAST)
#: ... and the DHT bit (BEP 5) when the session runs a DHT node.
DHT_RESERVED = Reserved.of(Reserved.EXTENSION_PROTOCOL, Reserved.FAST, Reserved.DHT)
#: The close reason when a tracker handed us our own address.
SELF_CONNECTION = "connected to ourselves"


class PeerDelegate(TypingProtocol):
    """The torrent's side of one peer: what the events mean."""

    def on_choke(self, msg: Choke) -> None: ...
    def on_unchoke(self, msg: Unchoke) -> None: ...
    def on_interested(self, msg: Interested) -> None: ...
    def on_not_interested(self, msg: NotInterested) -> None: ...
    def on_have(self, msg: Have) -> None: ...
    def on_bitfield(self, msg: PeerBitfield) -> None: ...
    def on_request(self, msg: Request) -> None: ...
    def on_pieces(self, msgs: list[Piece]) -> None: ...  # the PIECEs of one read, in order
    def on_cancel(self, msg: Cancel) -> None: ...
    def on_extended(self, msg: Extended) -> None: ...
    def on_reject_request(self, msg: RejectRequest) -> None: ...
    def on_allowed_fast(self, msg: AllowedFast) -> None: ...
    def on_suggest_piece(self, msg: SuggestPiece) -> None: ...
    def on_hash_request(self, msg: HashRequest) -> None: ...  # BEP 52 ...
    def on_hashes(self, msg: Hashes) -> None: ...
    def on_hash_reject(self, msg: HashReject) -> None: ...  # ... BEP 52
    def on_connection_lost(self, reason: str) -> None: ...


class PeerAttacher(TypingProtocol):
    """Whoever decides which torrent a completed handshake belongs to."""

    def attach(self, protocol: PeerProtocol, handshake: HandshakeReceived) -> PeerDelegate: ...


_IGNORED = (KeepAlive, Port, Unknown)


@dataclass(frozen=True)
class DHTPort:
    """BEP 5's PORT message: our DHT node's UDP port, and what to do with a peer's."""

    #: Our node's port (None while it is not listening): sent to peers with the DHT bit.
    port: Callable[[], int | None]
    #: Called with (peer host, its DHT port) when a peer sends PORT: ping that node.
    advertised: Callable[[tuple[str, int]], None]


def reserved_bits(dht: DHTPort | None) -> bytes:
    return OUR_RESERVED if dht is None else DHT_RESERVED


@implementer(interfaces.IPushProducer)
class PeerProtocol(Protocol):
    """One TCP connection to a peer."""

    log = Logger()

    def __init__(
        self,
        connection: PeerConnection,
        attacher: PeerAttacher,
        clock: interfaces.IReactorTime,
        *,
        handshake_timeout: float = HANDSHAKE_TIMEOUT,
        candidate: tuple[str, int] | None = None,
    ) -> None:
        """``candidate``: the address we dialled (None for an incoming peer), which
        names the peer rather than the socket's address."""
        self.connection = connection
        self.candidate = candidate
        self.attacher = attacher
        self.clock = clock
        self.handshake_timeout = handshake_timeout
        self.delegate: PeerDelegate | None = None
        self.peer_id: bytes | None = None
        self.address: str = "?"
        self.last_received = 0.0
        self.last_sent = 0.0
        self.close_reason: str | None = None
        #: Why the connection ended, ours or the transport's; set when it is lost.
        self.lost_reason: str | None = None
        self._dispatch: dict[type, Callable[[Any], None]] = {}
        self._handshake_call: Any = None
        self._closing = False
        #: Why reading is paused ("disk", "rate"); reading resumes when none is left.
        self._pauses: set[str] = set()
        #: Download rate limit: charged with each read, returns seconds of debt to wait.
        self.read_throttle: Callable[[int], float] | None = None
        self._throttle_call: Any = None
        #: Called once when the connection is gone (releases a connection slot).
        self.on_closed: Callable[[], None] | None = None
        #: A failed handshake is logged at debug: strangers dialling us (scanners,
        #: a half-open flood) would otherwise fill the log.
        self.quiet_handshake = False
        #: The session's DHT (BEP 5 PORT), set by the factory; None: no DHT.
        self.dht: DHTPort | None = None
        #: True while the events of one read are dispatched; ``after_events`` runs after
        #: them (the upload queue serves all the requests of one read in one batch).
        self.dispatching = False
        self.after_events: Callable[[], None] | None = None
        #: Writes straight to a plain TCP socket while its transport is idle (bt.peer.sender).
        self.writer: DirectWriter | None = None

    # -- Twisted protocol ------------------------------------------------

    def connectionMade(self) -> None:
        peer = self.transport.getPeer()
        self.address = f"{getattr(peer, 'host', '?')}:{getattr(peer, 'port', '?')}"
        if interfaces.ITCPTransport.providedBy(self.transport):
            self.transport.setTcpNoDelay(True)
            self.writer = for_transport(self.transport)
        self.last_received = self.last_sent = self.clock.seconds()
        self._handshake_call = self.clock.callLater(self.handshake_timeout, self._handshake_late)
        if self.connection.info_hash is not None and self.connection.geometry is not None:
            self.transport.write(self.connection.handshake_bytes())

    def dataReceived(self, data: bytes) -> None:
        if self._closing:
            return
        self.last_received = self.clock.seconds()
        if self.read_throttle is not None and data:
            self._throttle(self.read_throttle(len(data)))
        try:
            events = self.connection.receive_data(data)
            self.dispatching = True
            dispatch = self._dispatch
            # Consecutive PIECEs go to the delegate together: one call, one pipeline
            # top-up and one rate update per read rather than per block.
            pieces: list[Piece] = []
            for event in events:
                cls = type(event)
                if cls is Piece:
                    pieces.append(event)
                    continue
                if pieces:
                    self._deliver_pieces(pieces)
                    if self._closing:
                        return
                    pieces = []
                handler = dispatch.get(cls)
                if handler is not None:
                    handler(event)
                elif isinstance(event, HandshakeReceived):
                    paused = self.connection.geometry is None
                    self._handshake_received(event)
                    if self._closing:
                        return
                    if paused:
                        # An incoming handshake paused parsing until the torrent was bound.
                        self.dataReceived(b"")
                        return
                    dispatch = self._dispatch
                elif not isinstance(event, _IGNORED):
                    raise RemoteProtocolError(f"unexpected event {event!r}")
                if self._closing:
                    return
            if pieces:
                self._deliver_pieces(pieces)
        except RemoteProtocolError as exc:
            self.drop(f"protocol error: {exc}")
        finally:
            self.dispatching = False
        if self.after_events is not None and not self._closing:
            self.after_events()

    def _deliver_pieces(self, pieces: list[Piece]) -> None:
        if self.delegate is None:  # a PIECE before a handshake named the torrent
            raise RemoteProtocolError(f"unexpected event {pieces[0]!r}")
        self.delegate.on_pieces(pieces)

    @property
    def closing(self) -> bool:
        """We are closing (or closed) the connection: send and handle nothing more."""
        return self._closing

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._cancel_handshake_timer()
        if self._throttle_call is not None and self._throttle_call.active():
            self._throttle_call.cancel()
        self._throttle_call = None
        self._closing = True
        self.lost_reason = self.close_reason or _lost_reason(reason)
        on_closed, self.on_closed = self.on_closed, None
        if on_closed is not None:
            on_closed()
        delegate, self.delegate = self.delegate, None
        self._dispatch = {}
        if delegate is not None:
            delegate.on_connection_lost(self.lost_reason)

    # -- handshake -------------------------------------------------------

    def _handshake_received(self, event: HandshakeReceived) -> None:
        self._cancel_handshake_timer()
        self.peer_id = event.peer_id
        if event.peer_id == self.connection.our_peer_id:
            if self.connection.geometry is None:
                # Incoming, so our dialling side waits for an answer: give it our
                # handshake, so it learns the address is ours and never dials it again.
                answer = Handshake(event.info_hash, event.peer_id, self.connection.our_reserved)
                self.transport.write(encode_handshake(answer))
            self.drop(SELF_CONNECTION)
            return
        try:
            delegate = self.attacher.attach(self, event)
        except RemoteProtocolError as exc:
            self.drop(str(exc))
            return
        self.delegate = delegate
        self._send_dht_port(event.reserved)
        self._dispatch = {
            Port: self._dht_port_received,
            Choke: delegate.on_choke,
            Unchoke: delegate.on_unchoke,
            Interested: delegate.on_interested,
            NotInterested: delegate.on_not_interested,
            Have: delegate.on_have,
            PeerBitfield: delegate.on_bitfield,
            Request: delegate.on_request,
            Cancel: delegate.on_cancel,
            Extended: delegate.on_extended,
            RejectRequest: delegate.on_reject_request,
            AllowedFast: delegate.on_allowed_fast,
            SuggestPiece: delegate.on_suggest_piece,
            HashRequest: delegate.on_hash_request,
            Hashes: delegate.on_hashes,
            HashReject: delegate.on_hash_reject,
        }

    def _send_dht_port(self, reserved: bytes) -> None:
        """BEP 5: tell a peer that has the DHT bit our node's port (after its bitfield)."""
        port = self.dht.port() if self.dht is not None else None
        if port and Reserved.has(reserved, Reserved.DHT) and not self._closing:
            self.send(Port(port))

    def _dht_port_received(self, msg: Port) -> None:
        host = self.transport.getPeer()
        if self.dht is not None and 0 < msg.port < 65536 and hasattr(host, "host"):
            self.dht.advertised((host.host, msg.port))

    def bind(self, info_hash: bytes, geometry: Geometry, v2_hash: bytes | None = None) -> None:
        """For incoming peers: name the torrent and answer with our handshake
        (``v2_hash``: the torrent's truncated v2 hash, see ``PeerConnection.bind``)."""
        self.connection.bind(info_hash, geometry, v2_hash=v2_hash)
        self.transport.write(self.connection.handshake_bytes())

    def _handshake_late(self) -> None:
        self._handshake_call = None
        self.drop(f"no handshake within {self.handshake_timeout:g} s", quiet=self.quiet_handshake)

    def _cancel_handshake_timer(self) -> None:
        if self._handshake_call is not None and self._handshake_call.active():
            self._handshake_call.cancel()
        self._handshake_call = None

    # -- sending ---------------------------------------------------------

    def send(self, msg: Message) -> None:
        if not self._closing:
            self._write([self.connection.send(msg)])

    def send_all(self, messages: Sequence[Message]) -> None:
        """Several messages in one write (a batch of requests, say)."""
        if not self._closing and messages:
            send = self.connection.send
            self._write([send(m) for m in messages])

    def send_requests(self, blocks: Sequence[tuple[int, int, int]]) -> None:
        """REQUESTs for ``(index, begin, length)`` blocks in one write, with no message
        objects (a request changes no state of the connection)."""
        if not self._closing and blocks:
            self._write([encode_requests(blocks)])

    def send_block(self, index: int, begin: int, block: Buffer) -> None:
        """A PIECE message without copying the block into a new buffer."""
        if not self._closing:
            self._write([encode_piece_header(index, begin, len(block)), block])

    def send_blocks(self, blocks: Sequence[tuple[int, int, Buffer]]) -> None:
        """PIECE messages for ``(index, begin, data)`` blocks in one write (one sendmsg)."""
        if not self._closing and blocks:
            self._write(piece_parts(blocks))

    def _write(self, parts: list[Buffer]) -> None:
        self.last_sent = self.clock.seconds()
        if self.writer is not None:
            self.writer.write(parts)
        else:
            self.transport.writeSequence(as_bytes(parts))

    def drop(self, reason: str, *, quiet: bool = False) -> None:
        """Close this peer only, logging why (at debug if ``quiet``)."""
        if self._closing:
            return
        self._closing = True
        self.close_reason = reason
        # A tracker hands us our own address on every announce: the dialer says so once.
        quiet = quiet or reason == SELF_CONNECTION
        emit = self.log.debug if quiet else self.log.info
        emit("dropping peer {address}: {reason}", address=self.address, reason=reason)
        self._cancel_handshake_timer()
        if getattr(self.transport, "producer", None) is not None:
            self.transport.unregisterProducer()  # before loseConnection, per Twisted
        self.transport.loseConnection()

    # -- reading pauses: a full disk queue, a download rate limit --------------

    def pause_reading(self, reason: str) -> None:
        if not self._pauses and not self._closing:
            self.transport.pauseProducing()
        self._pauses.add(reason)

    def resume_reading(self, reason: str) -> None:
        if reason not in self._pauses:
            return
        self._pauses.discard(reason)
        if not self._pauses and not self._closing:
            self.transport.resumeProducing()

    def _throttle(self, wait: float) -> None:
        if wait <= 0 or self._throttle_call is not None:
            return
        self.pause_reading("rate")
        self._throttle_call = self.clock.callLater(wait, self._throttle_over)

    def _throttle_over(self) -> None:
        self._throttle_call = None
        wait = self.read_throttle(0) if self.read_throttle is not None else 0.0
        if wait > 0:
            self._throttle_call = self.clock.callLater(wait, self._throttle_over)
        else:
            self.resume_reading("rate")

    # -- IPushProducer: the disk queue pauses reading when it is full ------

    def pauseProducing(self) -> None:
        self.pause_reading("disk")

    def resumeProducing(self) -> None:
        self.resume_reading("disk")

    def stopProducing(self) -> None:
        self.drop("stopped")


def _lost_reason(reason: Failure) -> str:
    """Words for a connection the transport closed (the peer hung up, a reset, ...)."""
    if reason.check(ConnectionDone):
        return "closed by the peer"
    return reason.getErrorMessage()


class TorrentPeerFactory(ClientFactory):
    """Makes the outgoing connections of one torrent.

    The dialer asks :meth:`for_candidate` for one factory per attempt, so the
    protocol knows its candidate and a failure or a close names the address dialled.
    """

    protocol = PeerProtocol
    noisy = False

    def __init__(
        self,
        our_peer_id: bytes,
        info_hash: bytes,
        geometry: Geometry,
        attacher: PeerAttacher,
        clock: interfaces.IReactorTime,
        *,
        candidate: tuple[str, int] | None = None,
        on_closed: Callable[[str | None], None] | None = None,
        on_failed: Callable[[str], None] | None = None,
        dht: DHTPort | None = None,
        info_hashes: tuple[bytes, ...] = (),
        v2_hash: bytes | None = None,
    ) -> None:
        """``on_closed(reason)``: the connection ended; ``on_failed(reason)``: it was
        never made; ``dht``: the session's DHT (BEP 5 PORT), set after construction too;
        ``info_hashes``: every hash of the torrent (a hybrid's two), ``v2_hash``: its
        truncated v2 hash (BEP 52: we set the v2 bit)."""
        self.our_peer_id = our_peer_id
        self.info_hash = info_hash
        self.info_hashes = info_hashes
        self.v2_hash = v2_hash
        self.geometry = geometry
        self.attacher = attacher
        self.clock = clock
        self.candidate = candidate
        self.on_closed = on_closed
        self.on_failed = on_failed
        self.dht = dht

    def for_candidate(
        self,
        address: tuple[str, int],
        *,
        on_closed: Callable[[str | None], None] | None = None,
        on_failed: Callable[[str], None] | None = None,
        info_hash: bytes | None = None,
    ) -> TorrentPeerFactory:
        """A factory for one attempt to dial ``address`` (of the same class: a subclass's
        protocols stay its own); ``info_hash``: another of the torrent's hashes to use."""
        return type(self)(
            self.our_peer_id,
            info_hash or self.info_hash,
            self.geometry,
            self.attacher,
            self.clock,
            candidate=address,
            on_closed=on_closed,
            on_failed=on_failed,
            dht=self.dht,
            info_hashes=self.info_hashes,
            v2_hash=self.v2_hash,
        )

    def buildProtocol(self, addr: Any) -> PeerProtocol:
        reserved = reserved_bits(self.dht)
        if self.v2_hash is not None:  # BEP 52: we speak its hash messages for this torrent
            reserved = Reserved.add(reserved, Reserved.V2)
        connection = PeerConnection(
            self.our_peer_id,
            self.info_hash,
            self.geometry,
            reserved=reserved,
            v2_hash=self.v2_hash,
            also_known_as=self.info_hashes,
        )
        protocol = PeerProtocol(connection, self.attacher, self.clock, candidate=self.candidate)
        protocol.factory = self
        protocol.dht = self.dht
        on_closed = self.on_closed
        if on_closed is not None:
            protocol.on_closed = lambda: on_closed(protocol.lost_reason)
        return protocol

    def clientConnectionFailed(self, connector: Any, reason: Failure) -> None:
        if self.on_failed is not None:
            self.on_failed(reason.getErrorMessage())
