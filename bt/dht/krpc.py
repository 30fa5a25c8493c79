"""KRPC messages (BEP 5, BEP 32): the codec, strict and bounded.

Every datagram from the network is untrusted: :func:`parse` refuses anything
larger than :data:`MAX_DATAGRAM`, anything that is not canonical bencode and
anything of the wrong shape. Its only failure is :class:`KrpcError`; when the
transaction id of a *query* was readable the node can answer it with error 203
(``KrpcError.answerable``), otherwise the datagram is dropped.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from bt import bencode
from bt.compact import IPV4, IPV6, pack_peers, unpack_peers
from bt.errors import BencodeError

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
#: Real clients use 2 to 4 bytes; anything past this is not a KRPC transaction id.
MAX_TID = 32


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
    body: dict[bytes, Any] = {b"t": message.tid}
    if isinstance(message, Query):
        body[b"y"] = b"q"
        body[b"q"] = message.method.encode()
        body[b"a"] = _query_args(message)
        if message.read_only:
            body[b"ro"] = 1
    elif isinstance(message, Response):
        body[b"y"] = b"r"
        body[b"r"] = _response_values(message)
        if message.ip is not None:
            body[b"ip"] = _pack_address(message.ip)
    else:
        body[b"y"] = b"e"
        body[b"e"] = [message.code, message.message.encode("utf-8", "replace")]
    version = getattr(message, "version", None)
    if version is not None:
        body[b"v"] = version
    return bencode.encode(body)


def _query_args(query: Query) -> dict[bytes, Any]:
    args: dict[bytes, Any] = {b"id": query.sender}
    if query.target is not None:
        args[b"target"] = query.target
    if query.info_hash is not None:
        args[b"info_hash"] = query.info_hash
    if query.port is not None:
        args[b"port"] = query.port
    if query.token is not None:
        args[b"token"] = query.token
    if query.implied_port:
        args[b"implied_port"] = 1
    if query.want:
        args[b"want"] = list(query.want)
    return args


def _response_values(response: Response) -> dict[bytes, Any]:
    values: dict[bytes, Any] = {b"id": response.sender}
    if response.nodes:
        values[b"nodes"] = pack_nodes(response.nodes)
    if response.nodes6:
        values[b"nodes6"] = pack_nodes(response.nodes6, ipv6=True)
    if response.values:
        values[b"values"] = [_pack_address(peer) for peer in response.values]
    if response.token is not None:
        values[b"token"] = response.token
    return values


def _pack_address(peer: Peer) -> bytes:
    entry = IPV6 if ":" in peer[0] else IPV4
    return pack_peers([peer], entry)


def parse(datagram: bytes) -> Message:
    """The message in ``datagram``; :class:`KrpcError` for anything invalid."""
    if len(datagram) > MAX_DATAGRAM:
        raise KrpcError(f"datagram of {len(datagram)} bytes")
    try:
        body = bencode.decode(datagram)
    except BencodeError as exc:
        raise KrpcError(f"not bencode: {exc}") from None
    if not isinstance(body, dict):
        raise KrpcError("not a dict")
    tid = body.get(b"t")
    if not isinstance(tid, bytes) or not 0 < len(tid) <= MAX_TID:
        raise KrpcError("bad transaction id")
    kind = body.get(b"y")
    try:
        if kind == b"q":
            return _parse_query(body, tid)
        if kind == b"r":
            return _parse_response(body, tid)
        if kind == b"e":
            return _parse_error(body, tid)
    except KrpcError as exc:
        raise KrpcError(str(exc), tid=tid, query=kind == b"q", code=exc.code) from None
    except (ValueError, TypeError) as exc:
        raise KrpcError(f"bad message: {exc}", tid=tid, query=kind == b"q") from None
    raise KrpcError("bad message type", tid=tid)


def _field(mapping: dict[bytes, Any], key: bytes, kind: type, required: bool = True) -> Any:
    value = mapping.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, kind):
        raise KrpcError(f"{key.decode()}: missing or not {kind.__name__}")
    return value


def _node_id(mapping: dict[bytes, Any], key: bytes) -> bytes:
    value = _field(mapping, key, bytes)
    if len(value) != NODE_ID_LEN:
        raise KrpcError(f"{key.decode()}: {len(value)} bytes, not {NODE_ID_LEN}")
    return value


def _version(body: dict[bytes, Any]) -> bytes | None:
    version = body.get(b"v")
    return version if isinstance(version, bytes) else None


def _parse_query(body: dict[bytes, Any], tid: bytes) -> Query:
    method = _field(body, b"q", bytes)
    args = _field(body, b"a", dict)
    sender = _node_id(args, b"id")
    name = method.decode("ascii", "replace")
    if name not in METHODS:
        raise KrpcError(f"unknown method {name!r}", code=ErrorCode.METHOD_UNKNOWN)
    want = _field(args, b"want", list, required=False) or []
    if not all(isinstance(item, bytes) for item in want):
        raise KrpcError("want: not a list of strings")
    fields: dict[str, Any] = {}
    if name == "find_node":
        fields["target"] = _node_id(args, b"target")
    elif name in ("get_peers", "announce_peer"):
        fields["info_hash"] = _node_id(args, b"info_hash")
    if name == "announce_peer":
        implied = _field(args, b"implied_port", int, required=False) or 0
        port = _field(args, b"port", int, required=not implied)
        if port is not None and not (0 if implied else 1) <= port <= 0xFFFF:
            raise KrpcError(f"port {port} out of range")
        fields.update(port=port, implied_port=bool(implied), token=_field(args, b"token", bytes))
    read_only = body.get(b"ro") == 1
    return Query(
        tid, name, sender, want=tuple(want), read_only=read_only, version=_version(body), **fields
    )


def _parse_response(body: dict[bytes, Any], tid: bytes) -> Response:
    values = _field(body, b"r", dict)
    sender = _node_id(values, b"id")
    nodes = unpack_nodes(_field(values, b"nodes", bytes, required=False) or b"")
    nodes6 = unpack_nodes(_field(values, b"nodes6", bytes, required=False) or b"", ipv6=True)
    peers = _field(values, b"values", list, required=False) or []
    if len(peers) > MAX_DATAGRAM // IPV4.size:
        raise KrpcError("too many values")
    found: list[Peer] = []
    for peer in peers:
        if not isinstance(peer, bytes) or len(peer) not in (IPV4.size, IPV6.size):
            raise KrpcError("values: not compact peers")
        found += unpack_peers(peer, IPV4 if len(peer) == IPV4.size else IPV6)
    ip = _field(body, b"ip", bytes, required=False)
    if ip is not None and len(ip) not in (IPV4.size, IPV6.size):
        raise KrpcError("ip: not a compact address")
    return Response(
        tid,
        sender,
        nodes=nodes,
        nodes6=nodes6,
        values=tuple(found),
        token=_field(values, b"token", bytes, required=False),
        ip=unpack_peers(ip, IPV4 if len(ip) == IPV4.size else IPV6)[0] if ip else None,
        version=_version(body),
    )


def _parse_error(body: dict[bytes, Any], tid: bytes) -> ErrorMessage:
    error = _field(body, b"e", list)
    if len(error) < 2 or not isinstance(error[0], int) or not isinstance(error[1], bytes):
        raise KrpcError("e: not [code, message]")
    return ErrorMessage(tid, error[0], error[1].decode("utf-8", "replace"))


def pack_nodes(nodes: Iterable[NodeInfo], ipv6: bool = False) -> bytes:
    """Compact node info (26 or 38 bytes per node) of one address family."""
    entry = IPV6 if ipv6 else IPV4
    return b"".join(node.id + pack_peers([node.address], entry) for node in nodes)


def unpack_nodes(data: bytes, ipv6: bool = False) -> tuple[NodeInfo, ...]:
    """The nodes in a compact ``nodes``/``nodes6`` string; ``ValueError`` on a bad length."""
    size = NODE6_LEN if ipv6 else NODE4_LEN
    if len(data) % size:
        raise ValueError(f"{len(data)} bytes of nodes, not a multiple of {size}")
    entry = IPV6 if ipv6 else IPV4
    ids = (data[at : at + NODE_ID_LEN] for at in range(0, len(data), size))
    addresses = b"".join(data[at + NODE_ID_LEN : at + size] for at in range(0, len(data), size))
    return tuple(
        NodeInfo(node_id, host, port)
        for node_id, (host, port) in zip(ids, unpack_peers(addresses, entry), strict=True)
    )
