"""Sans-I/O state of one peer connection (BEP 3), in the spirit of h11.

``PeerConnection`` turns received bytes into events and messages to send into
bytes; it never touches a socket or a clock, so the wire rules are tested and
fuzzed directly. Every wire check (frame size, payload length, piece ranges)
happens here, once; what an event *means* is the torrent's business. A violation
raises ``RemoteProtocolError`` and the connection stays dead: every later
``receive_data`` raises again.

The handshakes decide which messages exist: BEP 6 (fast extension) and BEP 10
(extension protocol) messages are parsed only when both sides set their
reserved bit; otherwise they are ``Unknown`` and ignored like any other id.
HAVE ALL and HAVE NONE arrive as a ``PeerBitfield``, so the layers above see
one way of learning a peer's pieces.

Strict on what can hurt (lengths, ranges, memory), lenient on harmless habits of
real clients, as libtorrent is: a BITFIELD may come again at any time (aria2
sends one after some HAVEs) and replaces the peer's pieces; spare bits after the
last piece are ignored; repeated flags and HAVEs are accepted (their meaning is
idempotent, see bt/swarm/link.py).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Protocol, TypeAlias

from bt.bitfield import Bitfield
from bt.errors import BitfieldError, RemoteProtocolError
from bt.geometry import BLOCK_SIZE, PieceGeometry
from bt.peer.hash_messages import MAX_HASHES_PAYLOAD, Hashes, HashReject, HashRequest
from bt.peer.messages import (
    BEP_3,
    HANDSHAKE_LENGTH,
    AllowedFast,
    BitfieldMessage,
    Cancel,
    Choke,
    Extended,
    Handshake,
    Have,
    HaveAll,
    HaveNone,
    Interested,
    KeepAlive,
    Message,
    MessageId,
    NotInterested,
    PayloadTable,
    Piece,
    Port,
    RejectRequest,
    Request,
    Reserved,
    SuggestPiece,
    Unchoke,
    Unknown,
    check_handshake_prefix,
    encode,
    encode_handshake,
    parse_from,
    parse_handshake,
    payload_table,
    received_piece,
)

__all__ = [
    "MIN_MAX_MESSAGE_LENGTH",
    "Event",
    "Geometry",
    "HandshakeReceived",
    "PeerBitfield",
    "PeerConnection",
    "TorrentGeometry",
]

#: The frame-length cap never drops below this, so extension messages (BEP 10
#: metadata pieces, ...) and a full 16 KiB PIECE always fit.
MIN_MAX_MESSAGE_LENGTH: Final = 65536 + 9

#: In metadata-only mode the frame cap covers the BITFIELD of a huge torrent (8M pieces).
MAX_METADATA_MODE_MESSAGE: Final = 1 + (1 << 20)

_LENGTH: Final = struct.Struct(">I")
_INDEX_BEGIN: Final = struct.Struct(">II")
_PIECE: Final = int(MessageId.PIECE)
_KEEP_ALIVE: Final = KeepAlive()


class Geometry(Protocol):
    """What a connection needs to know about a torrent to range-check messages."""

    @property
    def num_pieces(self) -> int: ...

    def piece_size(self, index: int) -> int: ...


#: The geometry a torrent binds its connections to (an alias kept for old imports).
TorrentGeometry = PieceGeometry


@dataclass(frozen=True, slots=True)
class HandshakeReceived:
    """The peer's handshake arrived; incoming connections learn the info-hash here."""

    info_hash: bytes
    peer_id: bytes
    reserved: bytes


@dataclass(frozen=True, slots=True)
class PeerBitfield:
    """The peer's BITFIELD, already checked against the torrent's piece count.

    It may come at any time, not only first: a later one replaces the earlier view.
    """

    bitfield: Bitfield


Event: TypeAlias = (
    HandshakeReceived
    | PeerBitfield
    | HashRequest
    | Hashes
    | HashReject
    | KeepAlive
    | Choke
    | Unchoke
    | Interested
    | NotInterested
    | Have
    | Request
    | Piece
    | Cancel
    | Port
    | SuggestPiece
    | RejectRequest
    | AllowedFast
    | Extended
    | Unknown
)


def _max_message_length(geometry: Geometry | None) -> int:
    if geometry is None:
        return MIN_MAX_MESSAGE_LENGTH
    return max(MIN_MAX_MESSAGE_LENGTH, 9 + BLOCK_SIZE, 1 + ((geometry.num_pieces + 7) >> 3))


class PeerConnection:
    """Wire state of one peer: handshake, framing, range checks and the four flags."""

    __slots__ = (
        "_buffer",
        "_failure",
        "_handlers",
        "_num_pieces",
        "_pieces_ignored",
        "_table",
        "also_known_as",
        "am_choking",
        "am_interested",
        "geometry",
        "info_hash",
        "max_message_length",
        "our_peer_id",
        "our_reserved",
        "peer_choking",
        "peer_handshake",
        "peer_interested",
        "v2_hash",
    )

    def __init__(
        self,
        our_peer_id: bytes,
        info_hash: bytes | None = None,
        geometry: Geometry | None = None,
        *,
        reserved: bytes = bytes(8),
        v2_hash: bytes | None = None,
        also_known_as: tuple[bytes, ...] = (),
    ) -> None:
        """``v2_hash``: the torrent's truncated v2 info-hash (BEP 52), if it has one;
        ``also_known_as``: other info-hashes of the same torrent a dialled peer may
        answer with (libtorrent answers a hybrid's v1 hash with its v2 one)."""
        if len(our_peer_id) != 20:
            raise ValueError(f"peer id must be 20 bytes, got {len(our_peer_id)}")
        if info_hash is not None and len(info_hash) != 20:
            raise ValueError(f"info-hash must be 20 bytes, got {len(info_hash)}")
        if len(reserved) != 8:
            raise ValueError(f"reserved must be 8 bytes, got {len(reserved)}")
        self.our_peer_id = our_peer_id
        self.our_reserved = reserved
        #: Known up front for outgoing connections, from the handshake for incoming ones.
        self.info_hash = info_hash
        self.v2_hash = v2_hash
        self.also_known_as = also_known_as
        self.geometry = geometry
        self._num_pieces = geometry.num_pieces if geometry is not None else 0
        self.max_message_length = _max_message_length(geometry)
        self.peer_handshake: HandshakeReceived | None = None
        self.am_choking = True
        self.am_interested = False
        self.peer_choking = True
        self.peer_interested = False
        self._buffer = bytearray()
        self._failure: RemoteProtocolError | None = None
        self._table: PayloadTable = BEP_3
        self._handlers = _BEP_3_HANDLERS
        self._pieces_ignored = False

    # -- setup -----------------------------------------------------------

    def bind(self, info_hash: bytes, geometry: Geometry, *, v2_hash: bytes | None = None) -> None:
        """Attach the torrent an incoming handshake named; then call ``receive_data(b"")``.

        ``v2_hash``: the torrent's truncated v2 hash (BEP 52), if it has one: we set
        the v2 bit, and answer a peer that sent the v1 hash with the v2 bit with the
        v2 hash (libtorrent's upgrade: the connection speaks v2 from then on).
        """
        peer = self.peer_handshake
        if v2_hash is not None:
            self.our_reserved = Reserved.add(self.our_reserved, Reserved.V2)
            if peer is not None and Reserved.has(peer.reserved, Reserved.V2):
                info_hash = v2_hash
        if self.geometry is not None:
            raise ValueError("connection is already bound to a torrent")
        if self.info_hash is not None and info_hash not in (self.info_hash, v2_hash):
            raise ValueError(
                f"binding info-hash {info_hash.hex()}, but the connection is for"
                f" {self.info_hash.hex()}"
            )
        self.info_hash = info_hash
        self.v2_hash = v2_hash
        self.geometry = geometry
        self._num_pieces = geometry.num_pieces
        self.max_message_length = _max_message_length(geometry)
        if peer is not None:
            self._negotiate()

    def ignore_pieces(self) -> None:
        """Metadata-only mode (a magnet fetching its info dictionary): there are no
        pieces to check against yet, so BITFIELD, HAVE, HAVE ALL, REQUEST, PIECE and
        the rest are framed and dropped; extended messages still flow."""
        self._pieces_ignored = True
        self._handlers = _PIECES_IGNORED
        self.max_message_length = MAX_METADATA_MODE_MESSAGE

    def handshake_bytes(self) -> bytes:
        """Our 68-byte handshake; needs the info-hash (bind first when incoming)."""
        if self.info_hash is None:
            raise ValueError("info-hash unknown: bind() before sending the handshake")
        return encode_handshake(Handshake(self.info_hash, self.our_peer_id, self.our_reserved))

    @property
    def failed(self) -> bool:
        return self._failure is not None

    def _negotiated(self, bit: tuple[int, int]) -> bool:
        peer = self.peer_handshake
        return (
            peer is not None
            and Reserved.has(self.our_reserved, bit)
            and Reserved.has(peer.reserved, bit)
        )

    @property
    def fast(self) -> bool:
        """Both sides speak the fast extension (BEP 6)."""
        return self._negotiated(Reserved.FAST)

    @property
    def extended(self) -> bool:
        """Both sides speak the extension protocol (BEP 10)."""
        return self._negotiated(Reserved.EXTENSION_PROTOCOL)

    @property
    def v2(self) -> bool:
        """Hash messages (BEP 52) may flow: the torrent has v2 (our bit) and the peer
        set the bit too or used the truncated v2 info-hash (which libtorrent sends
        without the bit)."""
        peer = self.peer_handshake
        if peer is None or not Reserved.has(self.our_reserved, Reserved.V2):
            return False
        return Reserved.has(peer.reserved, Reserved.V2) or (
            self.v2_hash is not None and self.v2_hash in (peer.info_hash, self.info_hash)
        )

    # -- sending ---------------------------------------------------------

    def send(self, msg: Message) -> bytes:
        """Encode ``msg`` and record what it says about our side.

        For PIECE the hot path should write ``[encode_piece_header(...), block]``
        instead: sending a block changes no state.
        """
        data = encode(msg)
        flag = _OUR_FLAGS.get(type(msg))
        if flag is not None:
            setattr(self, flag[0], flag[1])
        return data

    # -- receiving -------------------------------------------------------

    def receive_data(self, data: bytes) -> list[Event]:
        """Buffer ``data`` and return the events of every complete unit in the buffer.

        Pauses right after ``HandshakeReceived`` while no geometry is bound. On a
        violation the events parsed earlier in the same call are dropped with the peer.
        """
        if self._failure is not None:
            raise RemoteProtocolError(f"connection already failed: {self._failure}")
        self._buffer += data
        try:
            return self._parse()
        except RemoteProtocolError as exc:
            self._failure = exc
            self._buffer.clear()
            raise

    def _parse(self) -> list[Event]:
        buf = self._buffer
        events: list[Event] = []
        pos = 0
        if self.peer_handshake is None:
            if len(buf) < HANDSHAKE_LENGTH:
                check_handshake_prefix(buf)
                return events
            events.append(self._handshake(parse_handshake(bytes(buf[:HANDSHAKE_LENGTH]))))
            pos = HANDSHAKE_LENGTH
        if self.geometry is None:
            if pos:
                del buf[:pos]
            return events

        end = len(buf)
        max_length = self.max_message_length
        handlers = self._handlers
        table = self._table
        unpack_length = _LENGTH.unpack_from
        # PIECE, the message of the download's hot path, is checked and copied here
        # (one copy, straight out of the buffer); any other, or a PIECE that fails a
        # check, takes the general path, which names what was wrong.
        pieces = not self._pieces_ignored
        unpack_piece = _INDEX_BEGIN.unpack_from
        num_pieces = self._num_pieces
        piece_size = self.geometry.piece_size
        view = memoryview(buf)
        try:
            while end - pos >= 4:
                (length,) = unpack_length(buf, pos)
                if not length:
                    events.append(_KEEP_ALIVE)
                    pos += 4
                    continue
                if length > max_length:
                    raise RemoteProtocolError(
                        f"message length {length} exceeds the maximum of {max_length} bytes"
                    )
                body = pos + 4
                if end - body < length:
                    break
                message_id = buf[body]
                if message_id == _PIECE and pieces and length >= 9:
                    index, begin = unpack_piece(buf, body + 1)
                    if index < num_pieces and begin + length - 9 <= piece_size(index):
                        with view[body + 9 : body + length] as block:
                            events.append(received_piece(index, begin, block.tobytes()))
                        pos = body + length
                        continue
                msg: Any = parse_from(buf, body + 1, message_id, length - 1, table)
                handler = handlers.get(message_id)
                if handler is not None:
                    msg = handler(self, msg)
                events.append(msg)
                pos = body + length
        finally:
            view.release()  # before the buffer is resized
        if pos:
            del buf[:pos]
        return events

    def _handshake(self, handshake: Handshake) -> HandshakeReceived:
        if self.info_hash is None:
            self.info_hash = handshake.info_hash
        elif handshake.info_hash not in (self.info_hash, self.v2_hash, *self.also_known_as):
            raise RemoteProtocolError(
                f"handshake for info-hash {handshake.info_hash.hex()},"
                f" expected {self.info_hash.hex()}"
            )
        event = HandshakeReceived(handshake.info_hash, handshake.peer_id, handshake.reserved)
        self.peer_handshake = event
        self._negotiate()
        return event

    def _negotiate(self) -> None:
        """The messages and frame cap both handshakes (and the torrent, once bound) allow."""
        v2 = self.v2
        self._table = payload_table(fast=self.fast, extended=self.extended, v2=v2)
        if v2:
            self.max_message_length = max(self.max_message_length, 1 + MAX_HASHES_PAYLOAD)
        if not self._pieces_ignored:
            self._handlers = _FAST_HANDLERS if self.fast else _BEP_3_HANDLERS

    # -- per-message checks (dispatched from _HANDLERS) -------------------

    def _on_choke(self, msg: Choke) -> Choke:
        self.peer_choking = True
        return msg

    def _on_unchoke(self, msg: Unchoke) -> Unchoke:
        self.peer_choking = False
        return msg

    def _on_interested(self, msg: Interested) -> Interested:
        self.peer_interested = True
        return msg

    def _on_not_interested(self, msg: NotInterested) -> NotInterested:
        self.peer_interested = False
        return msg

    def _check_index(self, name: str, index: int) -> None:
        if index >= self._num_pieces:
            raise RemoteProtocolError(
                f"{name} message for piece {index}, but the torrent has {self._num_pieces} pieces"
            )

    def _on_have(self, msg: Have) -> Have:
        self._check_index("have", msg.index)
        return msg

    def _on_bitfield(self, msg: BitfieldMessage) -> PeerBitfield:
        # The byte count must match (a peer of another torrent, a broken encoder);
        # spare bits are cleared, as libtorrent does, since they name no piece.
        try:
            bitfield = Bitfield.from_bytes(msg.payload, self._num_pieces, spare_bits="clear")
            return PeerBitfield(bitfield)
        except BitfieldError as exc:
            raise RemoteProtocolError(f"bad bitfield message: {exc}") from exc

    def _on_have_all(self, msg: HaveAll) -> PeerBitfield:
        return PeerBitfield(Bitfield.full(self._num_pieces))

    def _on_have_none(self, msg: HaveNone) -> PeerBitfield:
        return PeerBitfield(Bitfield(self._num_pieces))

    def _on_suggest_piece(self, msg: SuggestPiece) -> SuggestPiece:
        self._check_index("suggest-piece", msg.index)
        return msg

    def _on_allowed_fast(self, msg: AllowedFast) -> AllowedFast:
        self._check_index("allowed-fast", msg.index)
        return msg

    def _on_reject_request(self, msg: RejectRequest) -> RejectRequest:
        self._check_block("reject-request", msg.index, msg.begin, msg.length)
        return msg

    def _check_block(self, name: str, index: int, begin: int, length: int) -> None:
        self._check_index(name, index)
        if not 0 < length <= BLOCK_SIZE:
            raise RemoteProtocolError(f"{name} message for {length} bytes, outside 1..{BLOCK_SIZE}")
        size = self.geometry.piece_size(index)  # type: ignore[union-attr]  # bound
        if begin + length > size:
            raise RemoteProtocolError(
                f"{name} message for bytes {begin}..{begin + length} of piece {index},"
                f" which has {size} bytes"
            )

    def _on_request(self, msg: Request) -> Request:
        self._check_block("request", msg.index, msg.begin, msg.length)
        return msg

    def _on_cancel(self, msg: Cancel) -> Cancel:
        self._check_block("cancel", msg.index, msg.begin, msg.length)
        return msg

    def _on_piece(self, msg: Piece) -> Piece:
        self._check_index("piece", msg.index)
        size = self.geometry.piece_size(msg.index)  # type: ignore[union-attr]  # bound
        end = msg.begin + len(msg.block)
        if end > size:
            raise RemoteProtocolError(
                f"piece message for bytes {msg.begin}..{end} of piece {msg.index},"
                f" which has {size} bytes"
            )
        return msg


#: Range checks and flag updates per received message id (keep-alives, PORT,
#: BEP 10 extended messages and unknown ids need none). Fast-extension ids only
#: get here when the handshakes negotiated them; otherwise they parse as Unknown.
_BEP_3_HANDLERS: Final[dict[int, Callable[[PeerConnection, Any], Event]]] = {
    MessageId.CHOKE: PeerConnection._on_choke,
    MessageId.UNCHOKE: PeerConnection._on_unchoke,
    MessageId.INTERESTED: PeerConnection._on_interested,
    MessageId.NOT_INTERESTED: PeerConnection._on_not_interested,
    MessageId.HAVE: PeerConnection._on_have,
    MessageId.BITFIELD: PeerConnection._on_bitfield,
    MessageId.REQUEST: PeerConnection._on_request,
    MessageId.PIECE: PeerConnection._on_piece,
    MessageId.CANCEL: PeerConnection._on_cancel,
}
_FAST_HANDLERS: Final[dict[int, Callable[[PeerConnection, Any], Event]]] = {
    **_BEP_3_HANDLERS,
    MessageId.SUGGEST_PIECE: PeerConnection._on_suggest_piece,
    MessageId.HAVE_ALL: PeerConnection._on_have_all,
    MessageId.HAVE_NONE: PeerConnection._on_have_none,
    MessageId.REJECT_REQUEST: PeerConnection._on_reject_request,
    MessageId.ALLOWED_FAST: PeerConnection._on_allowed_fast,
}

#: In metadata-only mode every message about pieces (and the flags) is dropped.
_PIECES_IGNORED: Final[dict[int, Callable[[PeerConnection, Any], Event]]] = {
    message_id: lambda connection, msg: _KEEP_ALIVE for message_id in _FAST_HANDLERS
}

#: Our-side flag each sent message sets.
_OUR_FLAGS: Final[dict[type, tuple[str, bool]]] = {
    Choke: ("am_choking", True),
    Unchoke: ("am_choking", False),
    Interested: ("am_interested", True),
    NotInterested: ("am_interested", False),
}
