"""KRPC messages (BEP 5, BEP 32): the codec, strict and bounded.

Every datagram from the network is untrusted: :func:`parse` refuses anything
larger than :data:`MAX_DATAGRAM`, anything that is not canonical bencode and
anything of the wrong shape. Its only failure is :class:`KrpcError`; when the
transaction id of a *query* was readable the node can answer it with error 203
(``KrpcError.answerable``), otherwise the datagram is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

__all__ = [
    "MAX_DATAGRAM",
    "METHODS",
    "ErrorCode",
    "ErrorMessage",
    "KrpcError",
    "Message",
    "NodeInfo",
    "Query",
    "Response",
    "encode",
    "pack_nodes",
    "parse",
    "unpack_nodes",
]

Peer = tuple[str, int]

#: Datagrams longer than this are dropped unread (an Ethernet MTU).
MAX_DATAGRAM = 1500
#: The queries of BEP 5.
METHODS = ("ping", "find_node", "get_peers", "announce_peer")
NODE_ID_LEN = 20
#: Compact node info: 20-byte id then a compact IPv4 (26) or IPv6 (38) address.
NODE4_LEN = 26
NODE6_LEN = 38


class ErrorCode(IntEnum):
    """KRPC error codes (BEP 5)."""

    GENERIC = 201
    SERVER = 202
    PROTOCOL = 203
    METHOD_UNKNOWN = 204


class KrpcError(ValueError):
    """A datagram that is not a valid KRPC message.

    ``tid`` is the transaction id when it could be read, ``query`` whether the
    message claimed to be a query: only then is an error reply (``code``) due.
    """

    def __init__(
        self,
        message: str,
        *,
        tid: bytes | None = None,
        query: bool = False,
        code: ErrorCode = ErrorCode.PROTOCOL,
    ) -> None:
        super().__init__(message)
        self.tid = tid
        self.query = query
        self.code = code

    @property
    def answerable(self) -> bool:
        """True when the sender should get an error reply (a query with a readable tid)."""
        return self.query and self.tid is not None


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """A DHT node: its 20-byte id and its UDP address."""

    id: bytes
    host: str
    port: int

    @property
    def address(self) -> Peer:
        return (self.host, self.port)


@dataclass(frozen=True, slots=True)
class Query:
    """A query. Which optional fields are set depends on ``method``.

    find_node: ``target``; get_peers: ``info_hash``; announce_peer: ``info_hash``,
    ``port``, ``token``, ``implied_port``. ``want`` (BEP 32) holds b"n4"/b"n6".
    """

    tid: bytes
    method: str
    sender: bytes
    target: bytes | None = None
    info_hash: bytes | None = None
    port: int | None = None
    token: bytes | None = None
    implied_port: bool = False
    want: tuple[bytes, ...] = ()
    read_only: bool = False
    version: bytes | None = None


@dataclass(frozen=True, slots=True)
class Response:
    """A reply. ``ip`` is the querier's address as the responder saw it (BEP 42)."""

    tid: bytes
    sender: bytes
    nodes: tuple[NodeInfo, ...] = ()
    nodes6: tuple[NodeInfo, ...] = ()
    values: tuple[Peer, ...] = ()
    token: bytes | None = None
    ip: Peer | None = None
    version: bytes | None = None


@dataclass(frozen=True, slots=True)
class ErrorMessage:
    """An error reply: ``[code, message]`` under ``e``."""

    tid: bytes
    code: int
    message: str


Message = Query | Response | ErrorMessage


def encode(message: Message) -> bytes:
    """``message`` as one bencoded datagram."""
    raise NotImplementedError


def parse(datagram: bytes) -> Message:
    """The message in ``datagram``; :class:`KrpcError` for anything invalid."""
    raise NotImplementedError


def pack_nodes(nodes: tuple[NodeInfo, ...] | list[NodeInfo], ipv6: bool = False) -> bytes:
    """Compact node info (26 or 38 bytes per node) of one address family."""
    raise NotImplementedError


def unpack_nodes(data: bytes, ipv6: bool = False) -> tuple[NodeInfo, ...]:
    """The nodes in a compact ``nodes``/``nodes6`` string; ``ValueError`` on a bad length."""
    raise NotImplementedError
