"""BEP 9 ``ut_metadata`` messages: request, data and reject of 16 KiB metadata pieces.

Each message is a bencoded dict; a data message carries the piece's raw bytes
after it. Every field bt acts on is checked here, once: a message that breaks
these rules is a :class:`RemoteProtocolError` and closes that peer. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass

from bt import bencode
from bt.errors import RemoteProtocolError
from bt.extensions.payload import decode_dict

__all__ = [
    "METADATA_PIECE",
    "MetadataData",
    "MetadataMessage",
    "MetadataReject",
    "MetadataRequest",
    "encode_metadata_message",
    "metadata_pieces",
    "parse_metadata_message",
]

#: Metadata travels in pieces of this size; only the last one is shorter.
METADATA_PIECE = 16 * 1024
_REQUEST, _DATA, _REJECT = 0, 1, 2


def metadata_pieces(size: int) -> int:
    """How many ``ut_metadata`` pieces metadata of ``size`` bytes travels in."""
    return -(-size // METADATA_PIECE)


@dataclass(frozen=True)
class MetadataRequest:
    piece: int


@dataclass(frozen=True)
class MetadataData:
    piece: int
    total_size: int
    data: bytes


@dataclass(frozen=True)
class MetadataReject:
    piece: int


MetadataMessage = MetadataRequest | MetadataData | MetadataReject


def encode_metadata_message(message: MetadataMessage) -> bytes:
    """The payload of one ``ut_metadata`` message (after the extended id byte)."""
    if isinstance(message, MetadataData):
        header = {b"msg_type": _DATA, b"piece": message.piece, b"total_size": message.total_size}
        return bencode.encode(header) + message.data
    kind = _REQUEST if isinstance(message, MetadataRequest) else _REJECT
    return bencode.encode({b"msg_type": kind, b"piece": message.piece})


def parse_metadata_message(payload: bytes) -> MetadataMessage | None:
    """One message, or ``None`` for a ``msg_type`` this BEP does not define (ignored)."""
    header, end = decode_dict(payload, "ut_metadata message", prefix=True)
    kind = header.get(b"msg_type")
    piece = header.get(b"piece")
    if not isinstance(kind, int) or not isinstance(piece, int) or piece < 0:
        raise RemoteProtocolError("ut_metadata message lacks an integer msg_type and piece")
    trailing = payload[end:]
    if kind == _DATA:
        total = header.get(b"total_size")
        if not isinstance(total, int) or total <= 0:
            raise RemoteProtocolError("ut_metadata data message lacks a positive total_size")
        if len(trailing) > METADATA_PIECE:
            raise RemoteProtocolError(
                f"ut_metadata piece {piece} carries {len(trailing)} bytes, over {METADATA_PIECE}"
            )
        return MetadataData(piece, total, trailing)
    if trailing:
        raise RemoteProtocolError(f"ut_metadata message {kind} has {len(trailing)} stray bytes")
    if kind == _REQUEST:
        return MetadataRequest(piece)
    if kind == _REJECT:
        return MetadataReject(piece)
    return None
