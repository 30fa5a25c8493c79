"""BEP 3 peer wire messages: one frozen value per message, and their codec.

Parsing checks payload *lengths* only, from one table per protocol level:
BEP 3 (``BEP_3``), plus the fast extension's messages (BEP 6, ``WITH_FAST``)
and the extension protocol's message 20 (BEP 10, ``WITH_EXTENDED``) once a
handshake negotiated them. Range checks (piece index, block bounds) need the
torrent's geometry and live in ``connection.py``; meaning lives above. Unknown
message ids (and extension ids that were not negotiated) parse to ``Unknown``
rather than failing, because BEP 3 peers must ignore them so that extensions
cannot break us.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Final, TypeAlias

from bt.errors import RemoteProtocolError
from bt.geometry import BLOCK_SIZE
from bt.peer.hash_messages import (
    Hashes,
    HashReject,
    HashRequest,
    encode_hash_message,
    parse_hash_message,
)

__all__ = [
    "BLOCK_SIZE",
    "HANDSHAKE_LENGTH",
    "PROTOCOL",
    "AllowedFast",
    "BitfieldMessage",
    "Cancel",
    "Choke",
    "Extended",
    "Handshake",
    "HashReject",
    "HashRequest",
    "Hashes",
    "Have",
    "HaveAll",
    "HaveNone",
    "Interested",
    "KeepAlive",
    "Message",
    "MessageId",
    "NotInterested",
    "Piece",
    "Port",
    "RejectRequest",
    "Request",
    "Reserved",
    "SuggestPiece",
    "Unchoke",
    "Unknown",
    "check_handshake_prefix",
    "encode",
    "encode_handshake",
    "encode_piece_header",
    "encode_requests",
    "parse",
    "parse_from",
    "parse_handshake",
    "received_piece",
]

PROTOCOL: Final = b"BitTorrent protocol"
#: pstrlen (1) + pstr (19) + reserved (8) + info-hash (20) + peer id (20).
HANDSHAKE_LENGTH: Final = 68

_HANDSHAKE_PREFIX: Final = bytes([len(PROTOCOL)]) + PROTOCOL
_NO_RESERVED: Final = bytes(8)

ReadableBuffer: TypeAlias = bytes | bytearray | memoryview


class MessageId(IntEnum):
    CHOKE = 0
    UNCHOKE = 1
    INTERESTED = 2
    NOT_INTERESTED = 3
    HAVE = 4
    BITFIELD = 5
    REQUEST = 6
    PIECE = 7
    CANCEL = 8
    PORT = 9  # BEP 5: the peer's DHT port
    SUGGEST_PIECE = 13  # BEP 6 ...
    HAVE_ALL = 14
    HAVE_NONE = 15
    REJECT_REQUEST = 16
    ALLOWED_FAST = 17  # ... BEP 6
    EXTENDED = 20  # BEP 10
    HASH_REQUEST = 21  # BEP 52 ...
    HASHES = 22
    HASH_REJECT = 23  # ... BEP 52


class Reserved:
    """Bits of the handshake's reserved bytes: (byte, mask) of each extension bt knows."""

    EXTENSION_PROTOCOL: Final = (5, 0x10)  # BEP 10
    DHT: Final = (7, 0x01)  # BEP 5
    FAST: Final = (7, 0x04)  # BEP 6
    V2: Final = (7, 0x10)  # BEP 52: the torrent has a v2 info-hash and we speak its messages

    @staticmethod
    def of(*bits: tuple[int, int]) -> bytes:
        """Reserved bytes with ``bits`` set."""
        reserved = bytearray(8)
        for byte, mask in bits:
            reserved[byte] |= mask
        return bytes(reserved)

    @staticmethod
    def add(reserved: bytes, bit: tuple[int, int]) -> bytes:
        """``reserved`` with ``bit`` set too."""
        byte, mask = bit
        return reserved[:byte] + bytes([reserved[byte] | mask]) + reserved[byte + 1 :]

    @staticmethod
    def has(reserved: bytes, bit: tuple[int, int]) -> bool:
        byte, mask = bit
        return bool(reserved[byte] & mask)


@dataclass(frozen=True, slots=True)
class KeepAlive:
    """A zero-length message: proof of life, no id."""


@dataclass(frozen=True, slots=True)
class Choke:
    pass


@dataclass(frozen=True, slots=True)
class Unchoke:
    pass


@dataclass(frozen=True, slots=True)
class Interested:
    pass


@dataclass(frozen=True, slots=True)
class NotInterested:
    pass


@dataclass(frozen=True, slots=True)
class Have:
    index: int


@dataclass(frozen=True, slots=True)
class BitfieldMessage:
    """The raw wire bitfield; a connection turns it into a ``Bitfield`` once it knows the length."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class Request:
    index: int
    begin: int
    length: int


@dataclass(frozen=True, slots=True)
class Piece:
    index: int
    begin: int
    block: bytes


@dataclass(frozen=True, slots=True)
class Cancel:
    index: int
    begin: int
    length: int


@dataclass(frozen=True, slots=True)
class Port:
    port: int


@dataclass(frozen=True, slots=True)
class SuggestPiece:
    """BEP 6: the peer hints that this piece would be cheap for it to send."""

    index: int


@dataclass(frozen=True, slots=True)
class HaveAll:
    """BEP 6: a bitfield of all ones, in one byte."""


@dataclass(frozen=True, slots=True)
class HaveNone:
    """BEP 6: a bitfield of all zeros."""


@dataclass(frozen=True, slots=True)
class RejectRequest:
    """BEP 6: a request that will not be served."""

    index: int
    begin: int
    length: int


@dataclass(frozen=True, slots=True)
class AllowedFast:
    """BEP 6: a piece the peer will serve even while it chokes us."""

    index: int


@dataclass(frozen=True, slots=True)
class Extended:
    """BEP 10: extension message ``extended_id`` (0 is the extended handshake)."""

    extended_id: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class Unknown:
    """A message id we do not implement (an extension); kept so it can be logged or ignored."""

    message_id: int
    payload: bytes


Message: TypeAlias = (
    KeepAlive
    | Choke
    | Unchoke
    | Interested
    | NotInterested
    | Have
    | BitfieldMessage
    | Request
    | Piece
    | Cancel
    | Port
    | SuggestPiece
    | HaveAll
    | HaveNone
    | RejectRequest
    | AllowedFast
    | Extended
    | HashRequest
    | Hashes
    | HashReject
    | Unknown
)


@dataclass(frozen=True, slots=True)
class Handshake:
    """The unframed first 68 bytes each side sends."""

    info_hash: bytes
    peer_id: bytes
    reserved: bytes = _NO_RESERVED

    def __post_init__(self) -> None:
        for name, size in (("info_hash", 20), ("peer_id", 20), ("reserved", 8)):
            value = getattr(self, name)
            if len(value) != size:
                raise ValueError(f"handshake {name} must be {size} bytes, got {len(value)}")


# -- encoding ---------------------------------------------------------------

_U32: Final = struct.Struct(">I")
_U32X2: Final = struct.Struct(">II")
_U32X3: Final = struct.Struct(">III")
_U16: Final = struct.Struct(">H")
_HAVE_FRAME: Final = struct.Struct(">IBI")
_TRIPLE_FRAME: Final = struct.Struct(">IBIII")
_PIECE_HEADER: Final = struct.Struct(">IBII")
_PORT_FRAME: Final = struct.Struct(">IBH")
_ID_FRAME: Final = struct.Struct(">IB")
_EXTENDED_FRAME: Final = struct.Struct(">IBB")


def _constant(message_id: int) -> Callable[[Any], bytes]:
    frame = _ID_FRAME.pack(1, message_id)
    return lambda _msg: frame


def encode_piece_header(index: int, begin: int, block_length: int) -> bytes:
    """Frame header of a PIECE message, so a sender can write ``[header, block]``
    without concatenating (copying) the 16 KiB block."""
    return _PIECE_HEADER.pack(9 + block_length, MessageId.PIECE, index, begin)


def encode_requests(blocks: Iterable[tuple[int, int, int]]) -> bytes:
    """REQUEST frames for ``(index, begin, length)`` blocks, in one buffer: the
    download's hot path, without a ``Request`` object per block."""
    pack, request = _TRIPLE_FRAME.pack, MessageId.REQUEST
    return b"".join([pack(13, request, index, begin, length) for index, begin, length in blocks])


_ENCODERS: Final[dict[type, Callable[[Any], bytes]]] = {
    KeepAlive: lambda _msg: b"\x00\x00\x00\x00",
    Choke: _constant(MessageId.CHOKE),
    Unchoke: _constant(MessageId.UNCHOKE),
    Interested: _constant(MessageId.INTERESTED),
    NotInterested: _constant(MessageId.NOT_INTERESTED),
    Have: lambda m: _HAVE_FRAME.pack(5, MessageId.HAVE, m.index),
    BitfieldMessage: lambda m: _ID_FRAME.pack(1 + len(m.payload), MessageId.BITFIELD) + m.payload,
    Request: lambda m: _TRIPLE_FRAME.pack(13, MessageId.REQUEST, m.index, m.begin, m.length),
    Piece: lambda m: encode_piece_header(m.index, m.begin, len(m.block)) + m.block,
    Cancel: lambda m: _TRIPLE_FRAME.pack(13, MessageId.CANCEL, m.index, m.begin, m.length),
    Port: lambda m: _PORT_FRAME.pack(3, MessageId.PORT, m.port),
    SuggestPiece: lambda m: _HAVE_FRAME.pack(5, MessageId.SUGGEST_PIECE, m.index),
    HaveAll: _constant(MessageId.HAVE_ALL),
    HaveNone: _constant(MessageId.HAVE_NONE),
    RejectRequest: lambda m: _TRIPLE_FRAME.pack(
        13, MessageId.REJECT_REQUEST, m.index, m.begin, m.length
    ),
    AllowedFast: lambda m: _HAVE_FRAME.pack(5, MessageId.ALLOWED_FAST, m.index),
    Extended: lambda m: (
        _EXTENDED_FRAME.pack(2 + len(m.payload), MessageId.EXTENDED, m.extended_id) + m.payload
    ),
    HashRequest: encode_hash_message,
    Hashes: encode_hash_message,
    HashReject: encode_hash_message,
    Unknown: lambda m: _ID_FRAME.pack(1 + len(m.payload), m.message_id) + m.payload,
}


def encode(msg: Message) -> bytes:
    """Length-prefixed wire form of ``msg``."""
    try:
        encoder = _ENCODERS[type(msg)]
    except KeyError:
        raise TypeError(f"not a peer wire message: {msg!r}") from None
    return encoder(msg)


def encode_handshake(handshake: Handshake) -> bytes:
    return b"".join((_HANDSHAKE_PREFIX, handshake.reserved, handshake.info_hash, handshake.peer_id))


# -- parsing ----------------------------------------------------------------


def _copy(buffer: ReadableBuffer, start: int, stop: int) -> bytes:
    """One copy of ``buffer[start:stop]`` as bytes; slicing a bytearray then calling
    ``bytes`` would copy twice. Views are released at once so the caller's
    bytearray can be resized afterwards (also on PyPy)."""
    with memoryview(buffer) as view, view[start:stop] as part:
        return part.tobytes()


# Piece is frozen: its generated __init__ sets each field through object.__setattr__
# (about 400 ns against 150). A received block makes one per block, so its slots are
# set directly; it is the same frozen Piece.
_new_object = object.__new__
_set_index, _set_begin, _set_block = Piece.index.__set__, Piece.begin.__set__, Piece.block.__set__


def received_piece(index: int, begin: int, block: bytes) -> Piece:
    """``Piece(index, begin, block)`` for the receive path, without the frozen ``__init__``."""
    piece = _new_object(Piece)
    _set_index(piece, index)
    _set_begin(piece, begin)
    _set_block(piece, block)
    return piece


def _parse_piece(buffer: ReadableBuffer, offset: int, size: int) -> Piece:
    index, begin = _U32X2.unpack_from(buffer, offset)
    return received_piece(index, begin, _copy(buffer, offset + 8, offset + size))


def _parse_extended(buffer: ReadableBuffer, offset: int, size: int) -> Extended:
    return Extended(buffer[offset], _copy(buffer, offset + 1, offset + size))


_Builder: TypeAlias = Callable[[ReadableBuffer, int, int], Message]
PayloadTable: TypeAlias = dict[int, tuple[str, int, bool, _Builder]]

# Field-less messages are immutable, so one instance each serves every parse.
_CHOKE: Final = Choke()
_UNCHOKE: Final = Unchoke()
_INTERESTED: Final = Interested()
_NOT_INTERESTED: Final = NotInterested()
_HAVE_ALL: Final = HaveAll()
_HAVE_NONE: Final = HaveNone()

#: The tables of payload lengths: id -> (name, payload bytes, exact?, builder).
#: When ``exact`` is false the length is a minimum.
BEP_3: Final[PayloadTable] = {
    MessageId.CHOKE: ("choke", 0, True, lambda b, o, n: _CHOKE),
    MessageId.UNCHOKE: ("unchoke", 0, True, lambda b, o, n: _UNCHOKE),
    MessageId.INTERESTED: ("interested", 0, True, lambda b, o, n: _INTERESTED),
    MessageId.NOT_INTERESTED: ("not-interested", 0, True, lambda b, o, n: _NOT_INTERESTED),
    MessageId.HAVE: ("have", 4, True, lambda b, o, n: Have(*_U32.unpack_from(b, o))),
    MessageId.BITFIELD: ("bitfield", 0, False, lambda b, o, n: BitfieldMessage(_copy(b, o, o + n))),
    MessageId.REQUEST: ("request", 12, True, lambda b, o, n: Request(*_U32X3.unpack_from(b, o))),
    MessageId.PIECE: ("piece", 8, False, _parse_piece),
    MessageId.CANCEL: ("cancel", 12, True, lambda b, o, n: Cancel(*_U32X3.unpack_from(b, o))),
    MessageId.PORT: ("port", 2, True, lambda b, o, n: Port(*_U16.unpack_from(b, o))),
}
_FAST: Final[PayloadTable] = {
    MessageId.SUGGEST_PIECE: (
        "suggest-piece",
        4,
        True,
        lambda b, o, n: SuggestPiece(*_U32.unpack_from(b, o)),
    ),
    MessageId.HAVE_ALL: ("have-all", 0, True, lambda b, o, n: _HAVE_ALL),
    MessageId.HAVE_NONE: ("have-none", 0, True, lambda b, o, n: _HAVE_NONE),
    MessageId.REJECT_REQUEST: (
        "reject-request",
        12,
        True,
        lambda b, o, n: RejectRequest(*_U32X3.unpack_from(b, o)),
    ),
    MessageId.ALLOWED_FAST: (
        "allowed-fast",
        4,
        True,
        lambda b, o, n: AllowedFast(*_U32.unpack_from(b, o)),
    ),
}
_EXTENDED: Final[PayloadTable] = {MessageId.EXTENDED: ("extended", 1, False, _parse_extended)}


def _hash_builder(message_id: int) -> _Builder:
    """hash_messages checks the exact sizes (a HASHES message against its own header)."""
    return lambda b, o, n: parse_hash_message(message_id, _copy(b, o, o + n))


#: BEP 52's messages; the minimum is the 48-byte header, the rest is checked by the parser.
_V2: Final[PayloadTable] = {
    message_id: (name, 48, False, _hash_builder(message_id))
    for message_id, name in (
        (MessageId.HASH_REQUEST, "hash-request"),
        (MessageId.HASHES, "hashes"),
        (MessageId.HASH_REJECT, "hash-reject"),
    )
}

#: The table a connection parses with, by what its handshakes negotiated.
WITH_FAST: Final[PayloadTable] = BEP_3 | _FAST
WITH_EXTENDED: Final[PayloadTable] = BEP_3 | _EXTENDED
WITH_BOTH: Final[PayloadTable] = BEP_3 | _FAST | _EXTENDED


def payload_table(*, fast: bool, extended: bool, v2: bool = False) -> PayloadTable:
    """The messages two peers that negotiated ``fast``, ``extended`` and ``v2`` can parse."""
    if fast:
        table = WITH_BOTH if extended else WITH_FAST
    else:
        table = WITH_EXTENDED if extended else BEP_3
    return table | _V2 if v2 else table


def parse_from(
    buffer: ReadableBuffer,
    offset: int,
    message_id: int,
    size: int,
    table: PayloadTable = BEP_3,
) -> Message:
    """Parse the ``size``-byte payload at ``buffer[offset:]`` of message ``message_id``.

    Reads in place so a framing buffer never has its payloads sliced out first;
    the caller guarantees ``offset + size <= len(buffer)``. Ids outside ``table``
    (the messages negotiated) are ``Unknown``.
    """
    spec = table.get(message_id)
    if spec is None:
        return Unknown(message_id, _copy(buffer, offset, offset + size))
    name, expected, exact, build = spec
    if size != expected if exact else size < expected:
        qualifier = "" if exact else "at least "
        raise RemoteProtocolError(
            f"{name} message with a {size}-byte payload, expected {qualifier}{expected} bytes"
        )
    return build(buffer, offset, size)


def parse(message_id: int, payload: ReadableBuffer, table: PayloadTable = BEP_3) -> Message:
    """Parse one message body (the bytes after the length prefix and id)."""
    return parse_from(payload, 0, message_id, len(payload), table)


def check_handshake_prefix(data: ReadableBuffer) -> None:
    """Raise as soon as the first bytes cannot begin a handshake.

    Lets a connection drop a non-BitTorrent client (an HTTP request, say) on its
    first byte instead of waiting for 68.
    """
    received = len(data)
    if not received:
        return
    if data[0] != len(PROTOCOL):
        raise RemoteProtocolError(
            f"handshake protocol name length {data[0]}, expected {len(PROTOCOL)}"
            f" (received {bytes(data[:20])!r})"
        )
    end = min(received, len(_HANDSHAKE_PREFIX))
    if data[1:end] != PROTOCOL[: end - 1]:
        raise RemoteProtocolError(
            f"handshake protocol name {bytes(data[1:end])!r}, expected {PROTOCOL!r}"
        )


def parse_handshake(data: ReadableBuffer) -> Handshake:
    """Parse exactly 68 handshake bytes."""
    if len(data) != HANDSHAKE_LENGTH:
        raise RemoteProtocolError(
            f"handshake of {len(data)} bytes, expected {HANDSHAKE_LENGTH} bytes"
        )
    check_handshake_prefix(data)
    return Handshake(
        info_hash=bytes(data[28:48]), peer_id=bytes(data[48:68]), reserved=bytes(data[20:28])
    )
